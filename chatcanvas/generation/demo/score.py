"""Colour scoring for demo-model images: which named colour the product is.

Every pixel of the product's silhouette is given the nearest of the reference colours
(``draw.COLORS``) by CIEDE2000 colour difference; the name with most pixels wins. The
silhouette is the non-background pixels with their enclosed holes filled, so a white
product drawn with a grey outline on a white background is still a (white) product.

Shared by the adherence benchmark and the demo-model tests. Pure PIL + numpy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from chatcanvas.generation.demo.draw import COLORS

__all__ = ["ciede2000", "color_votes", "dominant_color_name", "foreground_mask", "silhouette", "srgb_to_lab"]

_NAMES: tuple[str, ...] = tuple(COLORS)


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB values in [0, 1], shape (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between broadcastable L*a*b* arrays."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar = (l1 + l2) / 2
    cp_bar = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) > 180, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2), h_sum / 2
    )
    h_bar = np.where(c1p * c2p == 0, h_sum, h_bar)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.asarray(
        np.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (dhh / s_h) ** 2 + r_t * (dc / s_c) * (dhh / s_h))
    )


_REF_LAB = srgb_to_lab(np.array([COLORS[n] for n in _NAMES], dtype=np.float64) / 255.0)


def foreground_mask(img: Image.Image, threshold: float = 0.18) -> np.ndarray:
    """Pixels clearly different from the white background (bool array, H x W)."""
    rgb = _rgb(img)
    return np.asarray(1.0 - rgb.min(axis=-1) > threshold, dtype=bool)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background region not connected to the image border."""
    outside = np.zeros_like(mask)
    free = ~mask
    outside[0, :], outside[-1, :], outside[:, 0], outside[:, -1] = free[0, :], free[-1, :], free[:, 0], free[:, -1]
    while True:
        grown = outside.copy()
        grown[1:, :] |= outside[:-1, :]
        grown[:-1, :] |= outside[1:, :]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= free
        if (grown == outside).all():
            return np.asarray(~outside, dtype=bool)
        outside = grown


def silhouette(img: Image.Image) -> np.ndarray:
    """The product's pixels: the foreground, small gaps in its outline closed, holes filled."""
    fg = foreground_mask(img)
    if not fg.any():
        return fg
    m = Image.fromarray(fg.astype(np.uint8) * 255)
    closed = np.asarray(m.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))) > 127
    return _fill_holes(closed | fg)


def color_votes(img: Image.Image) -> dict[str, int]:
    """Silhouette pixel counts per reference colour name (nearest by CIEDE2000)."""
    sil = silhouette(img)
    votes = {name: 0 for name in _NAMES}
    if not sil.any():
        return votes
    lab = srgb_to_lab(_rgb(img)[sil])
    nearest = ciede2000(lab[:, None, :], _REF_LAB[None, :, :]).argmin(axis=1)
    for k, n in zip(*np.unique(nearest, return_counts=True), strict=True):
        votes[_NAMES[int(k)]] = int(n)
    return votes


def dominant_color_name(img: Image.Image) -> str:
    """The named colour (one of draw.COLORS) that covers most of the product's silhouette.

    Returns "none" for an empty (all-white) image.
    """
    votes = color_votes(img)
    best = max(votes, key=lambda k: votes[k])
    if votes[best] <= 0:
        return "none"
    return best
