"""Product variations: one spec per variation ("navy", "forest green", "#e07b39", "tan leather").

Pure helpers for the assistant's ``vary_product``. The photo and its mask (the user's, else cut out
by :mod:`chatcanvas.generation.product_mask`) are stored first. Each variation is read as a colour
(:mod:`chatcanvas.colours`) plus, optionally, material words ("in leather", "velvet", "with a floral
print"):

- a colour alone -> a spec for the ``colourway`` backend: the product recoloured exactly, its shape
  and the background kept, at the photo's own size (:mod:`chatcanvas.generation.colourway`);
- with a material -> a spec for the local diffusers backend: recoloured first, then a light
  inpainting pass inside the mask, laid back over the photo at its size (background unchanged).

An unknown colour is refused with the nearest known names.
"""

from __future__ import annotations

import io
import re
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from chatcanvas import messages as m
from chatcanvas.colours import NamedColour, find_colour_phrases, resolve_colour, suggest_colours
from chatcanvas.errors import SpecError
from chatcanvas.types import Colourway, ImageSpec, Place, UserRef

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.store import Store

__all__ = [
    "DEFAULT_STRENGTH",
    "MAX_VARIATION_CHARS",
    "MAX_VARIATIONS",
    "Variation",
    "clean_variations",
    "fit_aspect",
    "parse_variation",
    "prepare_variations",
    "variation_prompt",
    "variation_specs",
]

MAX_VARIATIONS = 8
MAX_VARIATION_CHARS = 60
DEFAULT_STRENGTH = 0.45  # the material pass: enough to change the surface, not the shape or colour
COLOURWAY_BACKEND = "colourway"
MATERIAL_BACKEND = "local"
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


class Variation(BaseModel):
    """One variation as read: the colour (``None``: the product's own) and any material words."""

    model_config = ConfigDict(frozen=True)

    text: str  # as asked
    colour_text: str = ""  # the words that named the colour, as typed
    colour: NamedColour | None = None
    material: str | None = None  # "leather", "velvet", "with a floral print"
    material_first: bool = False  # typed before the colour ("glossy cherry red")

    @property
    def words(self) -> str:
        """The variation for a prompt: "navy", "tan leather", "glossy cherry red", "velvet"."""
        parts = [self.colour.name if self.colour else "", self.material or ""]
        return " ".join(w for w in (parts[::-1] if self.material_first else parts) if w)


@cache
def _material_pattern() -> re.Pattern[str]:
    from chatcanvas.prompts import lexicon

    lex = lexicon()
    words = {w.lower() for w in [*lex.get("materials", []), *lex.get("finishes", [])]}
    alts = "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in sorted(words, key=len, reverse=True))
    # A material word, optionally followed by "print"/"pattern"/"finish" ("floral print").
    return re.compile(rf"\b(?:{alts})(?:[\s-]+(?:prints?|patterns?|finish|effect|look))?\b", re.IGNORECASE)


def _unknown_colour(text: str, asked: str) -> SpecError:
    found = [asked[a:b] for a, b, _ in find_colour_phrases(asked)]
    if len(found) > 1:
        return SpecError(m.ONE_COLOUR_PER_VARIATION.format(text=asked, colours=", ".join(found)))
    suggestions = suggest_colours(text)
    if suggestions:
        return SpecError(m.UNKNOWN_COLOUR.format(name=text, suggestions=" or ".join(repr(x) for x in suggestions)))
    return SpecError(m.UNKNOWN_COLOUR_NO_SUGGESTION.format(name=text))


_FILLER = re.compile(r"\b(?:in|and|made of|made from|an?|the)\b", re.IGNORECASE)


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", _FILLER.sub(" ", text)).strip(" ,-")


def parse_variation(text: str) -> Variation:
    """ "navy" / "Forest Green" / "#e07b39" -> a colour; "tan leather", "red in suede", "velvet",
    "brushed steel blue", "navy with a floral print" -> a colour and material words. SpecError for
    an unknown colour, naming the nearest known ones."""
    raw = re.sub(r"\s+", " ", text).strip()
    body = re.sub(r"^(?:in|an?|the)\s+", "", raw, flags=re.IGNORECASE)
    pattern = _material_pattern()
    whole = resolve_colour(body)
    if whole is not None and not pattern.fullmatch(body):  # "slate grey" is a colour; "leather" is not
        return Variation(text=raw, colour_text=body, colour=whole)
    detail = ""
    cut = re.search(r"\s*\bwith\b.*$", body, flags=re.IGNORECASE)
    if cut:
        detail, body = cut.group(0).strip(), body[: cut.start()]
    spans = find_colour_phrases(body)
    if len(spans) > 1:
        raise _unknown_colour(body, raw)
    if len(spans) == 1:  # the longest colour phrase; the rest must be material words
        a, b, colour = spans[0]
        rest = body[:a] + " " + body[b:]
        materials = [mt.group(0) for mt in pattern.finditer(rest)]
        if not _tidy(pattern.sub(" ", rest)):
            material = " ".join([*materials, detail]).strip() or None
            first = bool(materials) and not detail and body.lower().find(materials[0].lower()) < a
            return Variation(
                text=raw, colour_text=body[a:b], colour=colour, material=material, material_first=first
            )
    # No colour phrase on its own ("wine velvet": "wine" alone is a word too): take the material
    # words out and read what is left as the colour.
    materials = [mt.group(0) for mt in pattern.finditer(body)]
    colour_text = _tidy(pattern.sub(" ", body))
    material = " ".join([*materials, detail]).strip() or None
    if not colour_text:
        if material is None:
            raise SpecError(m.BAD_VARIATION.format(limit=MAX_VARIATION_CHARS))
        return Variation(text=raw, material=material)
    found = resolve_colour(colour_text)
    if found is None:
        raise _unknown_colour(colour_text, raw)
    first = bool(materials) and not detail and body.lower().find(materials[0].lower()) < body.lower().find(
        colour_text.lower()
    )
    return Variation(
        text=raw, colour_text=colour_text, colour=found, material=material, material_first=first
    )


def _default_side_for(settings: Settings, base_side: int | None) -> int:
    return base_side or _default_side(settings)


def variation_specs(
    image_id: str,
    mask_id: str,
    variations: list[str] | list[Variation],
    base_prompt: str,
    settings: Settings,
    *,
    size: tuple[int, int] | None = None,
    base_side: int | None = None,
    seed: int | None = None,
    strength: float = DEFAULT_STRENGTH,
    negative_prompt: str = "",
    backend: str | None = None,
    product_colour: NamedColour | None = None,
) -> list[ImageSpec]:
    """One :class:`ImageSpec` per variation, in order.

    ``image_id`` / ``mask_id`` are store refs (``store.put_upload``) of the photo and its mask
    (white = the product). A colour alone goes to the ``colourway`` backend at the photo's own size
    (width and height unset). With a material it goes to ``backend`` (default: the local one) as
    an inpainting spec at ``size``'s aspect with about ``base_side``² pixels (default: the
    configured size, else 64 for the demo model, else 512); the backend lays the result back over
    the photo at the photo's size. ``product_colour`` is the product's own colour, for a material
    without a colour. The same ``seed`` (when given) for every variation keeps them comparable.
    """
    parsed = [v if isinstance(v, Variation) else parse_variation(v) for v in _cleaned(variations)]
    specs: list[ImageSpec] = []
    for v in parsed:
        colour = v.colour or product_colour
        if colour is None:
            raise SpecError(m.MATERIAL_NEEDS_COLOUR.format(text=v.text))
        asked = v.colour_text or colour.name
        way = Colourway(colour=asked[:60], hex=colour.hex, material=v.material[:60] if v.material else None)
        if v.material is None:
            specs.append(
                ImageSpec(
                    prompt=variation_prompt(v.words, base_prompt),
                    count=1,
                    seed=seed,
                    init_image=image_id,
                    mask_image=mask_id,
                    backend=COLOURWAY_BACKEND,
                    colourway=way,
                )
            )
            continue
        width = height = None
        if size is not None:
            width, height = fit_aspect(size, _default_side_for(settings, base_side), settings)
        specs.append(
            ImageSpec(
                prompt=variation_prompt(v.words, base_prompt),
                negative_prompt=negative_prompt,
                width=width,
                height=height,
                count=1,
                seed=seed,
                init_image=image_id,
                mask_image=mask_id,
                strength=strength,
                backend=backend or MATERIAL_BACKEND,
                colourway=way,
            )
        )
    for spec in specs:
        settings.limits.check(spec)
    return specs


def _cleaned(variations: list[str] | list[Variation]) -> list[str] | list[Variation]:
    if variations and all(isinstance(v, Variation) for v in variations):
        return variations
    return clean_variations([str(v) for v in variations])


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _product_colour(photo: Image.Image, mask: Image.Image) -> NamedColour:
    """The product's median colour, for a material asked without a colour."""
    rgb = np.asarray(photo.convert("RGB"))[np.asarray(mask) >= 128]
    r, g, b = (int(v) for v in np.median(rgb, axis=0)) if len(rgb) else (128, 128, 128)
    code = f"#{r:02x}{g:02x}{b:02x}"
    return NamedColour(name=code, hex=code, rgb=(r, g, b), source="hex")


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
    owner: UserRef | None = None,
    place: Place | None = None,
) -> list[ImageSpec]:
    """Read the variations, store the photo and its mask (given, or cut out by :func:`product_mask`),
    then the specs (see :func:`variation_specs`).

    ``photo`` and ``mask`` come from :func:`chatcanvas.images.load_upload`; a mask must be the
    photo's size (white = the product). ``subject`` is the product words ("mug"); ``native`` the
    model's native side, for the material pass. Refuses (SpecError / InputImageError) before
    anything is stored: unknown colours, a mask of another size, a photo with no separable product.
    """
    from chatcanvas.generation.product_mask import product_mask

    parsed = [parse_variation(v) for v in clean_variations(variations)]
    if mask is not None:
        if mask.size != photo.size:
            raise SpecError(
                m.MASK_SIZE_MISMATCH.format(mw=mask.width, mh=mask.height, w=photo.width, h=photo.height)
            )
        mask_l = mask.convert("L").point(lambda v: 255 if v >= 128 else 0)
        if mask_l.getbbox() is None:
            raise SpecError(m.EMPTY_MASK)
    else:
        mask_l = product_mask(photo)
    own = _product_colour(photo, mask_l) if any(v.colour is None for v in parsed) else None
    image_id = store.put_upload(_png(photo.convert("RGB")), owner=owner, place=place)  # the caller's own
    mask_id = store.put_upload(_png(mask_l), owner=owner, place=place)
    return variation_specs(
        image_id,
        mask_id,
        parsed,
        subject.strip() or "product",
        settings,
        size=photo.size,
        base_side=native,
        seed=seed,
        strength=strength,
        product_colour=own,
    )
