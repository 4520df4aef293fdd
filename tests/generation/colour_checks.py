"""What a shopper sees in a colourway, measured: size, silhouette, background, colour."""

from __future__ import annotations

import numpy as np
from PIL import Image


def silhouette_iou(
    original: Image.Image, result: Image.Image, cover: np.ndarray, background: tuple[int, int, int]
) -> float:
    """IoU of the drawn silhouette with what the result shows as product.

    Shown: the pixels that stand out from the background colour, or that the colourway changed (a
    white product on white is changed, not outstanding). ``cover`` is the drawn product's share of
    each pixel; the anti-aliased edge pixels (neither all product nor all background) are left out
    of the count, as a trimap's unknown band.
    """
    from scipy import ndimage

    o = np.asarray(original.convert("RGB"), dtype=np.int16)
    r = np.asarray(result.convert("RGB"), dtype=np.int16)
    stands_out = np.max(np.abs(r - np.array(background, np.int16)), axis=-1) > 40
    changed = np.max(np.abs(r - o), axis=-1) > 24
    shown = ndimage.median_filter(stands_out | changed, size=3)  # specks (a watermark's) are no outline
    truth, sure = cover > 0.95, (cover < 0.05) | (cover > 0.95)
    return float((shown & truth & sure).sum() / max(1, ((shown | truth) & sure).sum()))


def background_psnr(original: Image.Image, result: Image.Image, cover: np.ndarray) -> float:
    """PSNR (dB) of the result against the original over every pixel with no product in it."""
    outside = cover <= 0.0
    o = np.asarray(original.convert("RGB"), dtype=np.float64)[outside]
    r = np.asarray(result.convert("RGB"), dtype=np.float64)[outside]
    mse = float(((o - r) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def median_delta_e(result: Image.Image, truth: np.ndarray, target: tuple[int, int, int]) -> float:
    """CIEDE2000 between the product's median CIELAB colour and the target's."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    px = np.asarray(result.convert("RGB"), dtype=np.float64)[truth] / 255.0
    med = np.median(rgb2lab(px[None])[0], axis=0)
    want = rgb2lab(np.array(target, np.float64)[None, None] / 255.0)[0, 0]
    return float(deltaE_ciede2000(med, want))
