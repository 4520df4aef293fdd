"""After colourways, a colour follow-up recolours the same photo; anything else is a new request."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcanvas.bot.colourway_follow_up import follow_up_colours, follow_up_specs
from chatcanvas.config import Settings
from chatcanvas.types import Colourway, ImageSpec

PHOTO, MASK = "u" + "1" * 31, "u" + "2" * 31


def colourway_follow_up(text: str, last: list[ImageSpec], settings: Settings) -> list[ImageSpec] | None:
    colours = follow_up_colours(text, last)
    return follow_up_specs(colours, last, settings) if colours else None


def teal_lamp() -> list[ImageSpec]:
    way = Colourway(colour="teal", hex="#008080")
    return [ImageSpec(prompt="a teal desk lamp", init_image=PHOTO, mask_image=MASK, colourway=way, seed=5)]


@pytest.mark.parametrize(
    ("text", "colours"),
    [
        ("now in coral", ["coral"]),
        ("what about sage and oat?", ["sage", "oat"]),
        ("ok, same but in dusty rose please", ["dusty rose"]),
        ("variations: #e07b39, navy", ["#e07b39", "navy"]),
    ],
)
def test_colour_follow_ups_recolour_the_same_photo(tmp_path: Path, text: str, colours: list[str]) -> None:
    specs = colourway_follow_up(text, teal_lamp(), Settings(data_dir=tmp_path))
    assert specs is not None
    assert [s.colourway.colour for s in specs if s.colourway] == colours
    assert all((s.init_image, s.mask_image, s.seed) == (PHOTO, MASK, 5) for s in specs)
    assert specs[0].prompt == f"a {colours[0]} desk lamp" or specs[0].prompt == f"an {colours[0]} desk lamp"


@pytest.mark.parametrize("text", ["a red mug on a table", "draw a sunset over the sea", "thanks!", "make it bigger"])
def test_other_messages_are_new_requests(tmp_path: Path, text: str) -> None:
    assert colourway_follow_up(text, teal_lamp(), Settings(data_dir=tmp_path)) is None


def test_only_after_colourways(tmp_path: Path) -> None:
    assert colourway_follow_up("now in coral", [ImageSpec(prompt="a teal lamp")], Settings(data_dir=tmp_path)) is None
