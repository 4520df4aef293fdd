"""A follow-up to product colourways ("now in coral", "what about sage and oat?"): the same photo and
mask recoloured again, not a new picture drawn from the words, and not the last colour again under a
new prompt."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from PIL import Image

from chatcanvas.bot.variation_list import parse_variation_request, reads_as_colourways
from chatcanvas.types import ImageSpec

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["colourway_follow_up", "is_colourway_set"]

_LEAD = re.compile(r"^\s*(?:ok(?:ay)?|great|nice|cool|thanks|and|now|next|then)\b[,!.\s]*", re.I)


def _subject(spec: ImageSpec) -> str:
    """The product words of a colourway's prompt ("a teal desk lamp" without "teal": "desk lamp")."""
    way = spec.colourway
    text = spec.prompt
    if way is not None:
        text = re.sub(rf"\b{re.escape(way.colour)}\b", " ", text, count=1, flags=re.I)
        if way.material:
            text = re.sub(rf"\b{re.escape(way.material)}\b", " ", text, count=1, flags=re.I)
    text = re.sub(r"^\s*(?:a|an|the)\s+", "", " ".join(text.split()), flags=re.I)
    return text.strip(" ,") or "product"


def is_colourway_set(last: list[ImageSpec] | None) -> bool:
    return bool(last) and all(s.colourway and s.init_image and s.mask_image for s in last or [])


def colourway_follow_up(
    text: str, last: list[ImageSpec] | None, settings: Settings, photo: bytes | None = None
) -> list[ImageSpec] | None:
    """The specs for a colour follow-up of the last colourways, or None when it is not one.

    ``last``: the conversation's last specs; only colourways (a photo and a mask by store id) qualify.
    ``photo``: the photo's bytes, for the size of a material pass (a colour alone needs none).
    """
    from chatcanvas.generation.variations import variation_specs

    if not last or not is_colourway_set(last):
        return None
    words = _LEAD.sub("", text)
    for _ in range(2):
        words = _LEAD.sub("", words)
    if not reads_as_colourways(words):
        return None
    wanted = parse_variation_request(words).variations
    first = last[0]
    assert first.init_image and first.mask_image  # checked above
    size = Image.open(io.BytesIO(photo)).size if photo else None
    return variation_specs(
        first.init_image, first.mask_image, wanted, _subject(first), settings, size=size, seed=first.seed
    )
