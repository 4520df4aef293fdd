"""Colour names people type, resolved to sRGB: CSS and XKCD names, shop words, hex codes, modifiers.

- :func:`resolve_colour`: one colour phrase -> :class:`NamedColour` ("navy", "Forest-Green",
  "#e07b39", "light blue", "neon pink", "pale dusty mauve"), or ``None``.
- :func:`suggest_colours`: the nearest known names by spelling, for a phrase that did not resolve.
- :func:`find_colour_phrases`: every colour phrase in free text, as ``(start, end, colour)`` spans.

The names live in ``prompts/colours.json``: the 148 CSS Color 4 names, the XKCD colour-survey names
(CC0) and a few retail names missing from both. CSS wins over XKCD on a clash ("green" is
``#008000``). Lookups ignore case, spacing, hyphens, slashes, apostrophes and grey/gray.

A modifier word in front of a known name ("dusty", "neon", ...) moves the colour in OKLab
(lightness and chroma at the same hue), then brings it back into sRGB by lowering chroma. A phrase
that is itself a name ("light blue", "hot pink", "dusty rose") keeps that name's own colour.

Also here: the OKLab conversions (:func:`srgb_to_oklab`, :func:`oklab_to_srgb`), numpy only.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
from pydantic import BaseModel

__all__ = [
    "MODIFIERS",
    "NamedColour",
    "find_colour_phrases",
    "oklab_to_srgb",
    "resolve_colour",
    "srgb_to_oklab",
    "suggest_colours",
]

Source = Literal["css", "xkcd", "hex", "modified", "extra"]


class NamedColour(BaseModel, frozen=True):
    name: str  # the display name: "forest green", "#e07b39", "neon mustard"
    hex: str  # "#rrggbb", lower case
    rgb: tuple[int, int, int]
    source: Source


# ---------------------------------------------------------------- OKLab (Björn Ottosson, 2020)

_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_M1_INV = np.linalg.inv(_M1)
_M2_INV = np.linalg.inv(_M2)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear light."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB in [0, 1] (not clipped)."""
    c = np.asarray(c)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0.0031308), 1 / 2.4) - 0.055)


def linear_to_oklab(lin: np.ndarray) -> np.ndarray:
    lms = np.asarray(lin) @ _M1.T
    return np.cbrt(lms) @ _M2.T


def oklab_to_linear(lab: np.ndarray) -> np.ndarray:
    lms = np.asarray(lab) @ _M2_INV.T
    return (lms**3) @ _M1_INV.T


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3) -> OKLab (L in [0, 1], a, b about ±0.4)."""
    return linear_to_oklab(srgb_to_linear(rgb))


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab -> sRGB in [0, 1], not clipped (values outside [0, 1] are out of gamut)."""
    return linear_to_srgb(oklab_to_linear(lab))


def max_chroma(lightness: float, hue: float, *, iters: int = 24) -> float:
    """The largest OKLab chroma at this lightness and hue (radians) that sRGB can show."""
    if lightness <= 0.0 or lightness >= 1.0:
        return 0.0
    lo, hi = 0.0, 0.5
    ca, sa = np.cos(hue), np.sin(hue)
    for _ in range(iters):
        mid = (lo + hi) / 2
        lin = oklab_to_linear(np.array([lightness, mid * ca, mid * sa]))
        if np.all(lin >= -1e-6) and np.all(lin <= 1 + 1e-6):
            lo = mid
        else:
            hi = mid
    return lo


def _to_rgb8(lab: np.ndarray) -> tuple[int, int, int]:
    rgb = np.clip(oklab_to_srgb(lab), 0.0, 1.0)
    r, g, b = (int(round(float(v) * 255)) for v in rgb)
    return r, g, b


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ---------------------------------------------------------------- modifiers

# Each maps OKLab (lightness, chroma, hue) to a new lightness and chroma at the same hue; chroma is
# then cut to what sRGB can show.
_Mod = Callable[[float, float, float], tuple[float, float]]


def _neon(L: float, C: float, h: float) -> tuple[float, float]:
    """As vivid as the screen allows: the lightness in [L, 0.85] with the most chroma at this hue."""
    if C < 0.02:
        return L, C  # greys stay grey
    grid = np.linspace(L, max(L, 0.85), 12)
    best = max(grid, key=lambda x: max_chroma(float(x), h))
    return float(best), max(C * 1.6, max_chroma(float(best), h))


_MODIFIERS: dict[str, _Mod] = {
    "light": lambda L, C, h: (L + (1 - L) * 0.35, C * 0.85),
    "pale": lambda L, C, h: (L + (1 - L) * 0.55, C * 0.5),
    "baby": lambda L, C, h: (L + (1 - L) * 0.5, C * 0.65),
    "pastel": lambda L, C, h: (L + (1 - L) * 0.5, min(C * 0.6, 0.09)),
    "dark": lambda L, C, h: (L * 0.72, C * 0.9),
    "deep": lambda L, C, h: (L * 0.8, C * 1.2),
    "hot": lambda L, C, h: (L, C * 1.35),
    "neon": _neon,
    "bright": lambda L, C, h: (L + (1 - L) * 0.15, C * 1.25),
    "dusty": lambda L, C, h: (L * 0.97, C * 0.55),
    "muted": lambda L, C, h: (L, C * 0.6),
    "matte": lambda L, C, h: (L + (0.5 - L) * 0.08, C * 0.85),
}
MODIFIERS: tuple[str, ...] = tuple(_MODIFIERS)


def _modify(modifier: str, base: NamedColour) -> NamedColour:
    lab = srgb_to_oklab(np.array(base.rgb) / 255.0)
    L, a, b = (float(v) for v in lab)
    C, h = float(np.hypot(a, b)), float(np.arctan2(b, a))
    L2, C2 = _MODIFIERS[modifier](L, C, h)
    L2 = min(1.0, max(0.0, L2))
    C2 = min(C2, max_chroma(L2, h))
    rgb = _to_rgb8(np.array([L2, C2 * np.cos(h), C2 * np.sin(h)]))
    return NamedColour(name=f"{modifier} {base.name}", hex=_hex(rgb), rgb=rgb, source="modified")


# ---------------------------------------------------------------- the name tables

_HEX = re.compile(r"#(?:[0-9a-f]{6}|[0-9a-f]{3})")
_SUFFIX = re.compile(r"\s+(?:colou?r(?:ed)?)$")


def _key(text: str) -> str:
    """The lookup form: lower case, no apostrophes, hyphens/slashes/underscores as spaces, "grey"."""
    t = text.strip().lower().replace("'", "").replace("\u2019", "")
    t = re.sub(r"[-_/]+", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    t = _SUFFIX.sub("", t)
    return t.replace("gray", "grey")


def _parse_hex(code: str) -> tuple[int, int, int] | None:
    code = code.strip().lower()
    if not _HEX.fullmatch(code):
        return None
    digits = code[1:]
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


@dataclass(frozen=True)
class _Tables:
    spaced: dict[str, NamedColour]
    squashed: dict[str, NamedColour]
    ambiguous: frozenset[str]
    longest: int  # words in the longest name


@cache
def _tables() -> _Tables:
    raw = json.loads(resources.files("chatcanvas.prompts").joinpath("colours.json").read_text("utf-8"))
    entries: list[tuple[str, NamedColour]] = []

    def add(name: str, hexcode: str, source: Source, *keys: str) -> None:
        rgb = _parse_hex(hexcode)
        assert rgb is not None, hexcode
        colour = NamedColour(name=name, hex=_hex(rgb), rgb=rgb, source=source)
        for k in (name, *keys):
            entries.append((_key(k), colour))

    for c in raw["css"]:  # CSS first: it wins every clash
        if "gray" not in c["name"]:  # each has a "grey" twin; keep that spelling
            add(c["name"], c["hex"], "css", c["css"])
    for name, hexcode in raw["xkcd"].items():
        add(name, hexcode, "xkcd")
    for name, v in raw["extra"].items():
        add(name, v["hex"], "extra")
    spaced: dict[str, NamedColour] = {}
    squashed: dict[str, NamedColour] = {}
    for k, colour in entries:
        spaced.setdefault(k, colour)
    for k, colour in entries:  # a squashed key only where no spaced key already holds it
        squashed.setdefault(k.replace(" ", ""), spaced.get(k, colour))
    ambiguous = frozenset(_key(w) for w in raw.get("free_text_ambiguous", ())) | frozenset(MODIFIERS)
    longest = max(len(k.split()) for k in spaced)
    return _Tables(spaced=spaced, squashed=squashed, ambiguous=ambiguous, longest=longest)


def _lookup(key: str) -> NamedColour | None:
    t = _tables()
    return t.spaced.get(key) or t.squashed.get(key.replace(" ", ""))


@cache
def _resolve_key(key: str) -> NamedColour | None:
    if not key:
        return None
    rgb = _parse_hex(key)
    if rgb is not None:
        return NamedColour(name=_hex(rgb), hex=_hex(rgb), rgb=rgb, source="hex")
    found = _lookup(key)
    if found is not None:
        return found
    first, _, rest = key.partition(" ")
    if first in _MODIFIERS and rest:
        base = _resolve_key(rest)
        if base is not None:
            return _modify(first, base)
    return None


def resolve_colour(text: str) -> NamedColour | None:
    """The colour a phrase names, or ``None``: "navy", "Forest Green", "#e07b39", "#fa0", "light blue",
    "neon pink", "dusty sage". Case, spacing, hyphens and grey/gray do not matter."""
    return _resolve_key(_key(text))


def suggest_colours(text: str, n: int = 3) -> list[str]:
    """Up to ``n`` known names nearest to ``text`` by spelling ("teel" -> "teal", ...), best first."""
    key = _key(text)
    if not key or n <= 0:
        return []
    t = _tables()
    squashed_names = {k: c.name for k, c in t.squashed.items()}
    out: list[str] = []

    def close(word: str, prefix: str = "") -> None:
        for k in difflib.get_close_matches(word.replace(" ", ""), squashed_names, n=n, cutoff=0.6):
            name = f"{prefix}{squashed_names[k]}"
            if name not in out:
                out.append(name)

    first, _, rest = key.partition(" ")
    if first in _MODIFIERS and rest and _resolve_key(rest) is None:
        close(rest, f"{first} ")  # "light bleu" -> "light blue", ...
    close(key)
    return out[:n]


_TOKEN = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b|[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
_JOIN = re.compile(r"[ \t\-/]+")


def find_colour_phrases(text: str) -> list[tuple[int, int, NamedColour]]:
    """Colour phrases in free text as ``(start, end, colour)``, in order, non-overlapping.

    At each word the longest phrase that names a colour wins, modifiers included ("a pale
    dusty-rose mug" -> "pale dusty-rose"). Words of a phrase may be joined by spaces, hyphens or
    slashes, not by commas or "and". Names that are also everyday words ("sky", "leather",
    "dark") count only inside a longer phrase ("sky blue", "dark leather").
    """
    tables = _tables()
    tokens = [(mt.start(), mt.end()) for mt in _TOKEN.finditer(text)]
    window = tables.longest + 2  # room for two modifiers
    out: list[tuple[int, int, NamedColour]] = []
    i = 0
    while i < len(tokens):
        hit: tuple[int, NamedColour] | None = None
        last = i
        while last + 1 < len(tokens) and last + 1 - i < window:
            if not _JOIN.fullmatch(text[tokens[last][1] : tokens[last + 1][0]]):
                break
            last += 1
        for j in range(last, i - 1, -1):
            phrase = text[tokens[i][0] : tokens[j][1]]
            colour = resolve_colour(phrase)
            if colour is None:
                continue
            if j == i and _key(phrase) in tables.ambiguous:
                continue
            hit = (j, colour)
            break
        if hit is None:
            i += 1
            continue
        j, colour = hit
        out.append((tokens[i][0], tokens[j][1], colour))
        i = j + 1
    return out
