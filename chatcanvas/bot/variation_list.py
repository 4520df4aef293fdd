"""A typed list of product variations ("navy, forest green and #e07b39") as a list: one place for every adapter."""

from __future__ import annotations

import re

__all__ = ["asks_variations", "parse_variation_list"]

_ASK = re.compile(r"^\s*(variations?|variants?|colou?rs?|colou?rways?)\b\s*[:\-]?\s*", re.I)
_SPLIT = re.compile(r"\s*(?:,|;|\n|/|\||\band\s+in\b|\bor\s+in\b|\band\b|\bor\b|\+)\s*", re.I)
_LEAD = re.compile(r"^\s*(?:make\s+(?:it|this|them)\s+)?(?:in\s+)", re.I)


def asks_variations(text: str) -> bool:
    """Does the text start like a variations request ("variations: …", "colours - …")?"""
    return bool(_ASK.match(text))


def parse_variation_list(text: str) -> list[str]:
    """'variations: navy, forest green and in sand' -> ['navy', 'forest green', 'sand']."""
    text = _LEAD.sub("", _ASK.sub("", text))
    parts = (_LEAD.sub("", p).strip(" .!\"'") for p in _SPLIT.split(text) if p)
    return [p for p in parts if p]
