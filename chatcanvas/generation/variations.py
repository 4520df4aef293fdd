"""Product variations: one inpainting spec per variation ("navy", "forest green", ...).

Pure helpers for the assistant's ``vary_product``: the photo and its mask (see
:mod:`chatcanvas.generation.product_mask`) are stored first, then each variation repaints the
masked product with "a <variation> <product words>", keeping the shape and the background.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from PIL import Image

from chatcanvas import messages as m
from chatcanvas.errors import SpecError
from chatcanvas.types import ImageSpec

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.store import Store

__all__ = [
    "DEFAULT_STRENGTH",
    "MAX_VARIATION_CHARS",
    "MAX_VARIATIONS",
    "clean_variations",
    "fit_aspect",
    "prepare_variations",
    "variation_prompt",
    "variation_specs",
]

MAX_VARIATIONS = 8
MAX_VARIATION_CHARS = 60
DEFAULT_STRENGTH = 0.95  # recolouring needs nearly a full repaint inside the mask
DEMO_SIDE = 64


def clean_variations(variations: list[str]) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively, order kept) variations; SpecError if unusable."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in variations:
        v = re.sub(r"\s+", " ", str(raw)).strip().strip(",;")
        if not v or len(v) > MAX_VARIATION_CHARS:
            raise SpecError(m.BAD_VARIATION.format(limit=MAX_VARIATION_CHARS))
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    if not out:
        raise SpecError(m.NO_VARIATIONS)
    if len(out) > MAX_VARIATIONS:
        raise SpecError(m.TOO_MANY_VARIATIONS.format(n=len(out), limit=MAX_VARIATIONS))
    return out


def variation_prompt(variation: str, base_prompt: str) -> str:
    """An article, the variation, the product words: ``("navy", "canvas tote")`` -> "a navy canvas tote"."""
    base = re.sub(r"^(a|an|the)\s+", "", base_prompt.strip(), flags=re.IGNORECASE)
    article = "an" if variation[:1].lower() in "aeiou" else "a"
    return f"{article} {variation} {base}".strip()


def fit_aspect(size: tuple[int, int], base_side: int, settings: Settings) -> tuple[int, int]:
    """A generation size with ``size``'s aspect ratio and about ``base_side``² pixels.

    Sides are multiples of 8, at least 8, and within the configured side and pixel limits.
    """
    w, h = size
    if w <= 0 or h <= 0:
        raise SpecError(m.NOT_AN_IMAGE)
    ratio = w / h
    area = float(min(base_side * base_side, settings.max_pixels))
    fw, fh = (area * ratio) ** 0.5, (area / ratio) ** 0.5
    shrink = min(1.0, settings.max_side / max(fw, fh))
    fw, fh = fw * shrink, fh * shrink
    out_w = max(8, min(settings.max_side // 8 * 8, int(round(fw / 8)) * 8))
    out_h = max(8, min(settings.max_side // 8 * 8, int(round(fh / 8)) * 8))
    while out_w * out_h > settings.max_pixels and max(out_w, out_h) > 8:
        if out_w >= out_h:
            out_w -= 8
        else:
            out_h -= 8
    return out_w, out_h


def _default_side(settings: Settings) -> int:
    if settings.size:
        sw, sh = settings.size
        return int(round((sw * sh) ** 0.5))
    return DEMO_SIDE if settings.using_demo_model else 512


def variation_specs(
    image_id: str,
    mask_id: str,
    variations: list[str],
    base_prompt: str,
    settings: Settings,
    *,
    size: tuple[int, int] | None = None,
    base_side: int | None = None,
    seed: int | None = None,
    strength: float = DEFAULT_STRENGTH,
    negative_prompt: str = "",
    backend: str | None = None,
) -> list[ImageSpec]:
    """One inpainting :class:`ImageSpec` per variation, in order.

    ``image_id`` / ``mask_id`` are store refs (``store.put_upload``) of the photo and its mask
    (white = repaint). ``size`` is the photo's size: the specs keep its aspect ratio at about
    ``base_side``² pixels (default: the configured size, else 64 for the demo model, else 512).
    The same ``seed`` (when given) for every variation keeps them comparable.
    """
    cleaned = clean_variations(variations)
    width = height = None
    if size is not None:
        width, height = fit_aspect(size, base_side or _default_side(settings), settings)
    specs = [
        ImageSpec(
            prompt=variation_prompt(v, base_prompt),
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            count=1,
            seed=seed,
            init_image=image_id,
            mask_image=mask_id,
            strength=strength,
            backend=backend,
        )
        for v in cleaned
    ]
    for spec in specs:
        settings.limits.check(spec)
    return specs


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def prepare_variations(
    photo: Image.Image,
    variations: list[str],
    store: Store,
    settings: Settings,
    *,
    mask: Image.Image | None = None,
    subject: str = "",
    native: int | None = None,
    seed: int | None = None,
    strength: float = DEFAULT_STRENGTH,
) -> list[ImageSpec]:
    """Store the photo and its mask (given, or cut out by :func:`product_mask`), then the specs.

    ``photo`` and ``mask`` come from :func:`chatcanvas.images.load_upload`; a mask must be the
    photo's size (white = the product to repaint). ``subject`` is the product words ("mug");
    ``native`` the model's native side, so the specs keep the photo's aspect at about that size.
    """
    from chatcanvas.generation.product_mask import product_mask

    cleaned = clean_variations(variations)  # refuse bad input before storing anything
    if mask is not None:
        if mask.size != photo.size:
            raise SpecError(
                m.MASK_SIZE_MISMATCH.format(mw=mask.width, mh=mask.height, w=photo.width, h=photo.height)
            )
        mask_l = mask.convert("L").point(lambda v: 255 if v >= 128 else 0)
    else:
        mask_l = product_mask(photo)
    image_id = store.put_upload(_png(photo.convert("RGB")))
    mask_id = store.put_upload(_png(mask_l))
    return variation_specs(
        image_id,
        mask_id,
        cleaned,
        subject.strip() or "product",
        settings,
        size=photo.size,
        base_side=native,
        seed=seed,
        strength=strength,
    )
