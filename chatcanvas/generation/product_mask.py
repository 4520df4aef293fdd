"""Cut a product out of a photo on a plain background: a mask for recolouring by inpainting.

The background colour is the dominant colour of the photo's border. Pixels clearly different
from it (largest per-channel difference over a threshold that adapts to the border's noise) are
the product; a morphological opening removes specks, a closing fills small gaps, and a small
dilation covers the anti-aliased edge. Soft shadows on the background stay outside the mask.

numpy and scipy.ndimage (square max/min filters); large photos are analysed at a reduced size and
the mask scaled back up.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from chatcanvas import messages as m
from chatcanvas.errors import InputImageError

__all__ = ["background_color", "product_mask"]

WORK_SIDE = 512  # analyse at most this many pixels on the longer side
MIN_THRESHOLD = 32.0  # per-channel difference (0-255) that counts as "not background"
MIN_BORDER_SHARE = 0.5  # the dominant colour must cover this share of the border
MIN_PRODUCT_SHARE = 0.002  # at least this share of the picture must be product
MAX_PRODUCT_SHARE = 0.97


def _odd(n: float) -> int:
    k = max(1, int(round(n)))
    return k if k % 2 else k + 1


def _border(rgb: np.ndarray) -> np.ndarray:
    h, w, _ = rgb.shape
    ring = max(1, round(min(h, w) * 0.02))
    parts = [rgb[:ring].reshape(-1, 3), rgb[-ring:].reshape(-1, 3)]
    parts += [rgb[:, :ring].reshape(-1, 3), rgb[:, -ring:].reshape(-1, 3)]
    return np.concatenate(parts).astype(np.float32)


def background_color(img: Image.Image) -> tuple[tuple[int, int, int], float, float]:
    """The border's dominant colour, the share of the border it covers, and its noise (std)."""
    border = _border(np.asarray(img.convert("RGB")))
    bins = (border // 32).astype(np.int32)
    keys = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    counts = np.bincount(keys, minlength=512)
    top = int(np.argmax(counts))
    # Count the neighbouring bins too: a colour near a bin edge splits over two of them.
    members = np.all(np.abs(bins - np.array([top // 64, (top // 8) % 8, top % 8])) <= 1, axis=1)
    near = border[members]
    center = np.median(near, axis=0)
    close = np.max(np.abs(border - center), axis=1) <= MIN_THRESHOLD
    share = float(close.mean())
    noise = float(border[close].std(axis=0).max()) if close.any() else 255.0
    r, g, b = (int(round(float(c))) for c in center)
    return (r, g, b), share, noise


def product_mask(
    img: Image.Image, *, background: tuple[tuple[int, int, int], float, float] | None = None
) -> Image.Image:
    """A mode "L" mask the size of ``img``: 255 on the product, 0 on the background.

    Works for products on a white or otherwise uniform background. Raises
    :class:`InputImageError` when the background is not plain enough or no product stands out.
    ``background``: :func:`background_color` of ``img`` when the caller has it already.
    """
    rgb_img = img.convert("RGB")
    w, h = rgb_img.size
    scale = min(1.0, WORK_SIDE / max(w, h))
    work = rgb_img if scale >= 1.0 else rgb_img.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    ww, wh = work.size

    bg, share, noise = background if background is not None and work is rgb_img else background_color(work)
    if share < MIN_BORDER_SHARE:
        raise InputImageError(m.BUSY_BACKGROUND)
    threshold = min(96.0, max(MIN_THRESHOLD, 4.0 * noise))
    from scipy import ndimage

    rgb = np.asarray(work, dtype=np.float32)
    absdiff = np.abs(rgb - np.array(bg, dtype=np.float32))
    diff = np.maximum(np.maximum(absdiff[..., 0], absdiff[..., 1]), absdiff[..., 2])
    fg = np.where(diff > threshold, 255, 0).astype(np.uint8)

    side = min(ww, wh)
    close = _odd(side * 0.03)
    grow = _odd(side * 0.02 + 1)
    ys, xs = np.nonzero(fg)
    if len(ys):  # filter only the product's box (plus the filters' reach): the rest stays 0
        pad = 3 + close + grow
        box = (
            slice(max(0, ys.min() - pad), min(wh, ys.max() + pad + 1)),
            slice(max(0, xs.min() - pad), min(ww, xs.max() + pad + 1)),
        )
        part = fg[box]
        if side >= 24:  # opening: drop specks of noise (at tiny sizes a speck may be a detail)
            part = ndimage.maximum_filter(ndimage.minimum_filter(part, 3, mode="nearest"), 3, mode="nearest")
        if close > 1:  # closing: bridge hairline gaps (seams, highlights) inside the product
            part = ndimage.minimum_filter(
                ndimage.maximum_filter(part, close, mode="nearest"), close, mode="nearest"
            )
        fg[box] = ndimage.maximum_filter(part, grow, mode="nearest")  # cover the anti-aliased edge

    covered = float(fg.mean() / 255.0)
    if covered < MIN_PRODUCT_SHARE:
        raise InputImageError(m.NO_PRODUCT_FOUND)
    if covered > MAX_PRODUCT_SHARE:
        raise InputImageError(m.BUSY_BACKGROUND)
    out = Image.fromarray(fg, mode="L")
    if out.size != (w, h):
        out = out.resize((w, h), Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
    return out
