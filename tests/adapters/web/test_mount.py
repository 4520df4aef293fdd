"""create_app() mounted in someone else's FastAPI app; restart recovery; localhost-only binding."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from chatcanvas.adapters.web.app import bind_host, create_app
from chatcanvas.config import Settings
from tests.adapters.web.conftest import running, serving, sse_events


async def test_mounted_under_a_path_builds_its_own_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATCANVAS_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CHATCANVAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATCANVAS_DEFAULT_STEPS", "2")
    host = FastAPI()

    @host.get("/")
    async def shop() -> dict[str, str]:
        return {"shop": "yes"}

    canvas = create_app()
    host.mount("/canvas", canvas)
    try:
        async with serving(host) as (_, c):
            assert (await c.get("/")).json() == {"shop": "yes"}
            page = await c.get("/canvas", follow_redirects=True)
            assert page.status_code == 200 and 'src="static/app.js"' in page.text
            assert (await c.get("/canvas/static/app.js")).status_code == 200
            assert (await c.get("/canvas/v1")).json()["demo_model"] is False
            resp = await c.post("/canvas/v1/generations", json={"prompt": "a mug", "seed": 4})
            assert resp.status_code in (200, 202), resp.text
            job = resp.json()
            assert resp.headers["location"] == f"/canvas/v1/jobs/{job['id']}"
            assert job["links"]["events"] == f"/canvas/v1/jobs/{job['id']}/events"
            done = (await sse_events(c, job["links"]["events"]))[-1][1]
            url = done["images"][0]["url"]
            assert url.startswith("/canvas/v1/images/")
            assert (await c.get(url)).headers["content-type"] == "image/png"
            assert (await c.get("/canvas/v1/openapi.json")).status_code == 200
    finally:
        await canvas.state.chatcanvas.aclose()  # a host without lifespan wiring closes it like this


async def test_a_job_queued_at_a_graceful_restart_reads_done_when_it_finishes(
    make_settings: Callable[..., Settings],
) -> None:
    """The server stops while the job runs (no drain time: it goes back to the queue); after the
    restart the job runs again and its status is derived from the job records: done with its image,
    never a stale "cancelled"."""
    settings = make_settings(drain_timeout_s=0, max_steps=200)
    async with running(settings) as first:
        resp = await first.client.post("/v1/generations", json={"prompt": "a cap", "seed": 9, "steps": 200})
        assert resp.status_code == 202, resp.text
        job = resp.json()
    async with running(settings.model_copy(update={"drain_timeout_s": 30})) as second:  # a restart
        events = await sse_events(second.client, f"/v1/jobs/{job['id']}/events")
        assert events[-1][0] == "done" and events[-1][1]["images"]
        got = (await second.client.get(f"/v1/jobs/{job['id']}")).json()
        assert got["status"] == "done" and got["percent"] == 100
        assert [i["id"] for i in got["images"]] == [i["id"] for i in events[-1][1]["images"]]


async def test_serve_runs_uvicorn_for_a_context(make_settings: Callable[..., Settings]) -> None:
    import asyncio
    import socket

    import httpx

    from chatcanvas.adapters.web import serve
    from chatcanvas.app import build_app

    ctx = await build_app(make_settings())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(serve(ctx, sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as c:
            for _ in range(200):  # until it listens
                try:
                    resp = await c.get("/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert resp.status_code == 200 and "chatcanvas" in resp.text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # a clean stop: cancelled, not crashed
        sock.close()
        await ctx.aclose()


def test_without_keys_only_localhost(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert bind_host(make_settings(web_host="0.0.0.0")) == "127.0.0.1"
    assert "CHATCANVAS_API_KEYS" in caplog.text and "0.0.0.0" in caplog.text
    assert bind_host(make_settings(web_host="0.0.0.0", api_keys="k1-key-0123456789")) == "0.0.0.0"
    assert bind_host(make_settings(web_host="::1")) == "::1"
    assert bind_host(make_settings()) == "127.0.0.1"
