"""Standalone ``serve(ctx)`` in Socket Mode against the fake's websocket (apps.connections.open -> ws)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from chatcanvas.errors import ConfigError
from tests.fakes.slack_api import APP_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import event_callback, mention_event, slash_command


async def test_socket_mode_command_and_event_retry(slack_settings: Any, slack_api: FakeSlackAPI) -> None:
    from chatcanvas.adapters.slack import serve
    from chatcanvas.app import build_app

    settings = slack_settings.model_copy(update={"slack_app_token": APP_TOKEN, "slack_signing_secret": None})
    ctx = await build_app(settings)
    task = asyncio.create_task(serve(ctx))
    try:
        await slack_api.socket_connected()
        (opened,) = slack_api.calls_to("apps.connections.open")
        assert opened.token == APP_TOKEN

        ack = await slack_api.socket_send("slash_commands", slash_command("a green tote bag"), within=60)
        assert not [c for c in slack_api.methods() if c.startswith("files.")]  # acknowledged before any image was made
        assert "payload" not in ack or not ack["payload"]  # empty ack; the answer goes to the thread
        done = await slack_api.wait_for("files.completeUploadExternal", within=180)
        assert done[0].params["channel_id"] == "C1"
        assert "tote" in done[0].params["initial_comment"]

        payload = event_callback(mention_event("a blue cap", ts="1700000300.000100"), event_id="EvSOCKET1")
        await slack_api.socket_send("events_api", payload)
        await slack_api.socket_send("events_api", payload, retry_attempt=1, retry_reason="timeout")
        done = await slack_api.wait_for("files.completeUploadExternal", 2, within=180)
        assert done[1].params["thread_ts"] == "1700000300.000100"
        await asyncio.sleep(0.5)  # a (wrong) second generation would have been queued long before now
        assert len(ctx.engine.jobs()) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ctx.aclose()


async def test_serve_needs_a_token_and_a_secret_or_app_token(slack_settings: Any) -> None:
    from chatcanvas.adapters.slack import build_app

    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        build_app(None, slack_settings.model_copy(update={"slack_bot_token": None}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        build_app(None, slack_settings.model_copy(update={"slack_signing_secret": None}))  # type: ignore[arg-type]
