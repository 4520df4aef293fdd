"""The ray backend: the engine's batches made by the diffusers backend on Ray Serve replicas.

``chatcanvas workers`` runs the application (``ray_app.py``); this backend sends it each batch the
engine forms, through the process's :class:`~chatcanvas.generation.ray_link.Link`, and turns the
stream that comes back into step callbacks and images. The engine's queue, fairness, persistence,
policy and the adapters do not change.

- Specs are resolved here without a model: the model folder's config is read (as the local
  backend does before it loads anything); a model the bot cannot read (a hub id, a path on the GPU
  box) is described by the deployment (``info``), asked once.
- The images are those of the local backend for the same seed and model: the replica runs
  ``DiffusersBackend.generate`` without provenance, and the bot adds the watermark and signs the
  Content Credentials with its own credentials, as the local backend does in process.
- A replica that dies mid-job: the batch is sent again (Serve routes it to another replica and
  restarts the dead one), at most ``CHATCANVAS_MAX_ATTEMPTS`` tries in all.
- Workers down (cluster unreachable, application not deployed): the batch waits and is tried again
  every few seconds for up to ``CHATCANVAS_RAY_DOWN_WAIT_S``, then fails with a message saying the
  image workers are down. Cancelling, the job timeout and a shutdown still apply while it waits.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import Counter
from collections.abc import Hashable
from pathlib import Path
from typing import Any, ClassVar

from chatcanvas import errors
from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.errors import BackendError, ChatcanvasError, ConfigError
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.ray_link import Link, Message, release_link, shared_link
from chatcanvas.types import GeneratedImage, ImageSpec, Recipe

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
INFO_TIMEOUT_S = 2.0  # resolve asks the deployment at most this long (only for a model the bot cannot read)
DOWN_POLL_S = 2.0  # how often a waiting batch tries again


class WorkersDown(BackendError):
    """The Ray image workers cannot be reached (cluster down, application not deployed)."""

    ran = False


class _Unavailable(Exception):
    pass


class _Lost(Exception):
    pass


def _error_class(name: str) -> type[ChatcanvasError]:
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, ChatcanvasError):
        return cls
    return BackendError


class RayBackend(Backend):
    name: ClassVar[str] = "ray"
    supports_img2img: ClassVar[bool] = True
    supports_inpaint: ClassVar[bool] = True
    max_batch: ClassVar[int] = DiffusersBackend.max_batch

    def __init__(self, settings: Settings) -> None:
        import importlib.util

        if importlib.util.find_spec("ray") is None:  # the link process would only say "down", forever
            raise ConfigError(m.RAY_NOT_INSTALLED)
        self.settings = settings
        self.address = settings.ray_address or "auto"
        self.app = settings.ray_app
        # the bot's own reading of the model: its folder's config, no weights (nothing is loaded)
        self.view = DiffusersBackend(settings)
        self._readable = Path(self.view.ref).expanduser().exists()
        self._info: dict[str, Any] | None = None
        self._info_tried = 0.0
        self._link: Link | None = None
        self._closed = False
        self.served: Counter[str] = Counter()  # images made per replica id
        self.batch_sizes: Counter[int] = Counter()  # specs per pipeline call on the replicas -> calls seen
        self.running: dict[int, Message] = {}  # request id -> the replica it runs on (its "started" message)
        self._down_logged = False

    # ------------------------------------------------------------ link

    @property
    def link(self) -> Link:
        if self._link is None:
            log_file = self.settings.data_dir / "logs" / "ray_link.log"
            self._link = shared_link(self.address, self.app, log_file)
        return self._link

    async def warm_up(self) -> None:
        """Join the cluster now (in the link's child) and learn the deployment's model, if it is up."""
        try:
            if await self.link.aconnect(CONNECT_TIMEOUT_S) and not self._readable:
                await self._fetch_info()
        except Exception:  # workers down: the first job waits for them
            log.debug("ray warm-up", exc_info=True)

    async def aclose(self) -> None:
        if not self._closed and self._link is not None:
            self._closed = True
            link, self._link = self._link, None
            await asyncio.to_thread(release_link, link)
        await self.view.aclose()

    # ------------------------------------------------------------ model and specs

    def _model_info(self) -> dict[str, Any] | None:
        """The deployment's description of its model, for a model the bot cannot read (asked once)."""
        if self._readable or self._info is not None:
            return self._info
        if time.monotonic() - self._info_tried < 30:
            return None
        self._info_tried = time.monotonic()
        if self.link.state != "connected":
            return None
        import threading

        got: list[Message] = []
        done = threading.Event()

        def sink(msg: Message) -> None:
            got.append(msg)
            done.set()

        rid = self.link.submit("info", None, sink)
        if done.wait(INFO_TIMEOUT_S) and got and got[0].get("kind") == "info":
            self._set_info(got[0]["info"])
        else:
            self.link.cancel(rid)
        return self._info

    async def _fetch_info(self) -> None:
        msg = await self._call("info", None, None, [])
        if msg.get("kind") == "info":
            self._set_info(msg["info"])

    def _set_info(self, info: dict[str, Any]) -> None:
        self._info = info
        self.view.defaults = dict(info.get("defaults") or {})
        self.view._native = int(info.get("native_size") or 0) or None  # what resolve sizes from

    @property
    def model_name(self) -> str:
        info = self._model_info()
        return str(info["model_name"]) if info else self.view.model_name

    def native_size(self) -> int:
        self._model_info()
        return self.view.native_size()

    def count_tokens(self, text: str) -> int | None:
        return self.view.count_tokens(text) if self._readable else None

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        self._model_info()
        spec = self.view.resolve(spec)
        return spec.model_copy(update={"backend": self.name, "model": self.model_name})

    def batch_key(self, spec: ImageSpec) -> Hashable:
        return self.view.batch_key(spec)

    # ------------------------------------------------------------ generation

    def _inputs(self, specs: list[ImageSpec]) -> dict[str, bytes]:
        """The stored images the specs start from (init image, mask), sent along by id."""
        from chatcanvas.store.db import read_image_ref

        refs = {r for s in specs for r in (s.init_image, s.mask_image) if r}
        return {r: read_image_ref(self.settings.images_dir, r) for r in refs}

    def _down_wait(self) -> float:
        return min(self.settings.ray_down_wait_s, self.settings.job_timeout_s / 2)

    async def generate(self, specs: list[ImageSpec], on_step: StepCallback | None = None) -> list[GeneratedImage]:
        request = {
            "specs": [s.model_dump(mode="json") for s in specs],
            "images": await asyncio.to_thread(self._inputs, specs),
        }
        total = int(specs[0].steps or 0)
        waited_since: float | None = None
        lost = 0
        while True:
            try:
                done = await self._call("generate", request, on_step, specs)
                break
            except _Unavailable as exc:
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                    if not self._down_logged:
                        self._down_logged = True
                        log.warning(
                            m.RAY_WORKERS_DOWN_LOG.format(
                                address=self.address, app=self.app, detail=exc, wait=self._down_wait()
                            )
                        )
                if now - waited_since >= self._down_wait():
                    raise WorkersDown(m.RAY_WORKERS_DOWN) from None
                await asyncio.sleep(DOWN_POLL_S)
                if on_step is not None:  # lets the engine cancel, time out or requeue the waiting jobs
                    left = max(0.0, self._down_wait() - (time.monotonic() - waited_since))
                    on_step(StepInfo(step=0, total=total, note=m.RAY_WAITING.format(left=left)))
            except _Lost as exc:
                lost += 1
                log.warning("a Ray replica was lost mid-batch (%s); try %d of %d", exc, lost + 1, self.settings.max_attempts)
                if lost >= self.settings.max_attempts:
                    raise BackendError(m.RAY_REPLICA_LOST.format(n=lost)) from None
        if self._down_logged:
            self._down_logged = False
            log.warning(m.RAY_WORKERS_BACK.format(address=self.address, app=self.app))
        return await asyncio.to_thread(self._finish, done["images"])

    async def _call(
        self, op: str, request: Message | None, on_step: StepCallback | None, specs: list[ImageSpec]
    ) -> Message:
        """One request through the link: its step messages to ``on_step``, its last message returned."""
        link = self.link
        if not await link.aconnect(CONNECT_TIMEOUT_S):
            raise _Unavailable(link.detail or "not connected")
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Message] = asyncio.Queue()

        def sink(msg: Message) -> None:  # the link's reader thread
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, msg)
            except RuntimeError:  # the loop is gone
                pass

        rid = link.submit(op, request, sink)
        finished = False
        try:
            while True:
                msg = await inbox.get()
                kind = msg.get("kind")
                if kind == "started":
                    self.running[rid] = msg
                    self.batch_sizes[int(msg.get("batch", 1))] += 1
                elif kind == "step":
                    if on_step is not None:
                        on_step(StepInfo(step=msg["step"], total=msg["total"], preview_png=msg.get("preview")))
                elif kind in ("done", "info"):
                    finished = True
                    if kind == "done":
                        where = self.running.get(rid)
                        if where is not None:
                            self.served[str(where["replica"])] += sum(s.count for s in specs)
                    return msg
                elif kind == "error":
                    finished = True
                    if msg.get("error") == "unavailable":
                        raise _Unavailable(msg.get("message") or "unavailable")
                    if msg.get("error") == "lost":
                        raise _Lost(msg.get("message") or "replica lost")
                    text = msg.get("message") or m.JOB_FAILED.format(detail=msg.get("type", "error"))
                    raise _error_class(str(msg.get("type", "")))(text)
        finally:
            self.running.pop(rid, None)
            if not finished:  # cancelled, stopped or timed out: the workers need not go on
                link.cancel(rid)

    def _finish(self, raw: list[Message]) -> list[GeneratedImage]:
        """The replica's images marked and signed here, exactly as the local backend writes them."""
        from PIL import Image

        from chatcanvas.generation.metadata import png_with_recipe

        out = []
        for item in raw:
            recipe = Recipe.model_validate(item["recipe"])
            with Image.open(io.BytesIO(item["png"])) as im:
                im.load()
                png = png_with_recipe(im.convert("RGB"), recipe)
            out.append(GeneratedImage(png=png, recipe=recipe, seconds=float(item.get("seconds", 0.0))))
        return out
