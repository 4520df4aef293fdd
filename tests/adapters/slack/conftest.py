"""Slack fixtures: the fake Web API, settings pointing at it, and our Bolt app served over real HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import SIGNING_SECRET, actions_body, form_body, form_headers, json_headers


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackAPI]:
    async with FakeSlackAPI() as api:
        yield api


@pytest.fixture
def slack_settings(settings: Any, slack_api: FakeSlackAPI) -> Any:
    return settings.model_copy(
        update={
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": slack_api.api_url,
            "slack_host": "127.0.0.1",
            "slack_port": 0,
            "slack_progress_interval_s": 0.05,
        }
    )


@dataclass
class SlackServer:
    url: str
    bridge: Any
    ctx: Any
    session: aiohttp.ClientSession

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str, float]:
        """POST to /slack/events; returns status, body and seconds until the answer."""
        t0 = time.monotonic()
        async with self.session.post(self.url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
            return resp.status, text, time.monotonic() - t0

    async def command(self, fields: dict[str, str], **sign_kw: Any) -> tuple[int, str, float]:
        body = form_body(fields)
        return await self.post(body, form_headers(body, **sign_kw))

    async def event(self, payload: dict[str, Any], retry: int | None = None) -> tuple[int, str, float]:
        import json

        body = json.dumps(payload)
        headers = json_headers(body)
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.post(body, headers)

    async def action(self, payload: dict[str, Any]) -> tuple[int, str, float]:
        body = actions_body(payload)
        return await self.post(body, form_headers(body))


@contextlib.asynccontextmanager
async def running_server(settings: Any) -> AsyncIterator[SlackServer]:
    """The whole stack (store, engine, assistant) with our Bolt app on 127.0.0.1, over real HTTP."""
    from chatcanvas.adapters.slack import build_app, start_http
    from chatcanvas.app import build_app as build_ctx

    ctx = await build_ctx(settings)
    await ctx.engine.warm_up()  # the model loaded: no "warming up" note in the threads tests look at
    bolt, bridge = build_app(ctx.assistant, settings)
    runner, port = await start_http(bolt, "127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        try:
            yield SlackServer(f"http://127.0.0.1:{port}/slack/events", bridge, ctx, session)
        finally:
            await runner.cleanup()
            await bridge.aclose()
            await ctx.aclose()


@pytest.fixture
async def slack_server(slack_settings: Any) -> AsyncIterator[SlackServer]:
    async with running_server(slack_settings) as server:
        yield server
