"""Standalone Slack app: ``chatcanvas run --adapters slack``.

Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP on ``CHATCANVAS_SLACK_PORT`` with every
request verified against ``SLACK_SIGNING_SECRET`` (a bad signature or a timestamp more than five
minutes off gets 401 and nothing else happens). The Web API client talks to ``SLACK_API_URL``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from chatcanvas import messages as m
from chatcanvas.adapters.slack.listeners import PLATFORM, SlackBridge
from chatcanvas.errors import ConfigError

if TYPE_CHECKING:
    from chatcanvas.app import AppContext
    from chatcanvas.bot.assistant import Assistant
    from chatcanvas.config import Settings

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def build_app(assistant: Assistant, settings: Settings) -> tuple[AsyncApp, SlackBridge]:
    """A Bolt app with our listeners, configured from settings only (not from os.environ)."""
    if not settings.slack_bot_token:
        raise ConfigError(m.SLACK_NEEDS_TOKEN)
    socket_mode = bool(settings.slack_app_token)
    if not socket_mode and not settings.slack_signing_secret:
        raise ConfigError(m.SLACK_NEEDS_SECRET)
    # One HTTP session (kept-alive connections) for every Web API call, not a new connection per call
    session = _session()
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, session=session)
    app = AsyncApp(
        name="chatcanvas",
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not socket_mode,
    )
    bridge = SlackBridge(assistant, settings)
    bridge.register(app)
    bridge.http = session
    return app, bridge


def _session() -> aiohttp.ClientSession | None:
    """A client session for the Web API (made on the running loop; without one the SDK makes its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return aiohttp.ClientSession()


def web_app(app: AsyncApp) -> web.Application:
    async def events(request: web.Request) -> web.Response:
        ts = request.headers.get("X-Slack-Request-Timestamp", "")
        if not ts.isdigit() or not request.headers.get("X-Slack-Signature"):
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_resp = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_resp)

    wa = web.Application(client_max_size=1024 * 1024)
    wa.router.add_post(EVENTS_PATH, events)
    return wa


async def start_http(app: AsyncApp, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` over HTTP; returns the runner (``await runner.cleanup()``) and the bound port."""
    runner = web.AppRunner(web_app(app), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


async def resume(bridge: SlackBridge, client: AsyncWebClient) -> None:
    """Deliver what a restart left behind: finished but undelivered jobs, and jobs still in the queue."""
    records = await asyncio.to_thread(bridge.assistant.owed, PLATFORM)
    for rec in records:
        if not rec.where.channel:
            continue
        out = bridge.renderer(client, rec.where.channel, rec.where.thread or None, rec.who.user)
        bridge.spawn(out.render(bridge.assistant.follow([rec.id])))


async def serve(ctx: AppContext) -> None:
    """Run the Slack adapter until cancelled."""
    settings = ctx.settings
    app, bridge = build_app(ctx.assistant, settings)
    client = app.client
    try:
        if settings.slack_app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(app, app_token=settings.slack_app_token, web_client=client)
            await handler.connect_async()
            log.info(m.SLACK_SOCKET_MODE)
            try:
                await resume(bridge, client)
                await asyncio.Event().wait()
            finally:
                await handler.close_async()
        else:
            runner, port = await start_http(app, settings.slack_host, settings.slack_port)
            log.info(m.SLACK_LISTENING.format(host=settings.slack_host, port=port))
            try:
                await resume(bridge, client)
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()
    finally:
        await bridge.drain(within=min(5.0, settings.drain_timeout_s))
        await bridge.aclose()
