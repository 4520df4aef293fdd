"""Provenance: every image chatcanvas writes says it was made by a model.

Two marks, applied by the one PNG writer (:func:`chatcanvas.generation.metadata.png_with_recipe`):

- :func:`mark` puts an invisible watermark (``dwtDct``, payload ``CCAI``) in the pixels of every image
  of at least 256x256 and records in the recipe whether it did (``Recipe.watermark``);
- :func:`seal` signs the finished PNG with C2PA Content Credentials (see :mod:`.signing`).

:func:`verify_image` reads both back (``chatcanvas verify``, ``POST /v1/verify``). ``CHATCANVAS_PROVENANCE=off``
turns both off, ``CHATCANVAS_WATERMARK=off`` the watermark only. c2pa is imported only when signing or
verifying.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from PIL import Image

from chatcanvas.provenance.verify import VerifyReport, verify_image
from chatcanvas.types import Recipe

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["VerifyReport", "configure", "derived_png", "mark", "seal", "verify_image"]

log = logging.getLogger(__name__)

WATERMARKED = "dwtDct CCAI"
PRODUCT_ONLY = "dwtDct CCAI, on the product only"
TOO_SMALL = "skipped, too small"
OFF = "off"

_configured: list[Settings] = []


def configure(settings: Settings) -> None:
    """The settings used when a caller of the writer passes none (the app calls this at start-up)."""
    _configured[:] = [settings]


@cache
def _loaded() -> Settings:
    from chatcanvas.config import load_settings

    return load_settings()


def settings_or_default(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    return _configured[0] if _configured else _loaded()


def mark(img: Image.Image, recipe: Recipe, settings: Settings | None = None) -> tuple[Image.Image, Recipe]:
    """The image with the invisible watermark (when on and big enough), and the recipe saying so."""
    from chatcanvas.provenance import watermark

    s = settings_or_default(settings)
    if not (s.provenance and s.watermark):
        return img, recipe.model_copy(update={"watermark": OFF})
    if img.width * img.height < watermark.MIN_PIXELS:
        return img, recipe.model_copy(update={"watermark": TOO_SMALL})
    marked = watermark.embed(img)
    if recipe.colourway is not None and recipe.mask_image:
        # a colourway keeps the photo's background pixel for pixel: the mark goes on the product only
        product = _product_area(recipe.mask_image, img.size, s)
        if product is not None:
            return Image.composite(marked, img, product), recipe.model_copy(update={"watermark": PRODUCT_ONLY})
    return marked, recipe.model_copy(update={"watermark": WATERMARKED})


def _product_area(mask_id: str, size: tuple[int, int], settings: Settings) -> Image.Image | None:
    import io

    from chatcanvas.store.db import read_image_ref

    try:
        with Image.open(io.BytesIO(read_image_ref(settings.images_dir, mask_id))) as m_img:
            mask = m_img.convert("L").resize(size)
    except Exception:  # no stored mask (a file from elsewhere): the whole image is marked
        return None
    return mask.point(lambda v: 255 if v >= 128 else 0)


def seal(
    png: bytes,
    recipe: Recipe,
    settings: Settings | None = None,
    *,
    parent: bytes | None = None,
    inputs: Sequence[bytes] = (),
    origin: bytes | None = None,
) -> bytes:
    """``png`` signed with C2PA Content Credentials (unchanged when provenance is off).

    ``parent``: the bytes of the image this one was made from (image-to-image, inpainting); ``inputs``:
    other images that went in (a mask). Not given, they are read from the store by the recipe's
    ``init_image`` / ``mask_image`` ids, when there. ``origin``: the bytes a service returned, when
    ``png`` was made from them; if they carry a C2PA manifest (OpenAI's), they become the parent
    ingredient and ``parent`` / ``inputs`` become inputs.
    """
    from chatcanvas.provenance import signing

    s = settings_or_default(settings)
    if not s.provenance:
        return png
    src = parent if parent is not None else _stored(recipe.init_image, s)
    if inputs:
        ingredients = [signing.Ingredient(b, f"input image {n + 1}") for n, b in enumerate(inputs)]
    else:
        mask = _stored(recipe.mask_image, s)
        ingredients = [signing.Ingredient(mask, "mask")] if mask is not None else []
    parent_ing = signing.Ingredient(src, "source image") if src is not None else None
    from_origin = origin is not None and signing.has_manifest(origin)
    if from_origin:
        assert origin is not None
        if parent_ing is not None:
            ingredients.insert(0, parent_ing)
        parent_ing = signing.Ingredient(origin, f"{recipe.backend} output")
    return signing.sign_png(
        png,
        recipe,
        s,
        parent=parent_ing,
        parent_is_origin=from_origin,
        inputs=ingredients,
        watermarked=recipe.watermark == WATERMARKED,
    )


def derived_png(
    img: Image.Image,
    sources: Sequence[bytes],
    *,
    action: str = "c2pa.resized",
    text: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> bytes:
    """A PNG made from finished images (a smaller copy for an upload limit, a contact sheet).

    ``sources``: the PNGs it was made from: one (the parent; ``action`` says what was done, e.g.
    ``c2pa.resized``) or several (placed side by side as components). ``text``: PNG text chunks to
    keep (the recipe). Watermarked again when big enough, and signed, unless provenance is off.
    """
    import io

    from PIL import PngImagePlugin

    from chatcanvas.provenance import signing, watermark

    s = settings_or_default(settings)
    marked = s.provenance and s.watermark and img.width * img.height >= watermark.MIN_PIXELS
    if marked:
        img = watermark.embed(img)
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    if not s.provenance or not sources:
        return buf.getvalue()
    return signing.sign_derived(buf.getvalue(), list(sources), s, action=action, watermarked=marked)


def _stored(ref: str | None, settings: Settings) -> bytes | None:
    if not ref:
        return None
    from chatcanvas.store.db import read_image_ref

    try:
        return read_image_ref(settings.images_dir, ref)
    except Exception:  # a source that is gone is named in the recipe, not attached
        log.info("source image %s not found; named in the manifest, not attached", ref)
        return None
