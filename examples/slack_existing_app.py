"""chatcanvas inside a Bolt app you already run: your listeners stay, ours are added.

    SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... python examples/slack_existing_app.py
    # or Socket Mode:  SLACK_BOT_TOKEN=xoxb-... SLACK_APP_TOKEN=xapp-... python examples/slack_existing_app.py

Slack app setup: a slash command ``/imagine`` and the Events API (``app_mention``, ``message.im``,
``message.channels``) pointed at ``https://<your host>/slack/events``, Interactivity on the same URL;
bot scopes ``commands``, ``chat:write``, ``files:write``, ``files:read``, ``app_mentions:read``,
``im:history``, ``channels:history``.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.web.async_client import AsyncWebClient

from chatcanvas.adapters.slack import register
from chatcanvas.app import build_app
from chatcanvas.config import load_settings


async def main() -> None:
    settings = load_settings()  # SLACK_* and CHATCANVAS_* from the environment or .env
    app = AsyncApp(
        client=AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url),
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not settings.slack_app_token,
    )

    # The host app's own listener, untouched by chatcanvas.
    @app.command("/hello")
    async def hello(args: AsyncArgs) -> None:
        await args.ack(text="Hi! Try `/imagine a red mug on a wooden table`.")

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    ctx = await build_app(settings)  # store, job engine, assistant
    bridge = register(app, ctx.assistant, settings)  # /imagine, mentions, DMs, threads, buttons
    try:
        if settings.slack_app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(app, settings.slack_app_token)
            await handler.connect_async()
            await stop.wait()
            await handler.close_async()
        else:
            runner = web.AppRunner(app.web_app(path="/slack/events"))
            await runner.setup()
            await web.TCPSite(runner, settings.slack_host, settings.slack_port).start()
            print(f"listening on http://{settings.slack_host}:{settings.slack_port}/slack/events", flush=True)
            await stop.wait()
            await runner.cleanup()
    finally:
        await bridge.aclose()
        await ctx.aclose()


if __name__ == "__main__":
    asyncio.run(main())
