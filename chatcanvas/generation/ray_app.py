"""The image workers as a Ray Serve application: each replica loads the model once and runs the
same :meth:`DiffusersBackend.generate` the local backend runs.

Requests are lists of specs the engine already batched; ``@serve.batch`` gathers the requests that
reach one replica together (``CHATCANVAS_RAY_MAX_BATCH``, ``CHATCANVAS_RAY_BATCH_WAIT_S``) and runs the
compatible ones (equal :meth:`DiffusersBackend.batch_key`) as one pipeline call. Each request is a
stream of small dicts: ``started`` (which replica), ``step`` (per denoising step), then ``done`` with
the images or ``error``.

Replicas make the PNG without provenance (no watermark, no Content Credentials): the bot marks and
signs them with its own credentials, exactly as the local backend would (see ``ray_backend``).

This module imports Ray: only ``chatcanvas workers``, the replicas and KubeRay's ``import_path``
(``chatcanvas.generation.ray_app:app_builder``) load it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.errors import ChatcanvasError, SpecError
from chatcanvas.types import ImageSpec

log = logging.getLogger(__name__)

DEPLOYMENT = "ImageWorker"

# The settings a replica makes images with (the rest, tokens and web options, stay with the bot).
REPLICA_FIELDS = (
    "model",
    "device",
    "dtype",
    "default_steps",
    "default_size",
    "default_guidance",
    "lora_dir",
    "upscaler",
    "upscale_denoise",
    "default_sampler",
    "default_schedule",
    "single_file_config",
    "attention_slicing",
    "vae_tiling",
    "cpu_offload",
)


class WorkerOptions(BaseModel):
    """What ``chatcanvas workers`` deploys: the replicas' settings, how many, and how they batch."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(default_factory=dict)  # REPLICA_FIELDS, as JSON
    replicas: int | None = Field(None, ge=1)  # a fixed count; None: autoscale from min to max
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    gpus_per_replica: float = Field(0.0, ge=0)
    cpus_per_replica: float = Field(1.0, ge=0)
    max_batch: int = Field(4, ge=1, le=64)
    batch_wait_s: float = Field(0.02, ge=0, le=10)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        replicas: int | None = None,
        gpus_per_replica: float | None = None,
        max_batch: int | None = None,
    ) -> WorkerOptions:
        return cls(
            settings=settings.model_dump(mode="json", include=set(REPLICA_FIELDS), exclude_none=True),
            replicas=replicas,
            min_replicas=settings.ray_min_replicas,
            max_replicas=max(settings.ray_max_replicas, settings.ray_min_replicas, 1),
            gpus_per_replica=settings.ray_gpus_per_replica if gpus_per_replica is None else gpus_per_replica,
            cpus_per_replica=1.0,
            max_batch=max_batch or settings.ray_max_batch,
            batch_wait_s=settings.ray_batch_wait_s,
        )

    @property
    def initial_replicas(self) -> int:
        return self.replicas if self.replicas is not None else max(1, self.min_replicas)


def _split(images: list[Any], specs: list[ImageSpec]) -> list[list[Any]]:
    out, i = [], 0
    for spec in specs:
        out.append(images[i : i + spec.count])
        i += spec.count
    return out


class ImageWorker:
    """One replica: one loaded pipeline, one generation at a time."""

    def __init__(self, options: dict[str, Any]) -> None:
        from chatcanvas import provenance
        from chatcanvas.generation.diffusers_backend import DiffusersBackend

        self.options = WorkerOptions.model_validate(options)
        self._tmp = tempfile.mkdtemp(prefix="chatcanvas-replica-")
        # provenance off here: the bot marks and signs what it receives (ray_backend.py)
        self.settings = Settings(**self.options.settings, data_dir=Path(self._tmp), provenance=False)
        provenance.configure(self.settings)
        self.backend = DiffusersBackend(self.settings)
        self.backend.load()  # once per replica
        batched: Any = self._batched  # type: ignore[misc]  # the size and the wait come from the options, per replica
        batched.set_max_batch_size(self.options.max_batch)
        batched.set_batch_wait_timeout_s(self.options.batch_wait_s)
        try:
            self.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # outside Serve (a unit test)
            self.replica = f"local-{os.getpid()}"
        self.where = {"replica": self.replica, "pid": os.getpid(), "node": socket.gethostname()}
        log.info("replica %s ready with %s on %s", self.replica, self.backend.model_name, self.backend.device())

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_tmp", ""), ignore_errors=True)

    def info(self) -> dict[str, Any]:
        """What the bot needs to fill a spec's defaults without the model: name, native size, defaults."""
        return {
            "model_name": self.backend.model_name,
            "native_size": self.backend.native_size(),
            "defaults": self.backend.defaults,
            "device": self.backend.device(),
            **self.where,
        }

    async def generate(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """One request: ``{"specs": [...], "images": {id: png}}``; a stream of started/step/done/error."""
        batched: Any = self._batched  # type: ignore[misc]
        async for messages in batched(request):
            for msg in messages:
                yield msg

    def _stage(self, images: dict[str, bytes]) -> None:
        """Put the request's input images (init, mask) where the backend reads them by id."""
        from chatcanvas.store.db import image_file

        for ref, data in images.items():
            path = image_file(self.settings.images_dir, ref)
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    def _groups(self, requests: list[list[ImageSpec]]) -> list[list[int]]:
        """Indexes of requests that can share one pipeline call (equal batch keys), in arrival order."""
        keys: list[object] = []
        groups: list[list[int]] = []
        sizes: list[int] = []
        for i, specs in enumerate(requests):
            key = self.backend.batch_key(specs[0])
            for g, gkey in enumerate(keys):
                if gkey == key and sizes[g] + len(specs) <= self.backend.max_batch:
                    groups[g].append(i)
                    sizes[g] += len(specs)
                    break
            else:
                keys.append(key)
                groups.append([i])
                sizes.append(len(specs))
        return groups

    async def _run_groups(self, requests: list[list[ImageSpec]], q: asyncio.Queue[Any]) -> None:
        from chatcanvas.generation.base import StepInfo

        loop = asyncio.get_running_loop()
        for group in self._groups(requests):
            specs = [s for i in group for s in requests[i]]
            for i in group:  # "batch": how many specs share this pipeline call
                q.put_nowait((i, {"kind": "started", "batch": len(specs), **self.where}))

            def on_step(info: StepInfo, group: list[int] = group) -> None:  # the backend's worker thread
                msg = {"kind": "step", "step": info.step, "total": info.total, "preview": info.preview_png}
                for i in group:
                    loop.call_soon_threadsafe(q.put_nowait, (i, msg))

            try:
                wrong = next((s.model for s in specs if s.model and s.model != self.backend.model_name), None)
                if wrong is not None:
                    raise SpecError(m.RAY_MODEL_MISMATCH.format(asked=wrong, serving=self.backend.model_name))
                images = await self.backend.generate(specs, on_step)
            except ChatcanvasError as exc:
                for i in group:
                    q.put_nowait((i, {"kind": "error", "type": type(exc).__name__, "message": str(exc)}))
                continue
            except Exception as exc:
                log.exception("generation failed on replica %s", self.replica)
                for i in group:
                    q.put_nowait((i, {"kind": "error", "type": type(exc).__name__, "message": ""}))
                continue
            mine = _split(images, specs)
            j = 0
            for i in group:
                out = [
                    {"png": img.png, "recipe": img.recipe.model_dump(mode="json"), "seconds": img.seconds}
                    for chunk in mine[j : j + len(requests[i])]
                    for img in chunk
                ]
                j += len(requests[i])
                q.put_nowait((i, {"kind": "done", "images": out}))
        q.put_nowait(None)

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.02)  # type: ignore[arg-type, misc]
    async def _batched(self, batch: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:  # type: ignore[misc]
        """The requests ``@serve.batch`` gathered: one list per yield, a slot per request."""
        n = len(batch)
        requests: list[list[ImageSpec]] = []
        for req in batch:
            self._stage(req.get("images") or {})
            requests.append([ImageSpec.model_validate(s) for s in req["specs"]])
        q: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.create_task(self._run_groups(requests, q))
        finished: set[int] = set()
        try:
            while True:
                items = [await q.get()]
                while not q.empty():
                    items.append(q.get_nowait())
                pending: list[list[dict[str, Any]]] = [[] for _ in range(n)]
                for item in items:
                    if item is not None:
                        pending[item[0]].append(item[1])
                # each request gets its new messages; one whose last went out ends (StopIteration)
                yield [StopIteration if i in finished else pending[i] for i in range(n)]
                finished.update(i for i in range(n) if any(msg["kind"] in ("done", "error") for msg in pending[i]))
                if None in items:
                    return
        finally:
            if not task.done():
                task.cancel()


def application(options: WorkerOptions) -> Any:
    """The Serve application ``chatcanvas workers`` runs (and a ``RayService`` can name)."""
    deployment_options: dict[str, Any] = {
        "name": DEPLOYMENT,
        "ray_actor_options": {"num_cpus": options.cpus_per_replica, "num_gpus": options.gpus_per_replica},
        # room for a batch to form while one runs
        "max_ongoing_requests": max(8, 2 * options.max_batch),
        # a stopped replica gives up its work quickly: the bot sends it to another one
        "graceful_shutdown_timeout_s": 5,
        "graceful_shutdown_wait_loop_s": 1,
        "health_check_period_s": 5,
    }
    if options.replicas is not None or options.min_replicas == options.max_replicas:
        deployment_options["num_replicas"] = options.initial_replicas
    else:
        deployment_options["autoscaling_config"] = {
            "min_replicas": options.min_replicas,
            "max_replicas": options.max_replicas,
            "initial_replicas": options.initial_replicas,
            "target_ongoing_requests": max(1, options.max_batch),
        }
    deployment: Any = serve.deployment(ImageWorker)
    return deployment.options(**deployment_options).bind(options.model_dump(mode="json"))


def app_builder(args: dict[str, str]) -> Any:
    """For a ``serveConfigV2`` ``import_path``: the replicas' settings come from their CHATCANVAS_* environment
    (``runtime_env.env_vars``); ``args`` may set ``replicas``, ``gpus_per_replica`` and ``max_batch``."""
    from chatcanvas.config import load_settings

    settings = load_settings()
    replicas = int(args["replicas"]) if args.get("replicas") else None
    gpus = float(args["gpus_per_replica"]) if args.get("gpus_per_replica") else None
    batch = int(args["max_batch"]) if args.get("max_batch") else None
    return application(WorkerOptions.from_settings(settings, replicas, gpus, batch))
