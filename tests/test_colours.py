"""Colour names the way people type them: CSS, XKCD and shop names, hex codes, modifiers."""

from __future__ import annotations

import numpy as np
import pytest

from chatcanvas.colours import (
    MODIFIERS,
    find_colour_phrases,
    resolve_colour,
    srgb_to_oklab,
    suggest_colours,
)


def _lch(hexcode: str) -> tuple[float, float, float]:
    rgb = np.array([int(hexcode[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
    L, a, b = srgb_to_oklab(rgb)
    return float(L), float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a)))


@pytest.mark.parametrize(
    ("typed", "hexcode", "source"),
    [
        ("Cornflower Blue", "#6495ed", "css"),
        ("DODGER-BLUE", "#1e90ff", "css"),
        ("rebeccapurple", "#663399", "css"),
        ("light slate grey", "#778899", "css"),
        ("Light  Slate Gray", "#778899", "css"),
        ("burnt orange", "#c04e01", "xkcd"),
        ("Avocado Green", "#87a922", "xkcd"),
        ("terracotta", "#ca6641", "xkcd"),
        ("mustard yellow", "#d2bd0a", "xkcd"),
        ("sea-foam", "#80f9ad", "xkcd"),
        ("robins egg", "#6dedfd", "xkcd"),
        ("grey/blue", "#6b8ba4", "xkcd"),
        ("jet black", "#0b0b0b", "extra"),
        ("Rose Gold", "#b76e79", "extra"),
        ("#1a2B3c", "#1a2b3c", "hex"),
        ("#0f0", "#00ff00", "hex"),
        ("  #C0FFEE ", "#c0ffee", "hex"),
    ],
)
def test_names_resolve_to_their_published_values(typed: str, hexcode: str, source: str) -> None:
    colour = resolve_colour(typed)
    assert colour is not None, typed
    assert (colour.hex, colour.source) == (hexcode, source)
    assert colour.rgb == tuple(int(hexcode[i : i + 2], 16) for i in (1, 3, 5))


def test_css_wins_over_xkcd_on_a_clash() -> None:
    assert resolve_colour("green").hex == "#008000"  # type: ignore[union-attr]  # XKCD says #15b01a
    assert resolve_colour("Dark Green").hex == "#006400"  # type: ignore[union-attr]
    assert resolve_colour("purple").source == "css"  # type: ignore[union-attr]


def test_names_that_are_names_keep_their_own_colour() -> None:
    # "baby pink" and "pastel orange" are survey names, not a modifier applied to pink/orange.
    assert resolve_colour("baby pink").source == "xkcd"  # type: ignore[union-attr]
    assert resolve_colour("pastel orange").hex == "#ff964f"  # type: ignore[union-attr]


@pytest.mark.parametrize("base", ["terracotta", "teal", "goldenrod", "slate blue", "#4682b4"])
def test_modifiers_move_lightness_and_chroma_keep_hue(base: str) -> None:
    b = resolve_colour(base)
    assert b is not None
    L0, C0, h0 = _lch(b.hex)
    for mod in MODIFIERS:
        colour = resolve_colour(f"{mod} {base}")
        assert colour is not None, mod
        if colour.source != "modified":
            continue  # a survey name of its own
        L, C, h = _lch(colour.hex)
        if C > 0.03:
            assert abs((h - h0 + 180) % 360 - 180) < 8, (mod, base, h, h0)
        if mod in ("light", "pale", "baby", "pastel"):
            assert L > L0 + 0.03, (mod, base)
        if mod in ("dark", "deep"):
            assert L < L0 - 0.03, (mod, base)
        if mod in ("dusty", "muted", "pale"):
            assert C < C0 * 0.8, (mod, base)
        if mod in ("neon", "hot", "bright"):
            assert C >= C0 * 0.97, (mod, base)  # at least as vivid (the gamut may stop it)


def test_stacked_modifiers_and_spelling_variants() -> None:
    a = resolve_colour("pale muted periwinkle")
    b = resolve_colour("Pale-Muted  Periwinkle")
    assert a is not None and a == b and a.source == "modified"
    assert resolve_colour("very much not a colour") is None
    assert resolve_colour("") is None
    assert resolve_colour("#12345") is None
    assert resolve_colour("light") is None  # a modifier alone is not a colour


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("burgandy", "burgundy"), ("turqoise", "turquoise"), ("aubergene", "aubergine"), ("chartruese", "chartreuse")],
)
def test_suggestions_for_misspelt_names(typo: str, meant: str) -> None:
    assert resolve_colour(typo) is None
    assert meant in suggest_colours(typo)


def test_suggestions_keep_the_modifier_and_respect_n() -> None:
    out = suggest_colours("light lavendar", n=2)
    assert len(out) <= 2 and "light lavender" in out
    assert suggest_colours("qqqqxxxx") == []


def _spans(text: str) -> list[tuple[str, str]]:
    return [(text[s:e], c.hex) for s, e, c in find_colour_phrases(text)]


def test_phrases_in_free_text_longest_first_in_order() -> None:
    text = "Could I get the hoodie in Burnt-Orange or dark olive green, and one in #336699?"
    assert _spans(text) == [("Burnt-Orange", "#c04e01"), ("dark olive green", "#556b2f"), ("#336699", "#336699")]


def test_phrases_are_not_joined_across_commas_or_and() -> None:
    text = "scarves: sky-blue, lemon yellow and hot pink"
    got = [t for t, _ in _spans(text)]
    assert got == ["sky-blue", "lemon yellow", "hot pink"]


def test_everyday_words_alone_are_not_colours() -> None:
    assert _spans("a walk in the forest at dusk with a lemon and some wine") == []
    assert [t for t, _ in _spans("a forest green tent and a wine red one")] == ["forest green", "wine red"]


def test_modified_phrase_is_one_span() -> None:
    text = "the bottle in muted sage, please"
    spans = find_colour_phrases(text)
    assert len(spans) == 1
    s, e, colour = spans[0]
    assert text[s:e] == "muted sage" and colour.source == "modified"
