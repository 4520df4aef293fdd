"""The one admission pipeline: every refusal names its rule, whatever the entrance."""

from __future__ import annotations

import pytest

from chatcanvas.app import build_app
from chatcanvas.types import Accepted, ImageSpec, Place, Refused, UserRef
from tests.conftest import outcome

HERE = Place(platform="test", channel="c")


def user(name: str, server: str = "s1", platform: str = "test") -> UserRef:
    return UserRef(platform=platform, user=name, server=server)


async def ask(ctx, who: UserRef, where: Place = HERE, **spec: object) -> object:  # type: ignore[no-untyped-def]
    return await outcome(ctx.assistant.run_specs([ImageSpec(prompt="a mug", **spec)], who, where))


@pytest.fixture
async def idle(settings):  # type: ignore[no-untyped-def]
    """An app whose workers never start: every accepted job stays queued."""
    ctx = await build_app(settings.model_copy(update={"max_queued_per_user": 2, "max_queue": 3}), start=False)
    ctx.engine._accepting = True
    try:
        yield ctx
    finally:
        await ctx.aclose()


async def test_user_queue_cap_then_global_queue_full(idle) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        assert isinstance(await ask(idle, user("greedy")), Accepted)
    ev = await ask(idle, user("greedy"))
    assert isinstance(ev, Refused) and ev.rule == "user_queue"
    assert "already have 2" in ev.reason and "(rule: user_queue)" in ev.reason
    assert isinstance(await ask(idle, user("other")), Accepted)
    ev = await ask(idle, user("third"))
    assert isinstance(ev, Refused) and ev.rule == "queue_full" and "queue is full" in ev.reason
    assert ev.retry_after == 60


async def test_a_refused_request_queues_nothing(idle) -> None:  # type: ignore[no-untyped-def]
    """Three specs in one request against a cap of two: refused whole, not two of three."""
    specs = [ImageSpec(prompt=f"a cap {i}") for i in range(3)]
    ev = await outcome(idle.assistant.run_specs(specs, user("bulk"), HERE))
    assert isinstance(ev, Refused) and ev.rule == "user_queue"
    assert idle.engine.jobs(user("bulk")) == []


async def test_rate_limit_says_how_long_to_wait(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings.model_copy(update={"rate_per_minute": 1.0, "rate_burst": 1}), start=False)
    ctx.engine._accepting = True
    try:
        assert isinstance(await ask(ctx, user("fast")), Accepted)
        ev = await ask(ctx, user("fast"))
        assert isinstance(ev, Refused) and ev.rule == "user_rate"
        assert ev.retry_after is not None and 50 < ev.retry_after <= 60
        assert "Try again in" in ev.reason
    finally:
        await ctx.aclose()


async def test_backend_not_allowed_on_a_platform_unless_admin(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings, start=False)
    ctx.engine._accepting = True
    try:
        member = user("m", platform="discord")
        ev = await ask(ctx, member, Place(platform="discord", channel="1"), backend="openai")
        assert isinstance(ev, Refused) and ev.rule == "backend"
        assert "Backend 'openai' is not allowed here" in ev.reason
        # the platform's own default backend is fine
        assert isinstance(await ask(ctx, member, Place(platform="discord", channel="1")), Accepted)
    finally:
        await ctx.aclose()


async def test_a_chat_user_cannot_pick_a_model_that_is_not_listed(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings.model_copy(update={"models": ["tiny"]}), start=False)
    ctx.engine._accepting = True
    try:
        ev = await ask(ctx, user("w", platform="web"), Place(platform="web", channel="x"), model="/etc/secret-model")
        assert isinstance(ev, Refused) and ev.rule == "model" and "tiny" in ev.reason
    finally:
        await ctx.aclose()


async def test_place_rules_precheck_and_cooldown(settings) -> None:  # type: ignore[no-untyped-def]
    s = settings.model_copy(
        update={"discord_allow_dms": False, "discord_channels": ["42"], "discord_cooldown_s": 60.0}
    )
    ctx = await build_app(s, start=False)
    ctx.engine._accepting = True
    try:
        a = ctx.assistant
        dm = Place(platform="discord", channel="7", dm=True)
        member = user("m", platform="discord")
        refusal = a.precheck(member, dm)
        assert refusal is not None and refusal.rule == "place" and "direct messages" in refusal.reason
        wrong = a.precheck(member, Place(platform="discord", channel="9"))
        assert wrong is not None and "<#42>" in wrong.reason
        ok = Place(platform="discord", channel="42")
        assert a.precheck(member, ok) is None
        assert a.precheck(member, ok) is None  # a precheck takes nothing
        assert isinstance(await ask(ctx, member, ok), Accepted)
        ev = await ask(ctx, member, ok)
        assert isinstance(ev, Refused) and ev.rule == "cooldown"
    finally:
        await ctx.aclose()
