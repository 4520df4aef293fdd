"""The assistant: a chat turn in, a stream of events out. Knows no platform.

It is all an adapter holds of the core: chat turns, direct specs, the result buttons, product
variations, job status and cancel, image lookup, and the results owed to a platform after a
restart. Every request passes :class:`chatcanvas.bot.policy.Policy` once, in :meth:`run_specs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chatcanvas import messages as m
from chatcanvas.bot.plan import Plan, Rewriter
from chatcanvas.bot.policy import Ask, Policy
from chatcanvas.config import Settings
from chatcanvas.errors import ChatcanvasError, Refusal, SpecError
from chatcanvas.generation.metadata import recipe_to_parameters
from chatcanvas.store import Store
from chatcanvas.types import (
    Accepted,
    ChatTurn,
    Event,
    Failed,
    GeneratedImage,
    ImageSpec,
    Place,
    Recipe,
    Refused,
    Text,
    UserRef,
    conversation_key,
)

if TYPE_CHECKING:
    from chatcanvas.bot.admin import Admin
    from chatcanvas.generation.engine import Engine
    from chatcanvas.generation.jobs import JobRecord
    from chatcanvas.provenance.verify import VerifyReport

log = logging.getLogger(__name__)


class Memory(Protocol):
    def last(self, conversation: str) -> list[ImageSpec] | None: ...

    def remember(self, conversation: str, specs: Sequence[ImageSpec]) -> None: ...


class MetricsExport(Protocol):
    def exposition(self) -> tuple[bytes, str]: ...


class AgentRunner(Protocol):
    # the runner types the assistant by the part it uses (chatcanvas.bot.agent.TurnHost)
    def run(self, assistant: Any, turn: ChatTurn) -> AsyncIterator[Event]: ...


def spec_from_recipe(r: Recipe, **changes: Any) -> ImageSpec:
    """The request that makes ``r`` again (its first-pass size, sampler, schedule, hires fix...)."""
    from chatcanvas.generation.metadata import spec_fields_from_recipe

    spec = ImageSpec(**spec_fields_from_recipe(r))
    return spec.model_copy(update=changes) if changes else spec


def refused(exc: Refusal | ChatcanvasError) -> Refused:
    """The event for a refusal; its text names the rule that refused."""
    rule = exc.rule if isinstance(exc, Refusal) else "limits" if isinstance(exc, SpecError) else "input"
    reason = m.REFUSAL_RULE.format(reason=str(exc), rule=rule)
    return Refused(reason=reason, rule=rule, retry_after=getattr(exc, "retry_after", None))


class Assistant:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: Store,
        rewriter: Rewriter | None = None,
        memory: Memory | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.rewriter = rewriter
        self.memory = memory
        self.policy = policy or Policy(settings, store, engine)
        self.policy.default_model = lambda name: self.engine.backend(name).model_name
        self.agent: AgentRunner | None = None  # an LLM agent runner, when one is configured
        self.on_refused: list[Callable[[Refused, UserRef, Place], None]] = []  # e.g. metrics
        self.metrics: MetricsExport | None = None  # Prometheus metrics, once chatcanvas.ops.install ran
        self._admin: Admin | None = None

    # ------------------------------------------------------------ info

    @property
    def backend_family(self) -> str:
        return "dalle" if self.settings.backend == "openai" else "sd"

    def native_size(self) -> int:
        return _native_side(self.engine.backend())

    @property
    def max_variations(self) -> int:
        from chatcanvas.generation.variations import MAX_VARIATIONS

        return MAX_VARIATIONS

    def image(self, image_id: str) -> GeneratedImage | None:
        return self.store.image(image_id)

    def image_bytes_for(self, image_id: str, who: UserRef, where: Place) -> bytes:
        """An image's bytes for a request (a tool's ``image_id``): a store id the caller may see, else Refusal."""
        from chatcanvas.store.db import is_image_id

        if not is_image_id(image_id):
            raise Refusal(m.IMAGE_REF_NOT_AN_ID.format(field="image_id", ref=str(image_id)[:60]), rule="image_ref")
        if not self.store.image_visible_to(image_id, who, where):
            raise Refusal(m.NOT_YOUR_IMAGE.format(ref=image_id), rule="image_ref")
        return self.store.image_bytes(image_id)

    def image_path(self, image_id: str) -> Path | None:
        path = self.store.image_path(image_id)
        return path if path is not None and path.is_file() else None

    def recipe(self, image_id: str) -> str:
        img = self.store.image(image_id)
        if img is None:
            return m.NO_SUCH_IMAGE.format(ref=image_id)
        return recipe_to_parameters(img.recipe)

    # ------------------------------------------------------------ jobs

    def job(self, job_id: str) -> JobRecord | None:
        return self.engine.job(job_id)

    def position(self, job_id: str) -> int:
        return self.engine.position(job_id)

    async def cancel(self, job_id: str, who: UserRef | None) -> bool:
        """Cancel a job; ``who`` must own it (None: an operator). Raises Refusal (rule ``owner``)."""
        return await self.engine.cancel(job_id, who)

    def owed(self, platform: str) -> list[JobRecord]:
        """Jobs of this platform whose result was never shown: done, failed, running or requeued."""
        return self.engine.owed(platform)

    def mark_delivered(self, job_id: str) -> None:
        self.engine.table.mark_delivered(job_id)

    # ------------------------------------------------------------ operations

    def ready(self) -> tuple[bool, str]:
        """Whether this process can take work: the configured backend has loaded its model and the store
        takes writes; else why not (``/readyz``)."""
        name = self.settings.backend
        if not self.engine.ready(name):
            why = m.NOT_READY_LOADING if self.engine.warming(name) else m.NOT_READY_NOT_LOADED
            return False, why.format(backend=name)
        from chatcanvas.bot.controls import Controls

        return Controls(self.store).writable()

    @property
    def admin(self) -> Admin:
        """The operator's commands (queue, cancel, pause, ban, usage) for admin entrances to call."""
        if self._admin is None:
            from chatcanvas.bot.admin import Admin

            self._admin = Admin(self.store, self.settings, self.engine)
        return self._admin

    def begin_warm_up(self) -> None:
        """Start loading the configured backend's model in a worker thread (plugins call this at load)."""
        self.engine.begin_warm_up()

    # ------------------------------------------------------------ policy

    def precheck(self, who: UserRef, where: Place) -> Refused | None:
        """Who/where rules only (no side effects): adapters refuse early, ephemerally, with this."""
        exc = self.policy.precheck(who, where)
        return self._refused(exc, who, where) if exc is not None else None

    def refusal(self, exc: ChatcanvasError, who: UserRef, where: Place, text: str = "") -> Refused:
        """The Refused event for a refusal raised outside a request's stream (a tool's argument)."""
        return self._refused(exc, who, where, text)

    def _refused(self, exc: ChatcanvasError, who: UserRef, where: Place, text: str = "") -> Refused:
        """The Refused event for ``exc``, recorded in the audit log and told to the refusal hooks."""
        ev = refused(exc)
        try:
            from chatcanvas.safety.audit import record_refusal

            record_refusal(
                self.store, who, where, ev.rule, text, self.settings, reason=ev.reason, retry_after=ev.retry_after
            )
        except Exception:  # the audit is bookkeeping: the user still gets the refusal
            log.warning("could not record a refusal", exc_info=True)
        for hook in self.on_refused:
            try:
                hook(ev, who, where)
            except Exception:
                log.warning("refusal hook failed", exc_info=True)
        return ev

    # ------------------------------------------------------------ chat

    def _rewriter(self) -> Rewriter:
        if self.rewriter is None:
            from chatcanvas.bot.rewriter import default_rewriter

            count_tokens = getattr(self.engine.backend(), "count_tokens", None)
            self.rewriter = default_rewriter(
                self.settings, native_size=self.native_size(), count_tokens=count_tokens
            )
        return self.rewriter

    async def plan(self, turn: ChatTurn) -> Plan:
        """What a turn would make, without making it (``chatcanvas ask --dry-run``)."""
        last = self.memory.last(turn.conversation) if self.memory else None
        return await self._rewriter().plan(turn, last, self.backend_family)

    async def handle(self, turn: ChatTurn) -> AsyncIterator[Event]:
        """One chat turn: rewrite into specs, queue them, stream progress and images."""
        try:
            early = self.precheck(turn.who, turn.where)
            if early is not None:
                yield early
                return
            if self.agent is not None:
                async for ev in self.agent.run(self, turn):
                    yield ev
                return
            shared = _photo_for_colourways(turn)
            if shared is not None:  # "this sneaker in navy and forest green" beside a photo: recolour it
                photo, mask = shared
                async for ev in self.vary_product(photo, turn.text, turn.who, turn.where, mask=mask):
                    yield ev
                return
            again = await self._colourway_follow_up(turn)
            if again:  # "now in coral" after colourways: the same photo and mask, recoloured again
                async for ev in self.run_specs(again, turn.who, turn.where, prompt_in=turn.text):
                    yield ev
                return
            plan = await self.plan(turn)
            if plan.reply:
                yield Text(text=plan.reply)
            if not plan.specs:
                return
            async for ev in self.run_specs(plan.specs, turn.who, turn.where, plan.notes, prompt_in=turn.text):
                yield ev
        except ChatcanvasError as exc:
            yield self._refused(exc, turn.who, turn.where, turn.text)
        except Exception:
            log.exception("turn failed")
            yield Failed(reason=m.INTERNAL_ERROR)

    async def _colourway_follow_up(self, turn: ChatTurn) -> list[ImageSpec] | None:
        from chatcanvas.bot.colourway_follow_up import follow_up_colours, follow_up_specs
        from chatcanvas.store.db import read_image_ref

        last = self.memory.last(turn.conversation) if self.memory else None
        colours = follow_up_colours(turn.text, last)
        if not colours or not last or not last[0].init_image:
            return None  # the photo is read only for a follow-up that asks colours
        try:
            photo = await asyncio.to_thread(read_image_ref, self.settings.images_dir, last[0].init_image)
        except ChatcanvasError:  # the photo is gone (retention): the message is read as a new request
            return None
        return follow_up_specs(colours, last, self.settings, photo)

    async def generate(
        self, spec: ImageSpec, who: UserRef, where: Place, prompt_in: str = ""
    ) -> AsyncIterator[Event]:
        """A spec from a form or slash-command options: no rewriting (but Midjourney's ``--ar 16:9 --no
        text`` at the end of the prompt are applied); over a limit it is refused, not bent."""
        from chatcanvas.bot.midjourney_params import apply_params, split_params

        prompt_in = prompt_in or spec.prompt
        notes: list[str] = []
        params = split_params(spec.prompt)
        if params.any:
            try:  # the model's native side, for "--ar": its backend made off the event loop
                be = await self.engine.ensure_backend(self.engine.backend_name(spec))
            except ChatcanvasError as exc:
                yield self._refused(exc, who, where, prompt_in)
                return
            spec, notes = apply_params(spec, params, self.settings.limits, _native_side(be))
        problems = self.settings.limits.problems(spec)
        if problems:
            yield self._refused(SpecError(" ".join(problems)), who, where, prompt_in)
            return
        async for ev in self.run_specs([spec], who, where, notes, prompt_in=prompt_in):
            yield ev

    async def run_specs(
        self,
        specs: Sequence[ImageSpec],
        who: UserRef,
        where: Place,
        notes: Sequence[str] = (),
        prompt_in: str = "",
    ) -> AsyncIterator[Event]:
        """Clamp, admit (the policy, once for all), queue and follow several specs.

        Yields Accepted, then every job's events merged. A refusal is one Refused event naming its rule.
        """
        notes = list(notes)
        clamped: list[ImageSpec] = []
        for spec in specs:
            spec, why = self.settings.limits.clamp(spec)
            clamped.append(spec)
            notes += [n for n in why if n not in notes]
        try:
            texts = [t for t in (prompt_in, *(s.prompt for s in clamped)) if t]
            await self.policy.screen(Ask(who=who, where=where, specs=clamped, texts=texts))  # before any backend
            for name in dict.fromkeys(self.engine.backend_name(s) for s in clamped):
                await self.engine.ensure_backend(name)  # made in a worker thread, never on the event loop
            prepared = [self.engine.prepare(s) for s in clamped]
            self.policy.admit(Ask(who=who, where=where, specs=prepared, texts=texts))
        except ChatcanvasError as exc:
            yield self._refused(exc, who, where, prompt_in)
            return
        if notes:
            yield Text(text=" ".join(notes))
        job_ids: list[str] = []
        prompts: list[str] = []
        try:
            for spec in prepared:
                rec = await self.engine.submit(spec, who, where, prompt_in)
                job_ids.append(rec.id)
                prompts.append(rec.spec.prompt)
        except ChatcanvasError as exc:
            if not job_ids:
                yield self._refused(exc, who, where, prompt_in)
                return
            yield Text(text=str(exc))
        if self.memory is not None:
            self.memory.remember(conversation_key(who, where), clamped)
        if job_ids and any(self.engine.warming(self.engine.backend_name(s)) for s in prepared):  # still loading
            ahead = self.engine.position(job_ids[0])
            yield Text(text=m.WARMING_UP_BEHIND.format(n=ahead) if ahead else m.WARMING_UP)
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
        from chatcanvas.store.db import is_image_id

        if not is_image_id(image_id):  # a path or a URL from a button or a tool call: never looked up
            raise Refusal(m.IMAGE_REF_NOT_AN_ID.format(field="image_id", ref=str(image_id)[:60]), rule="image_ref")
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
            yield self._refused(exc, who, where)
            return
        async for ev in self.run_specs([spec], who, where, prompt_in=spec.prompt):
            yield ev

    async def reroll(self, image_id: str, who: UserRef, where: Place) -> AsyncIterator[Event]:
        """The same request with a new seed, as many images as it made."""
        rec = self.engine.job_for_image(image_id)
        if rec is None:
            async for ev in self._from_image(image_id, who, where, seed=None):
                yield ev
            return
        async for ev in self.run_specs([rec.spec.model_copy(update={"seed": None})], who, where, prompt_in=rec.prompt_in):
            yield ev

    def vary(self, image_id: str, who: UserRef, where: Place, strength: float = 0.6) -> AsyncIterator[Event]:
        """Image-to-image from this image: same prompt, new seed, a fresh take on the same picture."""
        return self._from_image(
            image_id, who, where, seed=None, init_image=image_id, mask_image=None, strength=strength
        )

    async def upscale(self, image_id: str, who: UserRef, where: Place, factor: int = 2) -> AsyncIterator[Event]:
        """Enlarge by ``factor`` (2 or 4): an ESRGAN-family model when configured, else Lanczos, then a
        low-denoise tiled refinement; the limit is on output pixels (``CHATCANVAS_MAX_UPSCALE_PIXELS``)."""
        from chatcanvas.generation.upscale import upscale_spec

        try:
            r = self._source(image_id)
            spec = upscale_spec(image_id, (r.width, r.height), factor, self.settings, recipe=r)
        except ChatcanvasError as exc:
            yield self._refused(exc, who, where)
            return
        async for ev in self.run_specs([spec.model_copy(update={"seed": None})], who, where, prompt_in=spec.prompt):
            yield ev

    async def outpaint(self, image_id: str, action: str, who: UserRef, where: Place) -> AsyncIterator[Event]:
        """Zoom out (``zoom_out_1.5``, ``zoom_out_2``), pan (``pan_left`` / ``_right`` / ``_up`` / ``_down``)
        or make a 3:1 banner (``banner``): new canvas around the image, the original pixels kept."""
        from chatcanvas.generation.outpaint import button_spec

        try:
            spec = button_spec(action, image_id, self._source(image_id), self.settings)
        except ChatcanvasError as exc:
            yield self._refused(exc, who, where)
            return
        async for ev in self.run_specs([spec], who, where, prompt_in=spec.prompt):
            yield ev

    @property
    def outpaint_buttons(self) -> dict[str, str]:
        """Outpainting actions and their labels, for the adapters' buttons."""
        from chatcanvas.generation.outpaint import BUTTONS

        return dict(BUTTONS)

    def verify(self, data: bytes) -> VerifyReport:
        """Where an image came from: its C2PA manifest, watermark and recipe (``chatcanvas verify``)."""
        from chatcanvas.provenance.verify import verify_image

        return verify_image(data, self.settings)

    def check_image(self, data: bytes, name: str = "image") -> str:
        """The verify report of an image as text, for the chat ("Check image")."""
        from chatcanvas.provenance.render import text

        return text(name, self.verify(data))

    def samplers(self) -> list[str]:
        """Sampler names as A1111 writes them, for autocomplete."""
        from chatcanvas.generation.samplers import SAMPLERS

        return list(SAMPLERS)

    def loras(self) -> list[str]:
        """LoRA names in ``CHATCANVAS_LORA_DIR``, for autocomplete."""
        from chatcanvas.generation.lora import available_loras

        return sorted(available_loras(self.settings))

    async def vary_product(
        self,
        image: bytes,
        variations: str | Sequence[str],
        who: UserRef,
        where: Place,
        mask: bytes | None = None,
        subject: str = "",
    ) -> AsyncIterator[Event]:
        """Recolour a product photo once per variation, keeping its shape and background.

        ``variations``: a list, or the text a user typed ("navy, forest green and #e07b39").
        """
        from chatcanvas.generation.variations import prepare_variations
        from chatcanvas.images import load_upload

        try:
            early = self.precheck(who, where)
            if early is not None:
                yield early
                return
            if isinstance(variations, str):  # typed: "this sneaker in navy, …" names the sneaker too
                from chatcanvas.bot.variation_list import parse_variation_request
                from chatcanvas.generation.variations import clean_variations

                typed = parse_variation_request(variations)
                wanted, subject = clean_variations(typed.variations), subject or typed.subject
            else:
                wanted = split_variations(variations)
            photo = load_upload(image, self.settings)
            mask_img = load_upload(mask, self.settings) if mask else None
            specs = prepare_variations(
                photo,
                wanted,
                self.store,
                self.settings,
                mask=mask_img,
                subject=subject,
                native=self.native_size(),
                owner=who,
                place=where,
            )
        except ChatcanvasError as exc:
            yield self._refused(exc, who, where, variations if isinstance(variations, str) else ", ".join(variations))
            return
        async for ev in self.run_specs(specs, who, where, prompt_in=", ".join(wanted)):
            yield ev


def _native_side(backend: object) -> int:
    """The side of a square image for the backend's model (512 for SD 1.5, 1024 for SDXL and DALL-E)."""
    size = getattr(backend, "native_size", None)
    return int(size()) if callable(size) else 1024


def _photo_for_colourways(turn: ChatTurn) -> tuple[bytes, bytes | None] | None:
    """The product photo (and its mask, the image named "mask") of a turn that asks for colourways."""
    from chatcanvas.bot.variation_list import pick_photo_and_mask, reads_as_colourways

    images = [a for a in turn.attachments if a.content_type.startswith("image/")]
    picked = pick_photo_and_mask(images, lambda a: (a.filename,))
    if picked is None or not reads_as_colourways(turn.text):
        return None
    photo, mask = picked
    return photo.data, (mask.data if mask else None)


def split_variations(variations: str | Sequence[str]) -> list[str]:
    """The variations of a request: a list as given, or what a user typed ("this sneaker in navy, forest
    green and #e07b39", "make it sage green please") split on commas, "and", slashes."""
    from chatcanvas.generation.variations import clean_variations

    if isinstance(variations, str):
        from chatcanvas.bot.variation_list import parse_variation_list

        return clean_variations(parse_variation_list(variations))
    return clean_variations(list(variations))


__all__ = ["Assistant", "refused", "spec_from_recipe", "split_variations"]
