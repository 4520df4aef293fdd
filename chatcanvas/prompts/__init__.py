"""Prompt templates, rewrite guides and style presets, as data files next to this module.

- ``system.md``: the agent's system prompt (``str.format`` fields: limits, styles, guide).
- ``guide_sd.md`` / ``guide_dalle.md``: how to write prompts for each backend family.
- ``styles.json``: style presets (triggers, SD phrases, DALL-E sentence, negative phrases).
- ``lexicon.json``: word lists for the offline rewriter (colours, palettes, counts, aspects).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from chatcanvas.types import Limits

Family = Literal["sd", "dalle"]
SD_TOKEN_LIMIT = 75  # CLIP reads 77 tokens, two of them are the start and end markers


def rough_tokens(text: str) -> int:
    """A rough CLIP token count when no tokenizer is loaded: words, long words split, punctuation."""
    n = 0
    for tok in re.findall(r"[A-Za-z]+|\d|[^\sA-Za-z\d]", text):
        n += 1 + (len(tok) - 1) // 7 if tok.isalpha() else 1
    return n


class StylePreset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str
    description: str
    triggers: tuple[str, ...]
    sd: str  # comma-separated phrases appended to Stable Diffusion prompts
    dalle: str  # a sentence template with ``{subject}`` for DALL-E / gpt-image
    negative: str  # negative phrases (Stable Diffusion only)

    def apply(self, subject: str, family: Family) -> str:
        if family == "dalle":
            return self.dalle.format(subject=subject)
        return f"{subject}, {self.sd}"


def family_of(backend: str | None) -> Family:
    """The prompt family of a backend name: ``openai`` writes sentences, everything else SD phrases."""
    return "dalle" if backend in ("openai", "dalle", "dall-e", "gpt-image") else "sd"


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def styles() -> dict[str, StylePreset]:
    raw: dict[str, dict[str, Any]] = json.loads(_text("styles.json"))
    return {
        name: StylePreset(name=name, **{**v, "triggers": tuple(v["triggers"])}) for name, v in raw.items()
    }


def style(name: str | None) -> StylePreset | None:
    """A preset by name or by any of its trigger words ("watercolour" -> "watercolor")."""
    if not name:
        return None
    key = name.strip().lower()
    presets = styles()
    if key in presets:
        return presets[key]
    return next((p for p in presets.values() if key in p.triggers), None)


@cache
def lexicon() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_text("lexicon.json"))
    return data


def guide(family: Family) -> str:
    return _text(f"guide_{family}.md").format(token_limit=SD_TOKEN_LIMIT)


def system_prompt(family: Family, limits: Limits) -> str:
    key = "dalle" if family == "dalle" else "sd"
    names = "\n".join(
        f"  - {p.name}: {p.description}; e.g. "
        + (p.dalle.format(subject="...") if key == "dalle" else f"'..., {p.sd}'")
        for p in styles().values()
    )
    return _text("system.md").format(
        max_count=limits.max_count,
        max_side=limits.max_side,
        max_pixels=limits.max_pixels,
        styles=names,
        guide=guide(family),
    )


def describe_limits(limits: Limits) -> str:
    """The limits and style presets, in words (the answer to "what can you do?")."""
    from chatcanvas import messages as m

    names = ", ".join(p.label.lower() for p in styles().values())
    return m.REWRITE_SETTINGS.format(
        max_count=limits.max_count,
        max_side=limits.max_side,
        max_pixels=limits.max_pixels,
        max_steps=limits.max_steps,
        styles=names,
    )
