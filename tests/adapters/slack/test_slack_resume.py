"""Nothing is lost: what a restart left behind is posted to its thread, finished or still queued."""

from __future__ import annotations

from typing import Any

from chatcanvas.types import Images, ImageSpec, Place, UserRef
from tests.fakes.slack_api import FakeSlackAPI


async def test_owed_jobs_are_uploaded_to_their_threads_after_a_restart(
    slack_settings: Any, slack_api: FakeSlackAPI
) -> None:
    from chatcanvas.adapters.slack import build_app
    from chatcanvas.adapters.slack.serve import resume
    from chatcanvas.app import build_app as build_ctx

    who = UserRef(platform="slack", user="U1", server="T1")
    done_at = Place(platform="slack", channel="C1", thread="1700000000.000001")
    queued_at = Place(platform="slack", channel="C2", thread="1700000000.000002")
    before = await build_ctx(slack_settings)  # the process before the restart
    rec = await before.engine.submit(ImageSpec(prompt="a yellow cap"), who, done_at)
    events = [ev async for ev in before.engine.follow(rec.id)]
    assert isinstance(events[-1], Images)
    queued = before.engine.table.insert("q" * 16, ImageSpec(prompt="a maroon mug", seed=3), who, queued_at, "")
    await before.aclose()

    ctx = await build_ctx(slack_settings)
    try:
        assert {j.id for j in ctx.assistant.owed("slack")} == {rec.id, queued.id}
        bolt, bridge = build_app(ctx.assistant, slack_settings)
        await resume(bridge, bolt.client)
        await bridge.drain()
        threads = sorted((d["channel_id"], d["thread_ts"]) for d in slack_api.completed)
        assert threads == [("C1", "1700000000.000001"), ("C2", "1700000000.000002")]
        assert ctx.assistant.owed("slack") == []
    finally:
        await ctx.aclose()
