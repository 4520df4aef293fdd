"""The bundled demo checkpoint loads through diffusers offline and follows the colour in the prompt."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from chatcanvas.generation.demo.draw import COLORS, PRODUCTS, caption, draw_product
from chatcanvas.generation.demo.score import dominant_color_name

MODEL_DIR = Path(__file__).resolve().parents[2] / "chatcanvas" / "generation" / "demo" / "model"


def test_draw_product_is_recognisably_coloured() -> None:
    rng = np.random.default_rng(0)
    for product in PRODUCTS:
        for color in COLORS:
            img = draw_product(product, color, rng)
            assert img.size == (64, 64) and img.mode == "RGB"
            assert dominant_color_name(img) == color
            assert color in caption(product, color, rng)


def test_dominant_color_of_blank_image_is_none() -> None:
    from PIL import Image

    assert dominant_color_name(Image.new("RGB", (64, 64), "white")) == "none"


# The colour each name got in the xkcd colour survey (people naming colours they were shown).
XKCD = {
    "red": "#e50000",
    "orange": "#f97306",
    "yellow": "#ffff14",
    "green": "#15b01a",
    "blue": "#0343df",
    "purple": "#7e1e9c",
    "pink": "#ff81c0",
    "black": "#000000",
    "white": "#ffffff",
    "grey": "#929591",
    "brown": "#653700",
    "beige": "#e6daa6",
    "navy": "#01153e",
    "teal": "#029386",
    "maroon": "#650021",
    "olive": "#6e750e",
}


@pytest.mark.parametrize("name", list(XKCD))
def test_scorer_names_survey_colours_of_an_outlined_shape(name: str) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (64, 64), "white")
    d = ImageDraw.Draw(img)
    # A bottle-ish shape with a mid-grey outline, the way a product shot on white is drawn.
    d.rounded_rectangle((18, 14, 44, 56), radius=6, fill=XKCD[name], outline="#8c8c8c", width=2)
    d.ellipse((24, 6, 38, 18), fill=XKCD[name], outline="#8c8c8c", width=2)
    assert dominant_color_name(img) == name


def test_white_product_needs_its_outline() -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(3)
    for product in PRODUCTS:
        assert dominant_color_name(draw_product(product, "white", rng)) == "white"
    bare = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(bare).ellipse((10, 10, 50, 50), fill="#fbfbfb")  # white on white, no edge
    assert dominant_color_name(bare) == "none"


def test_drawing_knows_the_colours_shops_ask_for() -> None:
    shop = "red orange yellow green blue purple pink black white grey brown beige navy teal maroon olive"
    assert set(shop.split()) <= set(COLORS)


def test_bundled_model_lists_colours_the_drawing_knows() -> None:
    import json

    if not (MODEL_DIR / "chatcanvas.json").exists():
        pytest.skip("bundled demo model not built (scripts/train_demo_model.py)")
    meta = json.loads((MODEL_DIR / "chatcanvas.json").read_text())
    assert set(meta["colors"]) <= set(COLORS)
    assert {"red", "orange", "yellow", "green", "blue", "purple", "pink", "black"} <= set(meta["colors"])


@pytest.fixture(scope="module")
def demo_pipe():  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    if not (MODEL_DIR / "model_index.json").exists():
        pytest.skip("bundled demo model not built (scripts/train_demo_model.py)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(MODEL_DIR), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("color", ["red", "blue"])
def test_demo_model_follows_colour(demo_pipe, color: str) -> None:  # type: ignore[no-untyped-def]
    import json

    import torch

    meta = json.loads((MODEL_DIR / "chatcanvas.json").read_text())
    seeds = [0, 1, 2]
    images = demo_pipe(
        [f"a {color} mug"] * len(seeds),
        num_inference_steps=int(meta["default_steps"]),
        guidance_scale=float(meta["default_guidance"]),
        generator=[torch.Generator().manual_seed(s) for s in seeds],
    ).images
    assert [im.size for im in images] == [(64, 64)] * len(seeds)
    assert [dominant_color_name(im) for im in images] == [color] * len(seeds)
