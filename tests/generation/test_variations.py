"""variation_specs and its helpers (colourway reading: test_colourway_variations.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcanvas.config import load_settings
from chatcanvas.errors import SpecError
from chatcanvas.generation.variations import (
    MAX_VARIATIONS,
    clean_variations,
    fit_aspect,
    prepare_variations,
    variation_prompt,
    variation_specs,
)
from chatcanvas.types import Mode


def test_one_colourway_spec_per_variation(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    specs = variation_specs("uPHOTO", "uMASK", ["red", " navy ", "forest green", "Red"], "mug", s, seed=5)
    assert [sp.prompt for sp in specs] == ["a red mug", "a navy mug", "a forest green mug"]
    assert all(
        sp.mode is Mode.INPAINT and sp.init_image == "uPHOTO" and sp.mask_image == "uMASK" for sp in specs
    )
    assert all(sp.seed == 5 and sp.count == 1 and sp.width is None for sp in specs)
    assert [sp.colourway.hex for sp in specs if sp.colourway] == ["#ff0000", "#000080", "#228b22"]
    assert {sp.backend for sp in specs} == {"colourway"}


def test_sizes_keep_the_aspect(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)  # the demo model: about 64x64
    specs = variation_specs("a", "b", ["blue velvet"], "tote bag", s, size=(1200, 800))  # a material pass
    sp = specs[0]
    assert sp.width is not None and sp.height is not None
    assert sp.width % 8 == 0 and sp.height % 8 == 0
    assert abs(sp.width / sp.height - 1.5) < 0.2
    assert fit_aspect((1000, 1000), 512, s) == (512, 512)
    assert fit_aspect((1600, 900), 1024, s)[0] <= s.max_side
    w, h = fit_aspect((4000, 100), 1024, s)
    assert w <= s.max_side and h >= 8 and w * h <= s.max_pixels


def test_prompts() -> None:
    assert variation_prompt("orange", "a canvas tote") == "an orange canvas tote"
    assert variation_prompt("navy", "The mug") == "a navy mug"


@pytest.mark.parametrize("bad", [[], ["   "], ["x" * 61], [str(i) for i in range(MAX_VARIATIONS + 1)]])
def test_bad_variations(bad: list[str]) -> None:
    with pytest.raises(SpecError):
        clean_variations(bad)


def test_prepare_form_stores_photo_and_cut_out_mask(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from chatcanvas.generation.demo.draw import draw_product
    from chatcanvas.store import Store

    s = load_settings(data_dir=tmp_path)
    store = Store(tmp_path)
    photo = draw_product("mug", "red", np.random.default_rng(4), size=64).resize((96, 64))
    specs = prepare_variations(photo, ["blue", "green"], store, s, subject="mug", native=64)
    assert [sp.prompt for sp in specs] == ["a blue mug", "a green mug"]
    sp = specs[0]
    assert sp.init_image and sp.mask_image and sp.init_image != sp.mask_image
    with Image.open(store.image_file(sp.mask_image)) as mk:
        assert mk.mode == "L" and mk.size == (96, 64)
        assert 0.05 < (np.asarray(mk) > 127).mean() < 0.6
    assert sp.width is None and sp.backend == "colourway"  # recoloured at the photo's own size

    with pytest.raises(SpecError, match="mask is 10x10"):
        prepare_variations(photo, ["blue"], store, s, mask=Image.new("L", (10, 10)))
    given = Image.new("L", (96, 64), 0)
    given.paste(255, (10, 10, 40, 40))
    spec = prepare_variations(photo, ["navy"], store, s, mask=given.convert("RGB"))[0]
    with Image.open(store.image_file(spec.mask_image or "")) as mk:
        assert mk.getpixel((20, 20)) == 255 and mk.getpixel((60, 50)) == 0
    assert spec.prompt == "a navy product"
