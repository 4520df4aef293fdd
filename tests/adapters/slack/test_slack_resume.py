"""Nothing is lost: a job finished while nobody delivered it (a restart) is posted to its thread."""

from __future__ import annotations

from typing import Any

from chatcanvas.types import Images, ImageSpec, Place, UserRef
from tests.fakes.slack_api import FakeSlackAPI


async def test_undelivered_job_is_uploaded_to_its_thread_on_start(
    slack_settings: Any, slack_api: FakeSlackAPI
) -> None:
    from chatcanvas.adapters.slack import build_app
    from chatcanvas.adapters.slack.serve import resume
    from chatcanvas.app import build_app as build_ctx

    ctx = await build_ctx(slack_settings)
    try:
        who = UserRef(platform="slack", user="U1", server="T1")
        where = Place(platform="slack", channel="C1", thread="1700000000.000001")
        rec = await ctx.engine.submit(ImageSpec(prompt="a yellow cap"), who, where)
        events = [ev async for ev in ctx.engine.follow(rec.id)]
        assert isinstance(events[-1], Images)
        assert [j.id for j in ctx.engine.undelivered("slack")] == [rec.id]

        bolt, bridge = build_app(ctx.assistant, slack_settings)
        await resume(bridge, bolt.client)
        await bridge.drain()
        (done,) = slack_api.completed
        assert done["channel_id"] == "C1" and done["thread_ts"] == "1700000000.000001"
        assert ctx.engine.undelivered("slack") == []
    finally:
        await ctx.aclose()
