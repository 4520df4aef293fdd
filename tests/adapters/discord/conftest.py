"""Fixtures for the Discord scenario tests: an app whose backend the test can hold or break, and a
``commands.Bot`` with chatcanvas loaded as an extension, wired to a local fake Discord."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from typing import Any

import pytest

from chatcanvas.errors import BackendError
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.types import GeneratedImage, ImageSpec


@dataclass
class Control:
    """Test-side handle on the backend: hold generation at a step, or make it fail."""

    hold_at: int | None = None  # block the worker thread after this step until ``release()``
    fail: str | None = None  # raise BackendError(fail) instead of generating
    released: threading.Event = field(default_factory=threading.Event)
    calls: int = 0

    def hold(self, step: int = 1) -> None:
        self.hold_at = step
        self.released.clear()

    def release(self) -> None:
        self.hold_at = None
        self.released.set()


class ControlledBackend(Backend):
    """The real diffusers backend (tiny checkpoint), with the test's hold/fail switches around it."""

    name = "local"
    supports_img2img = True
    supports_inpaint = True
    max_batch = 16

    def __init__(self, inner: Any, control: Control) -> None:
        self.inner = inner
        self.control = control

    async def generate(
        self, specs: list[ImageSpec], on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        self.control.calls += 1
        if self.control.fail:
            raise BackendError(self.control.fail)

        def step(info: StepInfo) -> None:  # worker thread
            if on_step is not None:
                on_step(info)
            if self.control.hold_at is not None and info.step == self.control.hold_at:
                self.control.released.wait(timeout=60)

        result: list[GeneratedImage] = await self.inner.generate(specs, step)
        return result

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        resolved: ImageSpec = self.inner.resolve(spec)
        return resolved

    def batch_key(self, spec: ImageSpec) -> Hashable:
        key: Hashable = self.inner.batch_key(spec)
        return key

    def native_size(self) -> int:
        return int(self.inner.native_size())

    @property
    def model_name(self) -> str:
        return str(self.inner.model_name)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def control() -> Control:
    return Control()


@pytest.fixture
def discord_settings(settings):  # type: ignore[no-untyped-def]
    return settings


@pytest.fixture
async def discord_app(discord_settings, control: Control) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    from chatcanvas.app import AppContext
    from chatcanvas.bot.assistant import Assistant
    from chatcanvas.bot.memory import ConversationMemory
    from chatcanvas.generation.engine import Engine
    from chatcanvas.generation.registry import load_backend
    from chatcanvas.store import Store

    s = discord_settings
    s.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(s.data_dir)
    engine = Engine(s, store, {"local": lambda: ControlledBackend(load_backend("local", s), control)})
    ctx = AppContext(s, store, engine, Assistant(s, engine, store, memory=ConversationMemory(store)))
    from chatcanvas.ops.install import install_ops

    install_ops(ctx)  # as build_app does: metrics, backend-time usage, paused backends held
    await engine.start()
    try:
        yield ctx
    finally:
        control.release()
        await ctx.aclose()


@pytest.fixture
async def wire(discord_app: Any, control: Control) -> AsyncIterator[Any]:
    """A plain ``commands.Bot`` (the host's), chatcanvas loaded as an extension, logged in to the fake."""
    import discord
    from discord.ext import commands

    from tests.fakes.discord_wire import Wire

    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
    bot.chatcanvas = discord_app  # type: ignore[attr-defined]
    async with Wire(bot) as w:
        await bot.load_extension("chatcanvas.adapters.discord")
        try:
            yield w
        finally:
            control.release()
            await asyncio.sleep(0)
