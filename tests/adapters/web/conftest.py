"""A real uvicorn server on 127.0.0.1 (an ephemeral port) around a real AppContext, and httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatcanvas.config import Settings


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """Any ASGI app under uvicorn on 127.0.0.1 (an ephemeral port), with an httpx client."""
    from chatcanvas.adapters.web.app import uvicorn_server

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn_server(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if task.done():
            task.result()
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            yield url, client
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        sock.close()


@dataclass
class Server:
    url: str
    ctx: Any
    client: httpx.AsyncClient
    app: Any

    @property
    def web(self) -> Any:
        """The app's WebState (keys, live jobs)."""
        return self.app.state.chatcanvas.state


@contextlib.asynccontextmanager
async def running(settings: Settings, *, start_engine: bool = True) -> AsyncIterator[Server]:
    """A real AppContext behind ``create_app(ctx)`` under uvicorn on 127.0.0.1."""
    from chatcanvas.adapters.web import create_app
    from chatcanvas.app import build_app

    ctx = await build_app(settings, start=start_engine)
    if start_engine:
        await ctx.engine.warm_up()  # the model loaded: no "warming up" note in the jobs tests look at
    try:
        app = create_app(ctx)
        async with serving(app) as (url, client):
            yield Server(url, ctx, client, app)
    finally:
        await ctx.aclose()


@pytest.fixture
def make_settings(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    monkeypatch.chdir(tmp_path)

    def make(**over: Any) -> Settings:
        base: dict[str, Any] = dict(
            model=str(tiny_model_dir), data_dir=tmp_path / "data", default_steps=2, batch_wait_ms=0,
            preview_interval_s=0,  # tiny jobs take milliseconds: show their previews anyway
            progress_interval_s=0,  # and every step
        )
        base.update(over)
        return Settings(**base)

    return make


@pytest.fixture
async def server(make_settings: Callable[..., Settings]) -> AsyncIterator[Server]:
    async with running(make_settings()) as srv:
        yield srv


async def sse_events(client: httpx.AsyncClient, path: str, **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    """Read a server-sent event stream to its end: [(event, data), ...]."""
    out: list[tuple[str, dict[str, Any]]] = []
    async with client.stream("GET", path, **kw) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        name, data = "message", ""
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                out.append((name, json.loads(data)))
                name, data = "message", ""
    return out


def png_bytes(img: Any, fmt: str = "PNG") -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()
