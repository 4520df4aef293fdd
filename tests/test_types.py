"""ImageSpec bounds and the configured Limits: refuse or clamp, always saying why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chatcanvas.errors import SpecError
from chatcanvas.types import MAX_SEED, Aspect, ImageSpec, Limits


@pytest.mark.parametrize(
    "bad",
    [
        {"prompt": ""},
        {"prompt": "   "},
        {"prompt": "x", "width": 500},  # not a multiple of 8
        {"prompt": "x", "width": 8192},
        {"prompt": "x", "count": 0},
        {"prompt": "x", "seed": -1},
        {"prompt": "x", "seed": MAX_SEED + 1},
        {"prompt": "x", "steps": 0},
        {"prompt": "x", "strength": 1.5},
        {"prompt": "x" * 5000},
        {"prompt": "x", "mask_image": "m"},  # a mask without an image
        {"prompt": "x", "surprise": 1},
    ],
)
def test_spec_refuses_out_of_bounds(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ImageSpec(**bad)  # type: ignore[arg-type]


def test_limits_check_names_every_problem() -> None:
    lim = Limits(max_side=512, max_count=4, max_steps=30, max_prompt_chars=20)
    with pytest.raises(SpecError) as err:
        lim.check(ImageSpec(prompt="x" * 30, width=1024, height=1024, count=9, steps=40))
    msg = str(err.value)
    for part in ("30 characters", "1024px", "9 images", "40 steps"):
        assert part in msg


def test_clamp_keeps_aspect_and_says_so() -> None:
    lim = Limits(max_side=1024, max_pixels=512 * 512, max_count=4)
    spec, notes = lim.clamp(ImageSpec(prompt="x", width=4096, height=2048, count=64))
    assert spec.count == 4 and spec.width is not None and spec.height is not None
    assert spec.width * spec.height <= 512 * 512 and spec.width % 8 == 0 and spec.height % 8 == 0
    assert abs(spec.width / spec.height - 2.0) < 0.1
    assert any("64 images" in n for n in notes) and any("4096x2048" in n for n in notes)
    same, none = lim.clamp(ImageSpec(prompt="x", width=512, height=512))
    assert none == [] and same.width == 512


def test_aspect_sizes_are_multiples_of_8() -> None:
    for a in Aspect:
        w, h = a.size(64)
        assert w % 8 == 0 and h % 8 == 0
    assert Aspect.WIDE.size(512)[0] > Aspect.WIDE.size(512)[1]
    assert Aspect.PORTRAIT.size(512)[0] < Aspect.PORTRAIT.size(512)[1]
