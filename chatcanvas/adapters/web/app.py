"""The FastAPI app: ``create_app(ctx)`` for ``chatcanvas run``, ``create_app()`` to mount anywhere.

``create_app()`` without a context builds one from :func:`chatcanvas.config.load_settings` at
startup (lifespan) or, when mounted inside another app (whose lifespan does not reach mounted
apps), on the first request. ``serve(ctx)`` runs it under uvicorn on ``CHATCANVAS_WEB_HOST`` /
``CHATCANVAS_WEB_PORT``; without API keys it listens on 127.0.0.1 only, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatcanvas import messages as m
from chatcanvas.adapters.web import routes_api, routes_events, routes_ops, routes_page, routes_verify
from chatcanvas.adapters.web.problems import MEDIA_TYPE, install_handlers
from chatcanvas.adapters.web.state import Holder

if TYPE_CHECKING:
    from chatcanvas.app import AppContext
    from chatcanvas.config import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
FORM_OVERHEAD = 256 * 1024  # multipart boundaries and small fields, beyond the files themselves


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are spooled anywhere."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._drain(receive, int(declared))
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    if msg.get("more_body", False):
                        await self._drain(receive, 4 * self.limit - seen)
                    raise _TooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _drain(self, receive: Receive, size: int) -> None:
        """Read (and drop) a refused body, so that the client sees the answer, not a reset.

        Bodies far over the limit are not read: the connection is closed on them instead.
        """
        if size > 4 * self.limit:
            return
        while True:
            msg = await receive()
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                return

    async def _refuse(self, scope: Scope, send: Send) -> None:
        mb = f"{self.limit / 1_000_000:.1f} MB"
        body = json.dumps(
            {
                "type": "https://chatcanvas.dev/problems/too-large",
                "title": "Upload too large",
                "status": 413,
                "detail": m.IMAGE_TOO_LARGE.format(detail="the request body", limit=mb),
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(ctx: AppContext | None = None, *, settings: Settings | None = None) -> FastAPI:
    """The web app. With ``ctx``, it serves that context (its owner starts and closes it)."""
    holder = Holder(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await holder.get()
        try:
            yield
        finally:
            await holder.aclose()

    app = FastAPI(
        title="chatcanvas",
        summary="Images from chat: text or exact specs in, jobs with progress and PNGs out.",
        version="1",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.chatcanvas = holder
    install_handlers(app)
    app.include_router(routes_api.router)
    app.include_router(routes_events.router)
    app.include_router(routes_page.router)
    app.include_router(routes_verify.router)
    app.include_router(routes_ops.router)
    app.mount("/static", StaticFiles(directory=routes_page.STATIC_DIR), name="static")
    cfg = ctx.settings if ctx is not None else settings
    max_upload = cfg.max_upload_bytes if cfg is not None else 10 * 1024 * 1024
    app.add_middleware(BodyLimit, limit=2 * max_upload + FORM_OVERHEAD)  # photo + mask
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_host(settings: Settings) -> str:
    """The host to listen on: without API keys, 127.0.0.1 only (with a warning if asked for more)."""
    host = settings.web_host
    if not settings.api_keys and not _is_loopback(host):
        log.warning(m.WEB_LOCALHOST_ONLY.format(host=host))
        return "127.0.0.1"
    return host


def uvicorn_server(app: Any, host: str, port: int, *, handle_signals: bool = False) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,
    )

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # the host process (chatcanvas run) owns the signals
            if handle_signals:
                with super().capture_signals():
                    yield
            else:
                yield

    return Server(config)


async def serve(
    ctx: AppContext, *, sockets: list[socket.socket] | None = None, handle_signals: bool = False
) -> None:
    """Run the web app for ``ctx`` until cancelled (``chatcanvas run`` awaits this in a task)."""
    settings = ctx.settings
    host = bind_host(settings)
    server = uvicorn_server(create_app(ctx), host, settings.web_port, handle_signals=handle_signals)
    shown_host = host if sockets is None else sockets[0].getsockname()[0]
    shown_port = settings.web_port if sockets is None else sockets[0].getsockname()[1]
    log.warning(m.WEB_LISTENING.format(host=shown_host, port=shown_port))
    task = asyncio.create_task(server.serve(sockets=sockets), name="uvicorn")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Stop the way uvicorn does on SIGTERM: close the listener, finish requests, run the lifespan end.
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, STOP_TIMEOUT_S)
        raise
    if not server.started and sockets is None:
        from chatcanvas.errors import ConfigError

        raise ConfigError(
            f"The web server could not listen on {host}:{settings.web_port} (in use?). "
            "Set CHATCANVAS_WEB_PORT to a free port."
        )
