"""The rewriter seam: a chat turn (plus the conversation's last specs) in, a :class:`Plan` out.

Two implementations: :class:`chatcanvas.bot.offline_rewriter.OfflineRewriter` (deterministic rules,
no network) and :class:`chatcanvas.bot.agent.AgentRewriter` (an LLM agent calling the image tools,
falling back to the offline rules when the LLM fails).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from chatcanvas.types import ChatTurn, ImageSpec

if TYPE_CHECKING:
    from chatcanvas.config import Settings


class Plan(BaseModel):
    """What to make for one turn. ``reply`` is text to send when no image is wanted (or as a comment)."""

    model_config = ConfigDict(extra="forbid")

    specs: list[ImageSpec] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # for the user: clamped limits, fall-backs, token counts
    reply: str | None = None

    @property
    def image_count(self) -> int:
        return sum(s.count for s in self.specs)


@runtime_checkable
class Rewriter(Protocol):
    async def plan(self, turn: ChatTurn, last: list[ImageSpec] | None, backend_family: str) -> Plan:
        """Turn ``turn`` into image specs. ``last``: the conversation's previous specs, for edits.

        ``backend_family``: ``"sd"`` (comma-separated phrases, 75 tokens) or ``"dalle"`` (sentences);
        see :func:`chatcanvas.prompts.family_of`.
        """
        ...


def default_rewriter(
    settings: Settings,
    native_size: int | None = None,
    count_tokens: Callable[[str], int | None] | None = None,
) -> Rewriter:
    """The rewriter for these settings: the LLM agent when ``CHATCANVAS_LLM_MODEL`` is set (falling back
    to the rules when it fails), else the offline rules.

    ``native_size``: the side of the model's square default (``Assistant.native_size()``); aspect sizes
    keep about that many pixels. ``count_tokens``: the loaded pipeline's tokenizer
    (``DiffusersBackend.count_tokens``), for the 75-token window.
    """
    from chatcanvas.bot.offline_rewriter import OfflineRewriter

    base = native_size or (max(settings.size) if settings.size else None)
    offline = OfflineRewriter(settings.limits, base_side=base, count_tokens=count_tokens)
    if not settings.llm_enabled:
        return offline
    from chatcanvas.bot.agent import AgentRewriter

    return AgentRewriter(settings, offline=offline)
