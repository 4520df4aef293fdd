"""The assistant: a chat turn in, a stream of events out. Knows no platform."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.errors import ChatcanvasError, QuotaExceeded, SpecError
from chatcanvas.generation.engine import Engine
from chatcanvas.generation.metadata import recipe_to_parameters
from chatcanvas.store import Store
from chatcanvas.types import (
    Accepted,
    ChatTurn,
    Event,
    Failed,
    ImageSpec,
    Place,
    Recipe,
    Refused,
    Text,
    UserRef,
)

if TYPE_CHECKING:
    from chatcanvas.bot.rewriter import Plan

log = logging.getLogger(__name__)


class Rewriter(Protocol):
    async def plan(self, turn: ChatTurn, last: list[ImageSpec] | None, backend_family: str) -> Plan: ...


class Memory(Protocol):
    def last(self, conversation: str) -> list[ImageSpec] | None: ...

    def remember(self, conversation: str, specs: Sequence[ImageSpec]) -> None: ...


def spec_from_recipe(r: Recipe, **changes: Any) -> ImageSpec:
    spec = ImageSpec(
        prompt=r.prompt,
        negative_prompt=r.negative_prompt,
        width=r.width,
        height=r.height,
        seed=r.seed,
        steps=r.steps,
        guidance=r.guidance,
        style=r.style,
        backend=r.backend,
        init_image=r.init_image,
        mask_image=r.mask_image,
        strength=r.strength if r.strength is not None else 0.75,
    )
    return spec.model_copy(update=changes) if changes else spec


class Assistant:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: Store,
        rewriter: Rewriter | None = None,
        memory: Memory | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.rewriter = rewriter
        self.memory = memory
        self.agent: Any = None  # an LLM agent runner, when one is configured (see chatcanvas.bot.agent)

    # ------------------------------------------------------------ info

    @property
    def backend_family(self) -> str:
        return "dalle" if self.settings.backend == "openai" else "sd"

    def native_size(self) -> int:
        be = self.engine.backend()
        size = getattr(be, "native_size", None)
        return int(size()) if callable(size) else 1024

    def recipe(self, image_id: str) -> str:
        img = self.store.image(image_id)
        if img is None:
            return m.NO_SUCH_IMAGE.format(ref=image_id)
        return recipe_to_parameters(img.recipe)

    # ------------------------------------------------------------ chat

    async def handle(self, turn: ChatTurn) -> AsyncIterator[Event]:
        """One chat turn: rewrite into specs, queue them, stream progress and images."""
        try:
            if self.agent is not None:
                async for ev in self.agent.run(self, turn):
                    yield ev
                return
            if self.rewriter is None:
                from chatcanvas.bot.rewriter import default_rewriter

                count_tokens = getattr(self.engine.backend(), "count_tokens", None)
                self.rewriter = default_rewriter(
                    self.settings, native_size=self.native_size(), count_tokens=count_tokens
                )
            last = self.memory.last(turn.conversation) if self.memory else None
            plan = await self.rewriter.plan(turn, last, self.backend_family)
            if plan.reply:
                yield Text(text=plan.reply)
            if not plan.specs:
                return
            async for ev in self.run_specs(plan.specs, turn.who, turn.where, plan.notes, prompt_in=turn.text):
                yield ev
            if self.memory:
                self.memory.remember(turn.conversation, plan.specs)
        except ChatcanvasError as exc:
            yield Refused(reason=str(exc), retry_after=getattr(exc, "retry_after", None))
        except Exception:
            log.exception("turn failed")
            yield Failed(reason=m.INTERNAL_ERROR)

    async def generate(
        self, spec: ImageSpec, who: UserRef, where: Place, prompt_in: str = ""
    ) -> AsyncIterator[Event]:
        """A spec from a form or slash-command options: no rewriting; over a limit it is refused, not bent."""
        problems = self.settings.limits.problems(spec)
        if problems:
            yield Refused(reason=" ".join(problems))
            return
        async for ev in self.run_specs([spec], who, where, [], prompt_in=prompt_in or spec.prompt):
            yield ev

    async def run_specs(
        self,
        specs: Sequence[ImageSpec],
        who: UserRef,
        where: Place,
        notes: Sequence[str] = (),
        prompt_in: str = "",
    ) -> AsyncIterator[Event]:
        """Clamp, queue and follow several specs; yields Accepted, then every job's events merged."""
        notes = list(notes)
        clamped: list[ImageSpec] = []
        for spec in specs:
            spec, why = self.settings.limits.clamp(spec)
            clamped.append(spec)
            notes += [n for n in why if n not in notes]
        if notes:
            yield Text(text=" ".join(notes))
        job_ids: list[str] = []
        prompts: list[str] = []
        try:
            for spec in clamped:
                rec = await self.engine.submit(spec, who, where, prompt_in)
                job_ids.append(rec.id)
                prompts.append(rec.spec.prompt)
        except (QuotaExceeded, SpecError) as exc:
            if not job_ids:
                yield Refused(reason=str(exc), retry_after=getattr(exc, "retry_after", None))
                return
            yield Text(text=str(exc))
        yield Accepted(
            job_ids=tuple(job_ids), position=self.engine.position(job_ids[0]), prompts=tuple(prompts)
        )
        async for ev in self.follow(job_ids):
            yield ev

    async def follow(self, job_ids: Sequence[str]) -> AsyncIterator[Event]:
        """Merge the event streams of several jobs into one, until all have ended."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        async def pump(job_id: str) -> None:
            try:
                async for ev in self.engine.follow(job_id):
                    await queue.put(ev)
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(pump(j)) for j in job_ids]
        left = len(tasks)
        try:
            while left:
                ev = await queue.get()
                if ev is None:
                    left -= 1
                    continue
                yield ev
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    # ------------------------------------------------------------ buttons

    def _source(self, image_id: str) -> Recipe:
        img = self.store.image(image_id)
        if img is None:
            raise SpecError(m.NO_SUCH_IMAGE.format(ref=image_id))
        return img.recipe

    async def _from_image(
        self, image_id: str, who: UserRef, where: Place, **changes: Any
    ) -> AsyncIterator[Event]:
        try:
            spec = spec_from_recipe(self._source(image_id), **changes)
        except ChatcanvasError as exc:
            yield Refused(reason=str(exc))
            return
        async for ev in self.run_specs([spec], who, where, prompt_in=spec.prompt):
            yield ev

    def reroll(self, image_id: str, who: UserRef, where: Place) -> AsyncIterator[Event]:
        """The same request with a new seed."""
        return self._from_image(image_id, who, where, seed=None)

    def vary(self, image_id: str, who: UserRef, where: Place, strength: float = 0.6) -> AsyncIterator[Event]:
        """Image-to-image from this image: same prompt, new seed, a fresh take on the same picture."""
        return self._from_image(
            image_id, who, where, seed=None, init_image=image_id, mask_image=None, strength=strength
        )

    def upscale(self, image_id: str, who: UserRef, where: Place, factor: int = 2) -> AsyncIterator[Event]:
        """Twice the size: the image enlarged, then refined by image-to-image at low strength."""
        try:
            r = self._source(image_id)
        except ChatcanvasError as exc:
            return _one(Refused(reason=str(exc)))
        w, h = r.width * factor, r.height * factor
        lim = self.settings.limits
        scale = min(1.0, lim.max_side / max(w, h), (lim.max_pixels / (w * h)) ** 0.5)
        w, h = max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)
        return self._from_image(
            image_id, who, where, width=w, height=h, init_image=image_id, mask_image=None, strength=0.3
        )

    async def vary_product(
        self,
        image: bytes,
        variations: Sequence[str],
        who: UserRef,
        where: Place,
        mask: bytes | None = None,
        subject: str = "",
    ) -> AsyncIterator[Event]:
        """Recolour a product photo once per variation, keeping its shape and background."""
        from chatcanvas.generation.variations import prepare_variations
        from chatcanvas.images import load_upload

        try:
            photo = load_upload(image, self.settings)
            mask_img = load_upload(mask, self.settings) if mask else None
            specs = prepare_variations(
                photo,
                list(variations),
                self.store,
                self.settings,
                mask=mask_img,
                subject=subject,
                native=self.native_size(),
            )
        except ChatcanvasError as exc:
            yield Refused(reason=str(exc))
            return
        async for ev in self.run_specs(specs, who, where, prompt_in=", ".join(variations)):
            yield ev


async def _one(ev: Event) -> AsyncIterator[Event]:
    yield ev


__all__ = ["Assistant", "spec_from_recipe"]
