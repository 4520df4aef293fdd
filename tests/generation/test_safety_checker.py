"""The checkpoint's safety checker: its verdict is told to the user, never a silent black square."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from chatcanvas.app import AppContext
from chatcanvas.bot.assistant import Assistant
from chatcanvas.generation.base import Backend, StepCallback
from chatcanvas.generation.engine import Engine
from chatcanvas.store import Store
from chatcanvas.types import Failed, GeneratedImage, Images, ImageSpec, Place, Recipe, UserRef
from tests.conftest import collect

WHO = UserRef(platform="web", user="u", server="local")
HERE = Place(platform="web", channel="c")


class FlaggingBackend(Backend):
    """Makes plain images and flags the ones whose seed is odd, as a safety checker would."""

    name = "local"
    max_batch = 8

    async def generate(self, specs: list[ImageSpec], on_step: StepCallback | None = None) -> list[GeneratedImage]:
        out = []
        for spec in specs:
            for i in range(spec.count):
                seed = (spec.seed or 0) + i
                buf = io.BytesIO()
                Image.new("RGB", (8, 8), (0, 0, 0) if seed % 2 else (200, 30, 30)).save(buf, format="PNG")
                r = Recipe(
                    prompt=spec.prompt, width=8, height=8, seed=seed, steps=1, guidance=1, sampler="Euler",
                    model="m", backend="local", safety_blocked=True if seed % 2 else None,
                )
                out.append(GeneratedImage(png=buf.getvalue(), recipe=r))
        return out


async def _ctx(settings: Any) -> AppContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.data_dir)
    engine = Engine(settings, store, {"local": FlaggingBackend})
    ctx = AppContext(settings, store, engine, Assistant(settings, engine, store))
    await engine.start()
    return ctx


async def test_some_blocked_are_held_back_and_the_user_told(settings: Any) -> None:
    ctx = await _ctx(settings)
    try:
        events = await collect(ctx.assistant.run_specs([ImageSpec(prompt="a mug", count=4, seed=10)], WHO, HERE))
        (done,) = [e for e in events if isinstance(e, Images)]
        assert [i.recipe.seed for i in done.images] == [10, 12]
        assert done.notes == ("The model's safety checker blocked 2 of 4 images; they were not kept.",)
    finally:
        await ctx.aclose()


async def test_all_blocked_is_a_failure_that_says_so(settings: Any) -> None:
    ctx = await _ctx(settings)
    try:
        events = await collect(ctx.assistant.run_specs([ImageSpec(prompt="a mug", count=1, seed=7)], WHO, HERE))
        assert not [e for e in events if isinstance(e, Images)]
        (failed,) = [e for e in events if isinstance(e, Failed)]
        assert "safety checker blocked 1 of 1" in failed.reason
    finally:
        await ctx.aclose()
