"""Product photos drawn for the colourway tests: shaded, anti-aliased, on plain backgrounds.

Each returns ``(photo, cover)``: the RGB photo and how much of each pixel is product (0-1; the
anti-aliased edge is in between). Shapes are drawn at 4x and box-filtered down, so edges are anti-aliased like a photo's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

SS = 4  # supersampling


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0 : h * SS, 0 : w * SS].astype(np.float32)
    return (xx + 0.5) / (w * SS), (yy + 0.5) / (h * SS)  # 0..1 across the picture


def _down(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // SS, a.shape[1] // SS
    return a.reshape(h, SS, w, SS, *a.shape[2:]).mean(axis=(1, 3))


def _compose(
    w: int,
    h: int,
    background: tuple[int, int, int],
    cover: np.ndarray,
    colour: np.ndarray,
    shadow: np.ndarray | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[Image.Image, np.ndarray]:
    bg = np.broadcast_to(np.array(background, np.float32), (*cover.shape, 3)).copy()
    if shadow is not None:
        bg *= 1.0 - shadow[..., None]
    img = bg * (1.0 - cover[..., None]) + colour * cover[..., None]
    small, small_cover = _down(img), _down(cover)
    if noise:
        small = small + np.random.default_rng(seed).normal(0.0, noise, small.shape)
    photo = Image.fromarray(np.clip(np.rint(small), 0, 255).astype(np.uint8), mode="RGB")
    assert photo.size == (w, h)
    return photo, small_cover.astype(np.float32)


def _paint(base: tuple[int, int, int], light: np.ndarray, gloss: np.ndarray | None = None) -> np.ndarray:
    out = np.array(base, np.float32) * light[..., None]
    if gloss is not None:
        out = out + (255.0 - out) * gloss[..., None]
    return np.clip(out, 0, 255)


def shaded_bottle(w: int, h: int, background: tuple[int, int, int], noise: float = 0.0) -> tuple[Image.Image, np.ndarray]:
    """A glass-like bottle: cylinder shading, a specular streak, a shoulder and a neck."""
    x, y = _grid(w, h)
    aspect = w / h
    half = np.where(y > 0.38, 0.2, np.where(y > 0.26, 0.06 + (y - 0.26) / 0.12 * 0.14, 0.06)) / aspect * 0.9
    cx = 0.5
    inside = (np.abs(x - cx) < half) & (y > 0.1) & (y < 0.93)
    u = np.clip((x - cx) / half, -1, 1)
    light = 0.3 + 0.7 * np.sqrt(np.clip(1 - u**2, 0, 1))
    gloss = 0.65 * np.exp(-(((u + 0.42) / 0.1) ** 2)) * (y > 0.14)
    colour = _paint((30, 140, 125), light, gloss)  # teal
    return _compose(w, h, background, inside.astype(np.float32), colour, noise=noise, seed=1)


def table_lamp(
    w: int, h: int, background: tuple[int, int, int], noise: float = 0.0, shadow_depth: float = 0.12
) -> tuple[Image.Image, np.ndarray]:
    """A conical shade lit from inside, a thin stem, a round base, a shadow on the floor."""
    x, y = _grid(w, h)
    aspect = w / h
    sx = (x - 0.5) * aspect  # square units across
    top, bottom = 0.12, 0.45
    t = (y - top) / (bottom - top)
    shade = (t >= 0) & (t <= 1) & (np.abs(sx) < 0.12 + 0.16 * np.clip(t, 0, 1))
    stem = (y > bottom) & (y < 0.86) & (np.abs(sx) < 0.018)
    base = ((sx / 0.17) ** 2 + ((y - 0.88) / 0.05) ** 2) <= 1
    inside = shade | stem | base
    rel = np.clip(sx / (0.12 + 0.16 * np.clip(t, 0, 1)), -1, 1)
    light = np.where(shade, 0.55 + 0.4 * np.clip(t, 0, 1) * np.sqrt(1 - rel**2 * 0.8), 0.0)
    light = np.where(stem, 0.5 + 0.4 * np.cos(np.clip(sx / 0.018, -1, 1) * 1.4), light)
    light = np.where(base & ~stem, 0.45 + 0.45 * np.clip(1 - ((y - 0.86) / 0.07), 0, 1), light)
    colour = _paint((205, 160, 40), light)  # mustard
    floor = ((sx / 0.3) ** 2 + ((y - 0.94) / 0.035) ** 2) <= 1
    shadow = floor.astype(np.float32) * shadow_depth
    return _compose(w, h, background, inside.astype(np.float32), colour, shadow, noise=noise, seed=2)


def slatted_chair(w: int, h: int, background: tuple[int, int, int], noise: float = 0.0) -> tuple[Image.Image, np.ndarray]:
    """A wooden chair, three-quarter view: grained slats with background between them, thin legs."""
    x, y = _grid(w, h)
    aspect = w / h
    sx = (x - 0.5) * aspect
    seat = (y > 0.5) & (y < 0.57) & (np.abs(sx + (y - 0.5) * 0.4) < 0.22)
    legs = np.zeros_like(seat)
    for lx in (-0.21, 0.16, -0.13, 0.08):
        legs |= (y > 0.56) & (y < 0.92) & (np.abs(sx - lx) < 0.016)
    posts = (y > 0.1) & (y < 0.52) & ((np.abs(sx + 0.2) < 0.02) | (np.abs(sx - 0.16) < 0.02))
    slats = np.zeros_like(seat)
    for sy in (0.14, 0.25, 0.36):
        slats |= (y > sy) & (y < sy + 0.06) & (sx > -0.21) & (sx < 0.17)
    inside = seat | legs | posts | slats
    grain = 0.85 + 0.15 * np.sin(sx * 180 + np.sin(y * 40) * 2.0) * np.cos(y * 23)
    light = grain * np.where(seat, 1.0, np.where(legs, 0.7, 0.85))
    colour = _paint((150, 95, 55), light)  # walnut brown
    return _compose(w, h, background, inside.astype(np.float32), colour, noise=noise, seed=3)


SHAPES: dict[str, Callable[..., tuple[Image.Image, np.ndarray]]] = {
    "bottle": shaded_bottle,
    "lamp": table_lamp,
    "chair": slatted_chair,
}
