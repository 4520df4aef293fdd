"""Wiring: settings → store → engine → assistant, shared by every adapter in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatcanvas.bot.assistant import Assistant
from chatcanvas.config import Settings
from chatcanvas.generation.engine import Engine
from chatcanvas.store import Store

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    store: Store
    engine: Engine
    assistant: Assistant

    async def aclose(self) -> None:
        await self.engine.shutdown()
        self.store.close()


def _extensions(ctx: AppContext) -> None:
    """Optional parts that hook into the engine and assistant when their modules are installed."""
    try:
        from chatcanvas.bot.memory import ConversationMemory
    except ImportError:
        pass
    else:
        ctx.assistant.memory = ConversationMemory(ctx.store)
    if ctx.settings.llm_enabled:
        from chatcanvas.bot.agent import AgentRunner

        ctx.assistant.agent = AgentRunner(ctx.settings)
    try:
        from chatcanvas.generation.spending import install as install_spending
    except ImportError:
        pass
    else:
        install_spending(ctx.engine, ctx.store, ctx.settings)


async def build_app(settings: Settings, start: bool = True) -> AppContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.data_dir)
    engine = Engine(settings, store)
    assistant = Assistant(settings, engine, store)
    ctx = AppContext(settings, store, engine, assistant)
    _extensions(ctx)
    if start:
        await engine.start()
    return ctx
