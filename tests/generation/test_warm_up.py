"""Start-up: the model loads in a worker thread while requests are answered at once and queued.

A backend whose loading blocks until the test lets it go stands in for a big checkpoint: the Slack
acknowledgement and the web API's answer arrive while it is still loading, the requests say they
are warming up, and their images follow once it is loaded. A real ``chatcanvas run`` imports torch,
diffusers, transformers and LangChain only in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx
import pytest
from PIL import Image

from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.generation.metadata import png_with_recipe
from chatcanvas.types import GeneratedImage, Images, ImageSpec, Place, Queued, Recipe, Text, UserRef
from tests.adapters.web.conftest import serving
from tests.fakes.openai_server import FakeOpenAI, text, tool_call
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import SIGNING_SECRET, form_body, form_headers, slash_command

REPO = Path(__file__).resolve().parents[2]
HERE = Place(platform="test", channel="c")


class SlowLoadingBackend(Backend):
    """Loads like a big checkpoint: ``warm_up`` blocks (in a thread) until ``gate`` is set, or 60 s."""

    name: ClassVar[str] = "local"
    max_batch: ClassVar[int] = 8
    gate: ClassVar[threading.Event]
    made: ClassVar[list[list[str]]]  # the prompts of each generate call

    def __init__(self) -> None:
        self.loaded = False

    def native_size(self) -> int:
        return 48

    async def warm_up(self) -> None:
        def load() -> None:
            self.gate.wait(60)
            self.loaded = True

        await asyncio.to_thread(load)

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        return spec.model_copy(
            update={"width": spec.width or 48, "height": spec.height or 48, "steps": spec.steps or 3,
                    "guidance": 5.0, "model": "slow", "backend": "local"}
        )

    async def generate(self, specs: list[ImageSpec], on_step: StepCallback | None = None) -> list[GeneratedImage]:
        assert self.loaded, "a job ran before its model was loaded"
        self.made.append([s.prompt for s in specs])
        out = []
        for spec in specs:
            for i in range(spec.count):
                if on_step is not None:
                    on_step(StepInfo(step=1, total=1))
                w, h = spec.width or 48, spec.height or 48
                im = Image.new("RGB", (w, h), (180, 40 + 30 * i, 60))
                recipe = Recipe(prompt=spec.prompt, width=w, height=h, seed=(spec.seed or 0) + i, steps=1,
                                guidance=5.0, sampler="Euler", model="slow", backend="local")
                out.append(GeneratedImage(png=png_with_recipe(im, recipe), recipe=recipe, seconds=0.0))
        return out


@pytest.fixture
def slow_backend() -> type[SlowLoadingBackend]:
    SlowLoadingBackend.gate = threading.Event()
    SlowLoadingBackend.made = []
    yield SlowLoadingBackend
    SlowLoadingBackend.gate.set()


async def _started_with(settings: Settings, backend: type[Backend]) -> Any:
    from chatcanvas.app import build_app

    ctx = await build_app(settings, start=False)
    ctx.engine.register_backend("local", backend)
    await ctx.engine.start()
    return ctx


async def test_slack_ack_and_web_answer_come_while_the_model_is_still_loading(
    settings: Settings, slow_backend: type[SlowLoadingBackend]
) -> None:
    from chatcanvas.adapters.slack import build_app as build_bolt
    from chatcanvas.adapters.slack import start_http
    from chatcanvas.adapters.web import create_app

    async with FakeSlackAPI() as slack_api:
        s = settings.model_copy(
            update={"slack_bot_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET,
                    "slack_api_url": slack_api.api_url, "slack_progress_interval_s": 0.05}
        )
        ctx = await _started_with(s, slow_backend)
        bolt, bridge = build_bolt(ctx.assistant, s)
        runner, port = await start_http(bolt, "127.0.0.1", 0)
        try:
            assert not ctx.assistant.ready()[0]
            body = form_body(slash_command("a navy tote bag, studio light"))
            async with aiohttp.ClientSession() as http:
                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                     headers=form_headers(body)) as resp:
                    assert resp.status == 200
            pool = ctx.engine._pools["local"]
            assert not any(be.loaded for be in pool), "the ack waited for the model"

            async with serving(create_app(ctx)) as (_, client):
                r = await client.post("/v1/generations", json={"text": "a forest green mug"})
                assert r.status_code == 202, r.text
                job = r.json()
                assert not any(be.loaded for be in pool), "the web answer waited for the model"
                assert job["status"] == "queued" and m.WARMING_UP_BEHIND.format(n=1) in job["texts"]  # the Slack one first
                warm = await slack_api.wait_for(
                    "chat.postMessage", where=lambda c: "Warming up" in str(c.params.get("text")), within=60
                )
                assert warm[0].params.get("thread_ts")  # said in the request's thread

                slow_backend.gate.set()  # the model is loaded now
                await slack_api.wait_for("files.completeUploadExternal", within=120)
                names = [n async for n in _sse_until_done(client, job["id"])]
                assert names[-1] == "done", names
                got = (await client.get(f"/v1/jobs/{job['id']}")).json()
                assert len(got["images"]) == 1
            assert ctx.assistant.ready()[0]
            prompts = [p for call in slow_backend.made for p in call]
            assert any("navy tote" in p for p in prompts) and any("forest green mug" in p for p in prompts)
        finally:
            await runner.cleanup()
            await bridge.aclose()
            await ctx.aclose()


async def test_jobs_queued_while_loading_run_together_once_loaded(
    settings: Settings, slow_backend: type[SlowLoadingBackend]
) -> None:
    ctx = await _started_with(settings.model_copy(update={"batch_size": 8}), slow_backend)
    try:
        who = [UserRef(platform="test", user=u) for u in ("ana", "bo", "cy")]
        jobs = [await ctx.engine.submit(ImageSpec(prompt=f"a {c} cap"), u, HERE)
                for c, u in zip(("red", "olive", "beige"), who, strict=True)]
        assert ctx.engine.warming() and not ctx.engine.ready()
        for j in jobs:
            stream = ctx.engine.follow(j.id)
            assert isinstance(await anext(stream), Queued)
            await stream.aclose()
        slow_backend.gate.set()
        for j in jobs:
            evs = [ev async for ev in ctx.engine.follow(j.id)]
            assert isinstance(evs[-1], Images)
        assert ctx.engine.ready()
        assert [sorted(call) for call in slow_backend.made] == [["a beige cap", "a olive cap", "a red cap"]]
    finally:
        await ctx.aclose()


async def test_a_turn_during_warm_up_says_so_then_delivers(
    settings: Settings, slow_backend: type[SlowLoadingBackend]
) -> None:
    from chatcanvas.types import Accepted, ChatTurn

    ctx = await _started_with(settings, slow_backend)
    try:
        turn = ChatTurn(who=UserRef(platform="test", user="dee"), where=HERE, text="two pictures of a beige sneaker please")
        events: list[object] = []
        async for ev in ctx.assistant.handle(turn):
            events.append(ev)
            if isinstance(ev, Accepted):
                slow_backend.gate.set()
        texts = [e.text for e in events if isinstance(e, Text)]
        assert m.WARMING_UP in texts
        kinds = [type(e).__name__ for e in events]
        assert kinds.index("Text") < kinds.index("Accepted") < kinds.index("Images")
        images = [i for e in events if isinstance(e, Images) for i in e.images]
        assert len(images) == 2
        # once loaded, nothing more about warming up
        again = [ev async for ev in ctx.assistant.handle(turn)]
        assert not [e for e in again if isinstance(e, Text) and "Warming up" in e.text]
    finally:
        await ctx.aclose()


# ---------------------------------------------------------------- a real `chatcanvas run`

HOOKED_RUN = textwrap.dedent(
    """
    import atexit, json, sys, threading
    HEAVY = ("torch", "diffusers", "transformers", "langchain", "langchain_core", "langchain_openai")
    seen = []

    def hook(event, args):
        if event == "import" and str(args[0]).split(".")[0] in HEAVY:
            seen.append([args[0], threading.current_thread().name, threading.current_thread() is threading.main_thread()])

    sys.addaudithook(hook)
    atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(seen)))
    from chatcanvas.cli import main
    sys.exit(main(["run", "--adapters", "web,slack"]))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_listening(proc: asyncio.subprocess.Process, port: int) -> None:
    for _ in range(1200):
        assert proc.returncode is None, f"exited with {proc.returncode}"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.25)
    raise AssertionError("never started listening")


async def _sse_until_done(client: httpx.AsyncClient, job_id: str) -> AsyncIterator[str]:
    async with client.stream("GET", f"/v1/jobs/{job_id}/events") as resp:
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                yield line[6:].strip()


def _draw_what_was_asked(rec: Any) -> Any:
    """The fake LLM: call generate_image with the user's words, then answer once the tool ran."""
    messages = rec.json["messages"]
    if messages[-1]["role"] == "tool":
        return text("Here it is.")
    asked = next(str(msg["content"]) for msg in reversed(messages) if msg["role"] == "user")
    return tool_call("generate_image", {"prompt": asked[-200:]})


async def test_chatcanvas_run_imports_torch_diffusers_and_langchain_off_the_event_loop(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    record = tmp_path / "imports.json"
    web_port, slack_port = _free_port(), _free_port()
    async with FakeSlackAPI() as slack_api:
        with FakeOpenAI() as llm:
            llm.chat_script.extend([_draw_what_was_asked] * 8)
            ours = ("CHATCANVAS_", "SLACK_", "OPENAI_", "DISCORD_")
            env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
            env.update(
                PYTHONPATH=str(REPO), CHATCANVAS_DATA_DIR=str(tmp_path / "data"),
                CHATCANVAS_MODEL=str(tiny_model_dir), CHATCANVAS_DEFAULT_STEPS="2",
                CHATCANVAS_WEB_PORT=str(web_port), CHATCANVAS_SLACK_PORT=str(slack_port),
                CHATCANVAS_SLACK_HOST="127.0.0.1", SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=slack_api.api_url, CHATCANVAS_LLM_MODEL="fake-model",
                OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test-not-real",
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", HOOKED_RUN, str(record), env=env, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await _wait_listening(proc, slack_port)
                await _wait_listening(proc, web_port)
                body = form_body(slash_command("a red mug"))
                async with aiohttp.ClientSession() as http:
                    async with http.post(f"http://127.0.0.1:{slack_port}/slack/events", data=body,
                                         headers=form_headers(body)) as resp:
                        assert resp.status == 200
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=120) as client:
                    r = await client.post("/v1/generations", json={"text": "a yellow cap"})
                    assert r.status_code in (200, 202), r.text
                    names = [n async for n in _sse_until_done(client, r.json()["id"])]
                    assert names[-1] == "done", names
                await slack_api.wait_for("files.completeUploadExternal", within=180)
                assert llm.requests_to("/v1/chat/completions"), "the turns went through the LLM agent"
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                out, _ = await asyncio.wait_for(proc.communicate(), 120)
                sys.stdout.write(out.decode(errors="replace")[-3000:])
    assert proc.returncode == 0
    seen = json.loads(record.read_text())
    tops = {name.split(".")[0] for name, _, _ in seen}
    assert {"torch", "diffusers", "transformers", "langchain"} <= tops, tops
    on_loop = sorted({name for name, _, main in seen if main})
    assert on_loop == [], f"imported on the event loop's thread: {on_loop[:20]}"



def test_a_hub_model_is_sized_from_its_cached_configs_before_it_loads(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that come while an SDXL hub model loads get its 1024 size, read from the hub cache's
    configs (no weights are there at all here)."""
    import huggingface_hub.constants

    from chatcanvas.generation.diffusers_backend import DiffusersBackend

    snap = tmp_path / "hub" / "models--acme--product-xl" / "snapshots" / "abc123"
    (snap / "unet").mkdir(parents=True)
    (snap / "vae").mkdir()
    (snap / "unet" / "config.json").write_text(json.dumps({"sample_size": 128}))
    (snap / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [128, 256, 512, 512]}))
    (tmp_path / "hub" / "models--acme--product-xl" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--product-xl" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    be = DiffusersBackend(settings.model_copy(update={"model": "acme/product-xl"}))
    spec = be.resolve(ImageSpec(prompt="a canvas tote bag"))
    assert (spec.width, spec.height) == (1024, 1024)
    assert DiffusersBackend(settings.model_copy(update={"model": "acme/not-cached"})).native_size() == 512
