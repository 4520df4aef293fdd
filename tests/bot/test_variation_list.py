"""Typed variation lists, parsed once in the core for every adapter."""

from __future__ import annotations

import pytest

from chatcanvas.bot.assistant import split_variations
from chatcanvas.bot.variation_list import (
    asks_variations,
    is_mask_name,
    parse_variation_list,
    parse_variation_request,
    reads_as_colourways,
)
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


@pytest.mark.parametrize(
    ("text", "expected", "subject"),
    [
        # what people type beside a shared photo
        ("this sneaker in navy, forest green and #e07b39", ["navy", "forest green", "#e07b39"], "sneaker"),
        ("can I see this in teal?", ["teal"], ""),
        ("Do you have my canvas tote in cognac brown, or maybe oxblood?", ["cognac brown", "oxblood"], "canvas tote"),
        ("I'd love to see the duffel in dusty rose and in jet black, thanks!", ["dusty rose", "jet black"], "duffel"),
        ("show me this bag in olive or rust pls", ["olive", "rust"], "bag"),
        ("make it sage green please", ["sage green"], ""),
        ("Hey! could you do this in navy velvet", ["navy velvet"], ""),
        ("how about mint green?", ["mint green"], ""),
        ("change it to burgundy", ["burgundy"], ""),
        ("Does it come in charcoal?", ["charcoal"], ""),
        ("canvas tote: navy, sand and in olive", ["navy", "sand", "olive"], "canvas tote"),  # the page's hint
        # an "in" that is part of the variation stays in it
        ("navy in suede, tan in leather", ["navy in suede", "tan in leather"], ""),
    ],
)
def test_chat_phrasings(text: str, expected: list[str], subject: str) -> None:
    got = parse_variation_request(text)
    assert (got.variations, got.subject) == (expected, subject)


def test_asks_variations_only_at_the_start() -> None:
    assert asks_variations("colorways: red, blue")
    assert not asks_variations("a red mug in three colors")


def test_the_assistant_takes_a_list_or_the_typed_text() -> None:
    assert split_variations("navy, Navy and forest green") == ["navy", "forest green"]
    assert split_variations(["navy ", "  teal"]) == ["navy", "teal"]
    assert split_variations("this sneaker in navy, forest green and #e07b39") == ["navy", "forest green", "#e07b39"]
    with pytest.raises(SpecError):
        split_variations(" , ")


@pytest.mark.parametrize(
    ("text", "colourways"),
    [
        ("this sneaker in navy, forest green and #e07b39", True),
        ("can I see this lamp in teal and coral?", True),
        ("variations: oxblood", True),
        ("make it sage green please", True),
        ("make a watercolor poster of this", False),
        ("put this on a marble table", False),
        ("upscale this please", False),
        ("what is this?", False),
    ],
)
def test_what_reads_as_colourways_beside_a_photo(text: str, colourways: bool) -> None:
    assert reads_as_colourways(text) is colourways


def test_a_mask_is_the_file_named_so() -> None:
    assert is_mask_name("IMG_0311_mask.png") and is_mask_name("Mask.PNG") and is_mask_name("lamp-mask")
    assert not is_mask_name("damask-curtain.png") and not is_mask_name("masking-tape.jpg")
