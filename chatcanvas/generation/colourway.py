"""Deterministic product colourways: the same photo with the product in another colour.

No diffusion: the product's pixels are moved in OKLab. Its lightness is scaled so that its median
lands on the target's (shadows keep their ratio to it, highlights stay highlights, texture stays),
hue is set to the target's and chroma follows the target's with a physical falloff towards black
and white, cut to what sRGB can show. The result is laid back over the original through the
product's alpha, so the silhouette is the photo's own and every background pixel away from the
product's anti-aliased edge is the original's, at the photo's own size.

The alpha comes from the mask (the user's, else :func:`product_mask`). On a plain background it is
refined: mask pixels that look like the background are background again, so a loose brush stroke
or the mask's safety margin does not paint a halo, and the photo's own anti-aliasing becomes the
feathered seam. On a busy background the user's mask is used as given, feathered inwards.

Pure numpy and scipy.ndimage (a scikit-image dependency); imported lazily by callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from chatcanvas import messages as m
from chatcanvas.colours import linear_to_oklab, oklab_to_linear
from chatcanvas.errors import InputImageError

__all__ = ["ColourwayResult", "Region", "product_region", "recolour", "recolour_image", "recolour_lab"]

MASK_ON = 128  # mask values at or over this are the product
EDGE_PX = 2  # how far outside the refined product the anti-aliased edge may reach
MIN_KEEP = 0.3  # refining may not take away more than this share of the user's mask
STATS_SAMPLE = 40_000  # pixels enough for a median
SHADOW_MIN, SHADOW_SPREAD = 0.3, 0.05  # a shadow keeps 30-100 % of the backdrop, the same in each channel
COLOURFUL_RGB = 40.0  # median max-min channel difference of a coloured product
MARGIN_SHARE = 0.03  # how far inside its edge a mask may be loose, as a share of the photo's side
HUE_CHROMA = 0.02  # targets under this OKLab chroma are greys: no hue to set
SOURCE_CHROMA = 0.04  # products over this median OKLab chroma are coloured (their highlights paler)


@dataclass(frozen=True)
class ColourwayResult:
    image: Image.Image  # the photo's mode "RGB", its size
    alpha: np.ndarray  # float32 HxW in [0, 1]: how much of each pixel is recoloured
    product: np.ndarray  # bool HxW: the product's pixels (alpha 1 before the edge)
    rgb: tuple[int, int, int]  # the target


# ---------------------------------------------------------------- colour maths


_SRGB_TO_LINEAR = np.where(
    (v := np.arange(256) / 255.0) <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4
).astype(np.float32)


def _linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def _oklab8(rgb8: np.ndarray) -> np.ndarray:
    return linear_to_oklab(_SRGB_TO_LINEAR[rgb8]).astype(np.float32)


def _chroma_limit(hue: float, n: int = 257) -> tuple[np.ndarray, np.ndarray]:
    """The largest in-gamut OKLab chroma at this hue for ``n`` lightness steps in [0, 1]."""
    lightness = np.linspace(0.0, 1.0, n)
    lo, hi = np.zeros(n), np.full(n, 0.5)
    ca, sa = np.cos(hue), np.sin(hue)
    for _ in range(22):
        mid = (lo + hi) / 2
        lin = oklab_to_linear(np.stack([lightness, mid * ca, mid * sa], axis=-1))
        ok = (_chanmax(lin) <= 1 + 1e-5) & (-_chanmax(-lin) >= -1e-5)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    lo[0] = lo[-1] = 0.0
    return lightness, lo


# ---------------------------------------------------------------- where the product is


@dataclass(frozen=True)
class Region:
    """Where the product is and how much of each pixel is product.

    The arrays cover ``box`` of the photo (the product's surroundings); outside it is background.
    ``cover``: float32 in [0, 1], the share of each pixel that is product (1 inside, falling
    across the anti-aliased edge, 0 on the background). ``product``: bool HxW, the pixels that are
    all product. ``background``: the background colour around each pixel, when the background is
    plain (then the edge pixels are un-mixed from it before they are recoloured).
    """

    cover: np.ndarray
    product: np.ndarray
    background: np.ndarray | None  # float32 HxWx3
    box: tuple[slice, slice] = (slice(None), slice(None))  # where in the photo these arrays lie


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Grown by ``px`` pixels (a square, 8-connected), by a separable max filter."""
    from scipy import ndimage

    return ndimage.maximum_filter(mask, size=2 * px + 1, mode="constant", cval=0) if px > 0 else mask


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    """Shrunk by ``px`` pixels; the picture's edge counts as inside (as scipy's binary_erosion does not)."""
    from scipy import ndimage

    return ndimage.minimum_filter(mask, size=2 * px + 1, mode="nearest") if px > 0 else mask


def _feathered(inside: np.ndarray) -> Region:
    """A hard mask softened inwards only: 1 inside, easing to about 0.5 on its edge, 0 outside."""
    from scipy import ndimage

    soft = ndimage.gaussian_filter(inside.astype(np.float32), 0.7)
    cover = np.where(inside, np.clip(soft * 2.0 - 0.5, 0.5, 1.0), 0.0).astype(np.float32)
    return Region(cover=cover, product=_erode(inside, 1), background=None)


def product_region(photo: Image.Image, mask: Image.Image | None = None) -> Region:
    """Where the product is: from ``mask`` (white = product), else cut out by :func:`product_mask`.

    Raises :class:`InputImageError` when no product can be separated (a busy background and no
    mask, an empty mask, a mask of another size).
    """

    from chatcanvas.generation.product_mask import MIN_BORDER_SHARE, background_color, product_mask

    rgb_img = photo.convert("RGB")
    user_mask = mask is not None
    bg, share, noise = background_color(rgb_img)
    if mask is None:
        mask = product_mask(rgb_img, background=(bg, share, noise))
    if mask.size != rgb_img.size:
        raise InputImageError(
            m.MASK_SIZE_MISMATCH.format(mw=mask.width, mh=mask.height, w=photo.width, h=photo.height)
        )
    inside = np.asarray(mask.convert("L")) >= MASK_ON
    if not inside.any():
        raise InputImageError(m.EMPTY_MASK if user_mask else m.NO_PRODUCT_FOUND)

    if share < MIN_BORDER_SHARE:  # a busy background: the user's mask as given
        return _feathered(inside)
    margin = max(3, round(min(rgb_img.size) * MARGIN_SHARE))  # how loose a mask may be
    # Work on the mask's box plus room for the filters below: the rest is background anyway.
    ys, xs = np.nonzero(inside)
    pad = margin + 4 * EDGE_PX + 8
    y0, y1 = max(0, ys.min() - pad), min(inside.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(inside.shape[1], xs.max() + pad + 1)
    box = (slice(y0, y1), slice(x0, x1))
    region = _plain_region(np.asarray(rgb_img)[box], inside[box], bg, noise, margin, user_mask)
    if region is None:  # most of what the user painted looks like the background: trust them
        return _feathered(inside)
    return Region(cover=region.cover, product=region.product, background=region.background, box=box)


def _chanmax(a: np.ndarray) -> np.ndarray:
    """The largest of the three channels (much faster than ``max(axis=-1)``)."""
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def _plain_region(
    src: np.ndarray, inside: np.ndarray, bg: tuple[int, int, int], noise: float, margin: int, user_mask: bool
) -> Region | None:
    from scipy import ndimage

    from chatcanvas.generation.product_mask import MIN_THRESHOLD

    rgb = src.astype(np.float32)
    plain = np.array(bg, np.float32)
    dist = _chanmax(np.abs(rgb - plain))
    threshold = min(96.0, max(MIN_THRESHOLD, 4.0 * noise))
    exact = dist <= max(6.0, 2.5 * noise)
    # Mask pixels that look like the background and touch the real background are background: near
    # the mask's edge (its margin, a loose brush stroke) anything background-like, deeper in only the
    # background colour itself (the gap between a chair's slats or legs). A product's shading that
    # passes through the backdrop's grey stays product. Enclosed background-like pixels are product
    # (a highlight), unless they are the background colour (a hole seen through a handle).
    near_edge = inside & ~_erode(inside, margin)
    passable = ~inside | (near_edge & (dist < threshold)) | exact
    shadow = _shadow_like(rgb, plain)
    if _colourful(rgb[inside & ~shadow & ~exact]):
        # A coloured product: pixels that are the backdrop darkened (a contact shadow, however dark)
        # and reach the real background are background too, however deep in the mask.
        passable |= shadow
    reached = ndimage.binary_propagation(~inside, mask=passable)
    product = inside & ~reached
    if user_mask and product.sum() < inside.sum() * MIN_KEEP:
        return None
    product &= ~exact
    if not product.any():
        raise InputImageError(m.NO_PRODUCT_FOUND)

    # Coverage across the edge: a pixel's distance from the background around it (a shadow, a
    # gradient) over that of the solid product next to it; the photo's own anti-aliasing becomes
    # the seam, and edge pixels are un-mixed from that background before they are recoloured.
    local = _local_background(rgb, reached & ~_dilate(product, 1), bg)
    d_local = _chanmax(np.abs(rgb - local))
    nearer = d_local < dist  # each pixel's background: the plain colour, or the one around it
    dist = np.where(nearer, d_local, dist)
    local = np.where(nearer[..., None], local, plain)
    solid = _erode(product, 1)
    solid = solid if solid.any() else product
    reference = ndimage.maximum_filter(np.where(solid, dist, 0.0), size=2 * EDGE_PX + 3)
    band = _dilate(product, EDGE_PX) & ~solid
    low = max(4.0, 2.0 * noise)
    edge = np.where(dist > low, dist / np.maximum(reference, 1.0), 0.0)
    cover = np.where(solid, 1.0, np.where(band, np.clip(edge, 0.0, 1.0), 0.0)).astype(np.float32)
    return Region(cover=cover, product=solid, background=local.astype(np.float32))


def _shadow_like(rgb: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """Pixels that are the backdrop's colour darkened (each channel by about the same factor)."""
    ratio = rgb / np.maximum(plain, 1.0)
    k = ratio.mean(axis=-1)
    spread = _chanmax(np.abs(ratio - k[..., None]))
    return (k > SHADOW_MIN) & (k < 1.0) & (spread < SHADOW_SPREAD)


def _colourful(pixels: np.ndarray) -> bool:
    """Is the product coloured (not black, grey or white), judged by its median chroma?"""
    if len(pixels) == 0:
        return False
    step = max(1, len(pixels) // STATS_SAMPLE)
    px = pixels[::step]
    chroma = _chanmax(px) - (-_chanmax(-px))
    return float(np.median(chroma)) >= COLOURFUL_RGB


def _local_background(rgb: np.ndarray, known: np.ndarray, fallback: tuple[int, int, int]) -> np.ndarray:
    """The background colour around each pixel: the mean of the ``known`` background pixels near it."""
    from scipy import ndimage

    size = 4 * EDGE_PX + 5
    weight = ndimage.uniform_filter(known.astype(np.float32), size=size)
    total = np.stack(
        [ndimage.uniform_filter(np.where(known, rgb[..., c], 0.0), size=size) for c in range(3)], axis=-1
    )
    have = weight > 1e-3
    local = np.where(have[..., None], total / np.maximum(weight, 1e-3)[..., None], np.array(fallback, np.float32))
    return local.astype(np.float32)


# ---------------------------------------------------------------- the recolour


def _target_lab(target: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(linear_to_oklab(_SRGB_TO_LINEAR[np.array(target, dtype=np.intp)]), dtype=np.float64)


def _median(values: np.ndarray, where: np.ndarray) -> float:
    """The median of ``values[where]`` (of all when none), from at most STATS_SAMPLE of them."""
    picked = values[where] if where.any() else values
    step = max(1, len(picked) // STATS_SAMPLE)
    return float(np.median(picked[::step]))


def recolour_lab(lab: np.ndarray, solid: np.ndarray, target: tuple[int, int, int]) -> np.ndarray:
    """New OKLab colours (N x 3) for product colours ``lab`` (N x 3) in ``target``.

    ``solid`` (bool, N) marks the colours the statistics come from (pixels all product).
    """
    t_lab = _target_lab(target)
    t_l = float(t_lab[0])
    t_c = float(np.hypot(t_lab[1], t_lab[2]))
    hue = float(np.arctan2(t_lab[2], t_lab[1]))
    lightness = lab[:, 0]

    # Lightness: below the median scaled by target/median (shading keeps its ratio); above it at
    # most as steep, and flattened so the brightest highlights still fit under white.
    src_med = max(_median(lightness, solid), 1e-3)
    top = float(np.percentile(lightness[solid][:: max(1, int(solid.sum()) // STATS_SAMPLE)], 99)) if solid.any() else 1.0
    k_lo = t_l / src_med
    k_hi = min(max(k_lo, 1.0), (1.0 - t_l) / max(top - src_med, 1e-3))
    new_l = np.where(lightness <= src_med, lightness * k_lo, t_l + (lightness - src_med) * k_hi)
    new_l = np.clip(new_l, 0.0, 1.0)

    if t_c < HUE_CHROMA:  # a grey target: neutral, with the target's own slight tint
        return np.stack([new_l, np.full_like(new_l, t_lab[1]), np.full_like(new_l, t_lab[2])], axis=-1)
    # Chroma: the target's, fading with the shadows towards black (shading scales the whole colour),
    # cut to the gamut (which also fades it towards white), then raised where the gamut allows so
    # that the product's median chroma is the target's.
    chroma = t_c * np.clip(new_l / max(t_l, 1e-3), 0.0, 1.0)
    src_c = np.hypot(lab[:, 1], lab[:, 2])
    src_c_med = _median(src_c, solid)
    if src_c_med >= SOURCE_CHROMA:  # a coloured product: its highlights keep their share of white
        paler = np.clip(src_c / src_c_med, 0.0, 1.0)
        chroma = np.where(lightness > src_med, chroma * paler, chroma)
    grid, limit = _chroma_limit(hue)
    ceiling = np.interp(new_l, grid, limit)
    cut = np.minimum(chroma, ceiling)
    for _ in range(4):
        got = _median(cut, solid)
        if got <= 0 or got >= t_c * 0.995:
            break
        chroma = chroma * min(t_c / got, 2.0)
        cut = np.minimum(chroma, ceiling)
    return np.stack([new_l, cut * np.cos(hue), cut * np.sin(hue)], axis=-1)


def recolour(photo: Image.Image, mask: Image.Image | None, target: tuple[int, int, int]) -> ColourwayResult:
    """The photo with its product in ``target`` (sRGB 0-255), at the photo's size.

    ``mask``: white = product (the user's), or ``None`` to find the product on a plain background.
    Raises :class:`InputImageError` when no product can be separated.
    """
    rgb_img = photo.convert("RGB")
    region = product_region(rgb_img, mask)
    full = np.asarray(rgb_img)
    src = full[region.box]
    sel = region.cover > 0
    pixels = src[sel].astype(np.float32)
    cover = region.cover[sel][:, None]
    if region.background is not None:  # un-mix the edge: the product's own colour under the seam
        bg = region.background[sel]
        colour = np.clip(bg + (pixels - bg) / np.maximum(cover, 0.05), 0.0, 255.0)
    else:
        colour = pixels
    lab = _oklab8(np.rint(colour).astype(np.uint8))
    new = recolour_lab(lab, region.product[sel], target)
    new_rgb = _linear_to_srgb8(oklab_to_linear(new)).astype(np.float32)
    out = full.copy()
    part = out[region.box]
    part[sel] = np.clip(np.rint(pixels + cover * (new_rgb - colour)), 0, 255).astype(np.uint8)
    alpha = np.zeros(full.shape[:2], np.float32)
    product = np.zeros(full.shape[:2], bool)
    alpha[region.box], product[region.box] = region.cover, region.product
    return ColourwayResult(image=Image.fromarray(out, mode="RGB"), alpha=alpha, product=product, rgb=target)


def recolour_image(photo: Image.Image, mask: Image.Image | None, target: tuple[int, int, int]) -> Image.Image:
    """Just the picture of :func:`recolour`."""
    return recolour(photo, mask, target).image
