"""The rewriter seam, as a leaf: a chat turn (plus the conversation's last specs) in, a :class:`Plan` out.

Two implementations: :class:`chatcanvas.bot.offline_rewriter.OfflineRewriter` (deterministic rules,
no network) and :class:`chatcanvas.bot.agent.AgentRewriter` (an LLM agent calling the image tools,
falling back to the offline rules when the LLM fails). :func:`chatcanvas.bot.rewriter.default_rewriter`
picks one for the settings.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from chatcanvas.types import ChatTurn, ImageSpec


class Plan(BaseModel):
    """What to make for one turn. ``reply`` is text to send when no image is wanted (or as a comment)."""

    model_config = ConfigDict(extra="forbid")

    specs: list[ImageSpec] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # for the user: clamped limits, fall-backs, token counts
    reply: str | None = None


@runtime_checkable
class Rewriter(Protocol):
    async def plan(self, turn: ChatTurn, last: list[ImageSpec] | None, backend_family: str) -> Plan:
        """Turn ``turn`` into image specs. ``last``: the conversation's previous specs, for edits.

        ``backend_family``: ``"sd"`` (comma-separated phrases, 75 tokens) or ``"dalle"`` (sentences);
        see :func:`chatcanvas.prompts.family_of`.
        """
        ...


__all__ = ["Plan", "Rewriter"]
