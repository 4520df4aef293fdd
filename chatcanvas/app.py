"""Wiring: settings → store → engine → assistant, shared by every adapter in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatcanvas.bot.assistant import Assistant
from chatcanvas.config import Settings
from chatcanvas.generation.engine import Engine
from chatcanvas.store import Store
from chatcanvas.types import ImageSpec, UserRef

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    store: Store
    engine: Engine
    assistant: Assistant

    async def aclose(self) -> None:
        await self.engine.shutdown()
        moderator = self.assistant.policy.moderator
        if moderator is not None:
            await moderator.aclose()
        self.store.close()


def _extensions(ctx: AppContext) -> None:
    """Optional parts that hook into the engine, the policy and the assistant."""
    from chatcanvas.bot.memory import ConversationMemory

    ctx.assistant.memory = ConversationMemory(ctx.store)
    from chatcanvas.ops.install import install_ops

    install_ops(ctx)  # metrics, backend-time usage, job logs, paused backends held
    if ctx.settings.llm_enabled:
        from chatcanvas.bot.agent import AgentRunner

        ctx.assistant.agent = AgentRunner(ctx.settings)
    from chatcanvas.generation.spending import install as install_spending

    ledger = install_spending(ctx.engine, ctx.store, ctx.settings)
    settings = ctx.settings

    def spend_check(who: UserRef, cost: float) -> None:
        # Chat and web users reaching the paid API without a daily cap get the documented default one.
        capped = settings
        if who.platform in ("web", "discord", "slack") and settings.spend_limit_user_daily is None:
            capped = settings.model_copy(update={"spend_limit_user_daily": settings.openai_default_user_daily_usd})
        ledger.check(who, cost, capped)

    def estimate(spec: ImageSpec) -> float:
        from chatcanvas.generation.pricing import estimate_cost

        return estimate_cost(spec, settings)

    ctx.assistant.policy.spend_check = spend_check
    ctx.assistant.policy.estimate = estimate
    if settings.moderation_enabled:
        from chatcanvas.safety.moderation import Moderator

        ctx.assistant.policy.moderator = Moderator(settings)


async def build_app(settings: Settings, start: bool = True) -> AppContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from chatcanvas.provenance import configure as configure_provenance

    configure_provenance(settings)  # the PNG writer signs with this data dir's credentials
    store = Store(settings.data_dir)
    engine = Engine(settings, store)
    assistant = Assistant(settings, engine, store)
    ctx = AppContext(settings, store, engine, assistant)
    _extensions(ctx)
    from chatcanvas.bot.warm_up import warm_request_path

    engine.warm_hooks.append(lambda: warm_request_path(settings))  # run in a thread by engine.start
    if start:
        await engine.start()
    return ctx
