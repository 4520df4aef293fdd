"""Colour scoring for demo-model images: which named colour dominates the foreground.

Shared by the adherence benchmark and the demo-model tests. Pure PIL + numpy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["color_votes", "dominant_color_name", "foreground_mask"]

# Hue bins in degrees (start inclusive, end exclusive); red wraps around 0.
_HUE_BINS: tuple[tuple[str, float, float], ...] = (
    ("red", 345.0, 360.0),
    ("red", 0.0, 12.0),
    ("orange", 12.0, 38.0),
    ("yellow", 38.0, 70.0),
    ("green", 70.0, 165.0),
    ("blue", 165.0, 255.0),
    ("purple", 255.0, 298.0),
    ("pink", 298.0, 345.0),
)

_NAMES: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "black")


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def foreground_mask(img: Image.Image, threshold: float = 0.18) -> np.ndarray:
    """Pixels clearly different from the white background (bool array, H x W)."""
    rgb = _rgb(img)
    return np.asarray(1.0 - rgb.min(axis=-1) > threshold, dtype=bool)


def color_votes(img: Image.Image) -> dict[str, int]:
    """Foreground pixel counts per colour name (grey pixels such as soles do not vote)."""
    rgb = _rgb(img)
    fg = foreground_mask(img)
    mx = rgb.max(axis=-1)
    mn = rgb.min(axis=-1)
    delta = mx - mn
    sat = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    d = np.maximum(delta, 1e-6)
    hue = np.where(
        mx == r,
        ((g - b) / d) % 6.0,
        np.where(mx == g, (b - r) / d + 2.0, (r - g) / d + 4.0),
    )
    hue = (hue * 60.0) % 360.0
    dark = mx < 0.3
    chromatic = (sat >= 0.3) & ~dark
    votes = {name: 0 for name in _NAMES}
    votes["black"] = int((fg & (dark | ((sat < 0.3) & (mx < 0.45)))).sum())
    for name, lo, hi in _HUE_BINS:
        votes[name] += int((fg & chromatic & (hue >= lo) & (hue < hi)).sum())
    return votes


def dominant_color_name(img: Image.Image) -> str:
    """The named colour (one of draw.COLORS) that covers most of the non-background pixels.

    Dark pixels count as "black" at half weight, so a dark outline or shading does not
    outvote the body colour; returns "none" for an empty (all-white) image.
    """
    votes = color_votes(img)
    weighted = {k: (v * 0.5 if k == "black" else float(v)) for k, v in votes.items()}
    best = max(weighted, key=lambda k: weighted[k])
    if weighted[best] <= 0:
        return "none"
    return best
