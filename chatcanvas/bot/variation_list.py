"""A typed list of product variations as a list, the way people type it in a chat: "navy, forest green
and #e07b39", "this sneaker in navy, forest green and #e07b39", "can I see this in teal?", "make it sage
green please". One place for every adapter.

The lead-in before the first colour ("this sneaker in", "do you have it in") is dropped only when it
points at the product (this, it, the, my, show, see …), so "navy in suede" stays one variation; its
product words ("sneaker") come back as the subject, for the prompt of a material pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "VariationRequest",
    "asks_variations",
    "is_mask_name",
    "parse_variation_list",
    "pick_photo_and_mask",
    "parse_variation_request",
    "reads_as_colourways",
]

_MASK_NAME = re.compile(r"(?<![a-z])mask(?![a-z])", re.IGNORECASE)  # "mask.png", "sneaker_mask", not "damask"

_ASK = re.compile(r"^\s*(variations?|variants?|colou?rs?|colou?rways?)\b\s*[:\-]?\s*", re.I)
_SPLIT = re.compile(r"\s*(?:,|;|\n|/|\||\band\s+in\b|\bor\s+in\b|\band\b|\bor\b|\+)\s*", re.I)
_IN = re.compile(r"^\s*in\s+", re.I)
_SUBJECT_COLON = re.compile(r"^\s*(?P<subject>[a-z][\w'-]*(?:\s+[\w'-]+){0,3})\s*:\s*", re.I)
# "this sneaker in", "can I see it in", "do you have the lamp in" (no list separator before the "in")
_LEAD_IN = re.compile(r"^(?P<lead>(?:(?!\b(?:and|or)\b)[^,;:/|+\n])*?)\b(?:in|into)\s+(?=\S)", re.I)
# "make it", "turn them", "change it to", "how about", "maybe", "also"
_VERB = re.compile(
    r"^\s*(?:(?:please|pls|so|ok(?:ay)?|hey|hi)\b[,!]?\s+)*"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+)?)?"
    r"(?:(?:make|turn|paint|recolou?r|colou?r|dye|do)\s+(?:it|this|that|them|these|those|one)\s+(?:in\s+)?"
    r"|(?:change|switch)\s+(?:it|this|that|them|the\s+colou?r)?\s*(?:to|into)\s+"
    r"|(?:how|what)\s+about\s+|(?:also|maybe|perhaps|then|another(?:\s+one)?(?:\s+in)?|one\s+in)\s+"
    r"|try\s+)",
    re.I,
)
_TAIL = re.compile(
    r"(?:\s*[,.!?]*\s*\b(?:please|pls|plz|thanks|thank\s+you|thx|ty|too|as\s+well|instead)\b)*[\s.!?\"']*$", re.I
)
# words of a lead-in that point at the product, or ask for it; any of them makes it a lead-in
_POINTERS = frozenset(
    "this that it the these those them my our your one same see show want like love need have "
    "get make do does come comes available".split()
)
_NOT_SUBJECT = _POINTERS | frozenset(
    "a an can could would will you u i i'd id we please pls me to is are also maybe hey hi ok okay so "
    "just now but".split()
)


@dataclass(frozen=True)
class VariationRequest:
    variations: list[str]
    subject: str = ""  # the product words of the lead-in ("canvas tote"), if any


def asks_variations(text: str) -> bool:
    """Does the text start like a variations request ("variations: …", "colours - …")?"""
    return bool(_ASK.match(text))


def _part(text: str) -> str:
    text = _VERB.sub("", text)
    text = _IN.sub("", text)
    return _TAIL.sub("", text).strip(" .!?\"'")


def parse_variation_request(text: str) -> VariationRequest:
    """'this canvas tote in navy, forest green and in sand please' -> (navy, forest green, sand; canvas tote)."""
    text = _ASK.sub("", text)
    subject = ""
    named = _SUBJECT_COLON.match(text)  # "canvas tote: navy, sand" (the chat page's hint)
    if named and not asks_variations(named["subject"] + ":"):
        subject, text = named["subject"].strip(), text[named.end() :]
    lead = None if named else _LEAD_IN.match(text)
    if lead:
        words = re.findall(r"[a-z']+", lead["lead"].lower())
        if any(w in _POINTERS for w in words):
            text = text[lead.end() :]
            product = [w for w in words if w not in _NOT_SUBJECT]
            subject = " ".join(product) if len(product) <= 4 else ""
    parts = (_part(p) for p in _SPLIT.split(text) if p)
    return VariationRequest([p for p in parts if p], subject)


def parse_variation_list(text: str) -> list[str]:
    """'variations: navy, forest green and in sand' -> ['navy', 'forest green', 'sand']."""
    return parse_variation_request(text).variations


def reads_as_colourways(text: str) -> bool:
    """Does the text, typed beside a product photo, ask for it in other colours? ("variations: …", or a
    list of which one item at least is a colour: "this sneaker in navy and forest green")."""
    from chatcanvas.errors import SpecError
    from chatcanvas.generation.variations import parse_variation

    if asks_variations(text):
        return True
    for v in parse_variation_request(text).variations:
        try:
            parse_variation(v)
        except SpecError:
            continue
        return True
    return False


def is_mask_name(name: str) -> bool:
    """Is this shared file, by its name or title, the mask of the photo beside it (white = the product)?"""
    return bool(_MASK_NAME.search(name))


T = TypeVar("T")


def pick_photo_and_mask(images: Sequence[T], names: Callable[[T], Iterable[str]]) -> tuple[T, T | None] | None:
    """The product photo among images shared together, and its mask: another one whose name (any of
    ``names(image)``: a file name, a title) says "mask". One image named "mask" is the photo all the
    same. None when there is no image."""

    def named_mask(image: T) -> bool:
        return any(is_mask_name(n) for n in names(image))

    photos = [i for i in images if not named_mask(i)] or list(images[:1])
    if not photos:
        return None
    masks = [i for i in images if i is not photos[0] and named_mask(i)]
    return photos[0], (masks[0] if masks else None)
