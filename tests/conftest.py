from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# No .env or stray CHATCANVAS_* from the developer's shell leaks into the tests.
for _k in list(os.environ):
    if _k.startswith(("CHATCANVAS_", "OPENAI_", "SLACK_", "DISCORD_")):
        del os.environ[_k]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fakes.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture
def settings(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from chatcanvas.config import Settings

    monkeypatch.chdir(tmp_path)  # no .env from the repo
    return Settings(
        model=str(tiny_model_dir),
        data_dir=tmp_path / "data",
        default_steps=2,
        batch_wait_ms=0,
        preview_interval_s=0,  # tiny jobs take milliseconds: show their previews anyway
        progress_interval_s=0,  # and every step
    )


@pytest.fixture
async def app(settings):  # type: ignore[no-untyped-def]
    from chatcanvas.app import build_app

    ctx = await build_app(settings)
    await ctx.engine.warm_up()  # the model loaded: no "warming up" note in the streams tests look at
    try:
        yield ctx
    finally:
        await ctx.aclose()


async def collect(events: AsyncIterator[object]) -> list[object]:
    return [e async for e in events]


async def outcome(events: AsyncIterator[object]) -> object:
    """The first Accepted or Refused event of a request's stream (the stream is then closed)."""
    from chatcanvas.types import Accepted, Failed, Refused

    try:
        async for ev in events:
            if isinstance(ev, (Accepted, Refused, Failed)):
                return ev
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    raise AssertionError("the stream ended without Accepted or Refused")
