"""Product photos drawn in the tests (shapes the demo model never drew), with the masks a shop would
paint for them, and the check that a recolour kept to its mask."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

SHADE = [(30, 14), (66, 14), (78, 44), (18, 44)]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def desk_lamp() -> tuple[bytes, bytes, np.ndarray]:
    """A mustard desk lamp on a warm grey backdrop and a mask of its shade only: the photo, the mask,
    and which pixels the mask covers. The stem and base are outside the mask, though an automatic
    cut-out would take them."""
    photo = Image.new("RGB", (96, 96), (214, 208, 199))
    d = ImageDraw.Draw(photo)
    d.polygon(SHADE, fill=(196, 160, 58))
    d.rectangle((45, 44, 51, 78), fill=(60, 60, 64))  # the stem
    d.ellipse((28, 74, 68, 86), fill=(60, 60, 64))  # the base
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).polygon(SHADE, fill=255)
    return _png(photo), _png(mask), np.asarray(mask) >= 128


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def inside_median(png: bytes, covered: np.ndarray) -> tuple[float, float, float]:
    """The median colour well inside the covered area (one pixel in from its edge)."""
    inner = covered & np.roll(covered, 1, 0) & np.roll(covered, -1, 0) & np.roll(covered, 1, 1) & np.roll(covered, -1, 1)
    r, g, b = np.median(rgb(png)[inner], axis=0)
    return float(r), float(g), float(b)


def changed_outside(png: bytes, photo_png: bytes, covered: np.ndarray) -> float:
    """The share of the pixels outside the mask that differ visibly from the photo."""
    got, before = rgb(png), rgb(photo_png)
    assert got.shape == before.shape
    return float((np.abs(got - before).max(axis=2) > 8)[~covered].mean())
