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

__all__ = ["follow_up_colours", "follow_up_specs"]

# "ok", "now", "and then": words before the colours of a follow-up
_LEAD = re.compile(r"^\s*(?:(?:ok(?:ay)?|great|nice|cool|thanks|and|now|next|then)\b[,!.\s]*)+", re.I)


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


def follow_up_colours(text: str, last: list[ImageSpec] | None) -> list[str] | None:
    """The colours a follow-up of the last colourways asks for, or None when it is not one.

    ``last``: the conversation's last specs; only colourways (a photo and a mask by store id) qualify.
    """
    if not last or not all(s.colourway and s.init_image and s.mask_image for s in last):
        return None
    words = _LEAD.sub("", text)
    return parse_variation_request(words).variations if reads_as_colourways(words) else None


def follow_up_specs(
    colours: list[str], last: list[ImageSpec], settings: Settings, photo: bytes | None = None
) -> list[ImageSpec]:
    """The same photo and mask as ``last`` in ``colours``; ``photo``: its bytes, for the size of a
    material pass (a colour alone needs none)."""
    from chatcanvas.generation.variations import variation_specs

    first = last[0]
    assert first.init_image and first.mask_image  # follow_up_colours checked it
    size = Image.open(io.BytesIO(photo)).size if photo else None
    return variation_specs(
        first.init_image, first.mask_image, colours, _subject(first), settings, size=size, seed=first.seed
    )
