"""/healthz, /readyz and /metrics on the web port (real uvicorn, httpx), and on the separate metrics port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chatcanvas.config import Settings
from chatcanvas.errors import BackendError
from chatcanvas.generation.base import Backend, StepCallback
from chatcanvas.types import GeneratedImage, ImageSpec
from tests.adapters.web.conftest import Server, running, serving, sse_events

FAMILIES = {
    "chatcanvas_jobs": "counter",
    "chatcanvas_queue_depth": "gauge",
    "chatcanvas_generation_seconds": "histogram",
    "chatcanvas_queue_wait_seconds": "histogram",
    "chatcanvas_refusals": "counter",
    "chatcanvas_images": "counter",
    "chatcanvas_openai_spend_usd": "counter",
    "chatcanvas_backend_ready": "gauge",
}


class SlowBackend(Backend):
    """A backend whose model takes as long to load as the test wants."""

    name = "local"

    def __init__(self, loaded: threading.Event) -> None:
        self.loaded = loaded

    async def warm_up(self) -> None:
        await asyncio.to_thread(self.loaded.wait, 60)

    async def generate(self, specs: list[ImageSpec], on_step: StepCallback | None = None) -> list[GeneratedImage]:
        raise BackendError("this backend only loads")


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams: dict[str, Any], name: str, **labels: str) -> float:
    family = name.removesuffix("_total").removesuffix("_count")
    return sum(
        s.value
        for s in fams[family].samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def wait_ready(client: httpx.AsyncClient) -> httpx.Response:
    for _ in range(600):
        resp = await client.get("/readyz")
        if resp.status_code == 200:
            return resp
        await asyncio.sleep(0.1)
    raise AssertionError(f"never ready: {resp.text}")


async def test_healthz_at_once_readyz_503_until_the_model_has_loaded(make_settings: Callable[..., Settings]) -> None:
    from chatcanvas.adapters.web import create_app
    from chatcanvas.app import build_app

    loaded = threading.Event()
    ctx = await build_app(make_settings(), start=False)
    ctx.engine.register_backend("local", lambda: SlowBackend(loaded))
    try:
        await ctx.engine.start()
        async with serving(create_app(ctx)) as (_, client):
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}

            not_yet = await client.get("/readyz")
            assert not_yet.status_code == 503
            assert "still loading its model" in not_yet.json()["reason"]
            assert sample(families((await client.get("/metrics")).text), "chatcanvas_backend_ready") == 0

            loaded.set()
            ready = await wait_ready(client)
            assert ready.json() == {"status": "ready"}
            assert sample(families((await client.get("/metrics")).text), "chatcanvas_backend_ready") == 1
    finally:
        loaded.set()
        await ctx.aclose()


class MountedLateBackend(Backend):
    """A model folder that is not there at start (a volume mounted late): the first load fails, the
    next one waits until the test says the folder is there."""

    name = "local"

    def __init__(self, loads: list[str], mounted: threading.Event) -> None:
        self.loads, self.mounted = loads, mounted

    async def warm_up(self) -> None:
        self.loads.append("try")
        if len(self.loads) == 1:
            raise BackendError("no model at /models/shop-v2 yet")
        await asyncio.to_thread(self.mounted.wait, 60)

    async def generate(self, specs: list[ImageSpec], on_step: StepCallback | None = None) -> list[GeneratedImage]:
        raise BackendError("this backend only loads")


async def test_a_failed_warm_up_is_tried_again_and_readyz_turns_200_without_a_restart(
    make_settings: Callable[..., Settings], monkeypatch: Any, caplog: Any
) -> None:
    from chatcanvas.adapters.web import create_app
    from chatcanvas.app import build_app
    from chatcanvas.generation import pools

    monkeypatch.setattr(pools, "WARM_RETRY_S", (0.05,))
    loads: list[str] = []
    mounted = threading.Event()
    ctx = await build_app(make_settings(), start=False)
    ctx.engine.register_backend("local", lambda: MountedLateBackend(loads, mounted))
    try:
        await ctx.engine.start()
        async with serving(create_app(ctx)) as (_, client):
            for _ in range(600):  # the retry has begun and waits for the folder
                if len(loads) == 2:
                    break
                await asyncio.sleep(0.05)
            assert "no model at /models/shop-v2 yet (trying again in 0 s)" in caplog.text
            waiting = await client.get("/readyz")
            assert waiting.status_code == 503 and "still loading" in waiting.json()["reason"]
            mounted.set()
            assert (await wait_ready(client)).json() == {"status": "ready"}
            assert loads == ["try", "try"]
    finally:
        mounted.set()
        await ctx.aclose()


async def test_readyz_names_a_store_that_takes_no_writes(server: Server) -> None:
    await wait_ready(server.client)
    images = server.ctx.store.images_dir
    aside = images.with_name("images-aside")
    images.rename(aside)
    images.write_text("a file where the images folder should be (a mount gone wrong)")
    try:
        resp = await server.client.get("/readyz")
        assert resp.status_code == 503 and "takes no writes" in resp.json()["reason"]
        assert str(images) in resp.json()["reason"]
    finally:
        images.unlink()
        aside.rename(images)
    assert (await server.client.get("/readyz")).status_code == 200


async def test_metrics_after_two_jobs_and_a_refusal(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(blocked_terms="zorblax,quexx")) as srv:
        c = srv.client
        for prompt in ("a navy canvas tote bag", "two olive mugs on a shelf"):
            job = (await c.post("/v1/generations", json={"spec": {"prompt": prompt, "seed": 5}})).json()
            assert (await sse_events(c, f"/v1/jobs/{job['id']}/events"))[-1][0] == "done"
        refused = await c.post("/v1/generations", json={"text": "a QUEXX poster, bright"})
        assert refused.status_code in (400, 403, 422), refused.text

        resp = await c.get("/metrics")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        fams = families(resp.text)
        assert {n: fams[n].type for n in FAMILIES if n in fams} == FAMILIES
        assert sample(fams, "chatcanvas_jobs_total", status="done") >= 2
        assert sample(fams, "chatcanvas_jobs_total", status="done", backend="local", platform="web") >= 2
        assert sample(fams, "chatcanvas_images_total", backend="local") >= 2
        assert sample(fams, "chatcanvas_generation_seconds_count", backend="local") >= 1
        assert sample(fams, "chatcanvas_queue_wait_seconds_count") >= 2
        assert sample(fams, "chatcanvas_queue_depth", backend="local") == 0
        assert sample(fams, "chatcanvas_refusals_total", rule="blocked_terms", platform="web") == 1
        labels = {k: v for f in fams.values() for s in f.samples for k, v in s.labels.items()}
        assert not any("#" in v for v in labels.values())  # rules by family, never blocked_terms#2
        assert "user" not in labels and "job_id" not in labels


async def test_metrics_ask_for_a_key_when_keys_are_set(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(api_keys="sekrit-key-4f9a2c")) as srv:
        assert (await srv.client.get("/metrics")).status_code == 401
        assert (await srv.client.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 401
        ok = await srv.client.get("/metrics", headers={"Authorization": "Bearer sekrit-key-4f9a2c"})
        assert ok.status_code == 200 and families(ok.text)["chatcanvas_jobs"].type == "counter"
        assert (await srv.client.get("/healthz")).status_code == 200  # probes need no key


async def test_two_apps_in_one_process_count_separately(make_settings: Callable[..., Settings], tmp_path: Any) -> None:
    async with running(make_settings()) as a, running(make_settings(data_dir=tmp_path / "other")) as b:
        job = (await a.client.post("/v1/generations", json={"spec": {"prompt": "a white cap"}})).json()
        await sse_events(a.client, f"/v1/jobs/{job['id']}/events")
        fa = families((await a.client.get("/metrics")).text)
        fb = families((await b.client.get("/metrics")).text)
        assert sample(fa, "chatcanvas_jobs_total", status="done") == 1
        assert sample(fb, "chatcanvas_jobs_total", status="done") == 0


async def test_the_metrics_port_serves_the_same_without_the_web_adapter(make_settings: Callable[..., Settings]) -> None:
    from chatcanvas.app import build_app
    from chatcanvas.ops.server import start_ops_server

    ctx = await build_app(make_settings(api_keys="sekrit-key-4f9a2c"))
    ops = start_ops_server(ctx.assistant, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}", timeout=30) as c:
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            await wait_ready(c)
            metrics = await c.get("/metrics")  # an internal port: no key asked
            assert metrics.status_code == 200
            assert families(metrics.text)["chatcanvas_backend_ready"].type == "gauge"
            assert (await c.get("/nope")).status_code == 404
            assert (await c.post("/metrics")).status_code == 405
    finally:
        await asyncio.to_thread(ops.close)
        await ctx.aclose()
