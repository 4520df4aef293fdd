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
