"""Typed variation lists, parsed once in the core for every adapter."""

from __future__ import annotations

import pytest

from chatcanvas.bot.assistant import split_variations
from chatcanvas.bot.variation_list import asks_variations, parse_variation_list
from chatcanvas.errors import SpecError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("variations: navy, forest green and sand", ["navy", "forest green", "sand"]),
        ("in red / blue", ["red", "blue"]),
        ("colours: black", ["black"]),
        ("cognac brown and in jet black", ["cognac brown", "jet black"]),
        ("Colourways - heather grey / mustard / forest", ["heather grey", "mustard", "forest"]),
        ("seafoam, coral, or slate", ["seafoam", "coral", "slate"]),
        ("#e07b39; navy | teal", ["#e07b39", "navy", "teal"]),
        ("  ", []),
    ],
)
def test_typed_lists(text: str, expected: list[str]) -> None:
    assert parse_variation_list(text) == expected


def test_asks_variations_only_at_the_start() -> None:
    assert asks_variations("colorways: red, blue")
    assert not asks_variations("a red mug in three colors")


def test_the_assistant_takes_a_list_or_the_typed_text() -> None:
    assert split_variations("navy, Navy and forest green") == ["navy", "forest green"]
    assert split_variations(["navy ", "  teal"]) == ["navy", "teal"]
    with pytest.raises(SpecError):
        split_variations(" , ")
