"""variation_specs and its helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcanvas.config import load_settings
from chatcanvas.errors import SpecError
from chatcanvas.generation.variations import (
    MAX_VARIATIONS,
    clean_variations,
    fit_aspect,
    variation_prompt,
    variation_specs,
)
from chatcanvas.types import Mode


def test_one_inpaint_spec_per_variation(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    specs = variation_specs("uPHOTO", "uMASK", ["red", " navy ", "forest green", "Red"], "mug", s, seed=5)
    assert [sp.prompt for sp in specs] == ["a red mug", "a navy mug", "a forest green mug"]
    assert all(
        sp.mode is Mode.INPAINT and sp.init_image == "uPHOTO" and sp.mask_image == "uMASK" for sp in specs
    )
    assert all(sp.seed == 5 and sp.count == 1 and sp.width is None for sp in specs)


def test_sizes_keep_the_aspect(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)  # the demo model: about 64x64
    specs = variation_specs("a", "b", ["blue"], "tote bag", s, size=(1200, 800))
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
