"""Real processes: ``chatcanvas run --adapters slack`` and ``examples/slack_existing_app.py`` in HTTP mode,
driven by signed requests, answering through the fake Web API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from chatcanvas.generation.metadata import parameters_from_png
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import SIGNING_SECRET, form_body, form_headers, slash_command

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _running(argv: list[str], env_extra: dict[str, str], cwd: Path, port: int) -> AsyncIterator[str]:
    ours = ("CHATCANVAS_", "SLACK_", "OPENAI_", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(env_extra, CHATCANVAS_SLACK_PORT=str(port), CHATCANVAS_SLACK_HOST="127.0.0.1")
    env["PYTHONPATH"] = str(REPO)
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.returncode is None, f"exited with {proc.returncode}"
            assert time.monotonic() < deadline, "never started listening"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.25)
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
        sys.stdout.write(out.decode(errors="replace")[-3000:])
    assert proc.returncode == 0


def _env(slack_api: FakeSlackAPI, tmp_path: Path, tiny_model_dir: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api.api_url,
        "CHATCANVAS_DATA_DIR": str(tmp_path / "data"),
        "CHATCANVAS_MODEL": str(tiny_model_dir),
        "CHATCANVAS_DEFAULT_STEPS": "2",
    }


async def _imagine_reaches_upload(url: str, slack_api: FakeSlackAPI) -> None:
    body = form_body(slash_command("a red mug"))
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers=form_headers(body)) as resp:
            assert resp.status == 200
            at_ack = slack_api.methods()
    # acknowledged before the work: no image was made or shown yet (how fast: bench/ack_latency.py)
    assert not [m for m in at_ack if m.startswith("files.") or m in ("upload", "chat.update")]
    done = await slack_api.wait_for("files.completeUploadExternal", within=180)
    assert done[0].params["channel_id"] == "C1"
    png = slack_api.uploaded[slack_api.completed[0]["files"][0]["id"]]
    assert png.startswith(b"\x89PNG")
    assert "red mug" in parameters_from_png(png)["prompt"]
    methods = [m for m in slack_api.methods() if m.startswith("files.") or m == "upload"]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


async def test_chatcanvas_run_slack_http(
    tmp_path: Path, tiny_model_dir: Path, slack_api: FakeSlackAPI
) -> None:
    exe = str(Path(sys.executable).with_name("chatcanvas"))
    argv = [exe, "run", "--adapters", "slack"]
    async with _running(argv, _env(slack_api, tmp_path, tiny_model_dir), tmp_path, _free_port()) as url:
        body = form_body(slash_command("a red mug"))
        async with aiohttp.ClientSession() as http:
            # forged first: 401, and not a single Web API call (not even auth.test)
            async with http.post(url, data=body, headers=form_headers(body, secret="wrong")) as resp:
                assert resp.status == 401
        await asyncio.sleep(0.5)
        assert slack_api.calls == []
        await _imagine_reaches_upload(url, slack_api)


async def test_example_existing_app_keeps_its_listeners(
    tmp_path: Path, tiny_model_dir: Path, slack_api: FakeSlackAPI
) -> None:
    argv = [sys.executable, str(REPO / "examples" / "slack_existing_app.py")]
    async with _running(argv, _env(slack_api, tmp_path, tiny_model_dir), tmp_path, _free_port()) as url:
        body = form_body(slash_command("", command="/hello"))
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=body, headers=form_headers(body)) as resp:
                assert resp.status == 200
                assert "/imagine" in await resp.text()  # the host app's own listener answered
        await _imagine_reaches_upload(url, slack_api)
