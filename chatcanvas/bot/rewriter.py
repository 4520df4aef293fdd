"""The rewriter for a configuration: the LLM agent or the offline rules (see :mod:`chatcanvas.bot.plan`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatcanvas.bot.plan import Plan, Rewriter

if TYPE_CHECKING:
    from chatcanvas.config import Settings


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


__all__ = ["Plan", "Rewriter", "default_rewriter"]
