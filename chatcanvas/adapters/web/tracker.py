"""API jobs: one request (a text, a spec, a set of variations) followed through the assistant.

An API job groups the engine jobs the assistant starts for one request, with the rewritten
prompts, the assistant's text and the images. It records the assistant's event stream as
named events for the SSE endpoint, and a JSON snapshot in the store (``web_jobs``) so that
``GET /v1/jobs/{id}`` still answers after a restart (the engine resumes the jobs themselves).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatcanvas import messages as m
from chatcanvas.errors import ChatcanvasError
from chatcanvas.types import (
    Accepted,
    Cancelled,
    Event,
    Failed,
    GeneratedImage,
    Images,
    Progress,
    Queued,
    Refused,
    Started,
    Text,
    UserRef,
)

if TYPE_CHECKING:
    from chatcanvas.generation.engine import Engine
    from chatcanvas.store import Store

log = logging.getLogger(__name__)

TERMINAL_EVENTS = ("done", "failed", "cancelled")
_FINISHED_ENGINE = ("done", "failed", "cancelled")


def new_job_id() -> str:
    return "w" + secrets.token_hex(8)


def image_info(img: GeneratedImage, prefix: str = "") -> dict[str, Any]:
    r = img.recipe
    return {
        "id": img.id,
        "url": f"{prefix}/v1/images/{img.id}.png",
        "prompt": r.prompt,
        "revised_prompt": r.revised_prompt or r.prompt,
        "seed": r.seed,
        "width": r.width,
        "height": r.height,
        "steps": r.steps,
        "model": r.model,
        "backend": r.backend,
        "mode": str(r.mode),
    }


def images_by_id(store: Store, image_ids: list[str], prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for iid in image_ids:
        img = store.image(iid)
        if img is not None:
            out.append(image_info(img, prefix))
    return out


@dataclass
class WebJob:
    id: str
    kind: str
    who: UserRef
    key_id: str | None
    reserved: int = 0  # images counted against the key's quota
    prefix: str = ""  # where the app is mounted (the ASGI root_path), for the links
    created: float = field(default_factory=time.time)
    finished: float | None = None
    status: str = "accepted"  # accepted | queued | running | done | failed | cancelled
    position: int | None = None
    job_ids: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problem: tuple[int, str, float | None] | None = None  # (http status, message, retry_after) if refused
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)
    finished_jobs: set[str] = field(default_factory=set)
    cancel_requested: bool = False
    # The events so far, for SSE readers (who keep an index into it: entries are never removed).
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    decided: asyncio.Event = field(default_factory=asyncio.Event)  # accepted, refused or over
    task: asyncio.Task[None] | None = None
    on_accepted: Callable[[WebJob], None] | None = None  # e.g. settle the quota once the jobs are known

    # ------------------------------------------------------------ views

    @property
    def over(self) -> bool:
        return self.status in TERMINAL_EVENTS

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        if not self.job_ids:
            return 0
        total = 0.0
        for jid in self.job_ids:
            if jid in self.finished_jobs:
                total += 1.0
            elif jid in self.progress:
                step, steps = self.progress[jid]
                total += step / max(1, steps)
        return int(100 * total / len(self.job_ids))

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "job",
            "kind": self.kind,
            "status": self.status,
            "created": self.created,
            "finished": self.finished,
            "position": self.position,
            "percent": self.percent,
            "job_ids": list(self.job_ids),
            "prompts": list(self.prompts),
            "texts": list(self.texts),
            "images": list(self.images),
            "errors": list(self.errors),
            "links": {
                "self": f"{self.prefix}/v1/jobs/{self.id}",
                "events": f"{self.prefix}/v1/jobs/{self.id}/events",
            },
        }

    # ------------------------------------------------------------ recording

    def _wake(self) -> None:
        old = self.changed
        self.changed = asyncio.Event()
        old.set()

    def record(self, ev: Event) -> None:
        if isinstance(ev, Accepted):
            self.job_ids.extend(j for j in ev.job_ids if j not in self.job_ids)
            self.prompts.extend(ev.prompts)
            self.position = ev.position
            self.status = "queued"
            self._emit(
                "queued", {"position": ev.position, "job_ids": list(ev.job_ids), "prompts": list(ev.prompts)}
            )
            self.decided.set()
        elif isinstance(ev, Queued):
            self.position = ev.position
            if self.status in ("accepted", "queued"):
                self.status = "queued"
            self._emit("queued", {"position": ev.position, "job_id": ev.job_id})
        elif isinstance(ev, Started):
            self.status = "running"
            self.position = 0
            self._emit("started", {"job_id": ev.job_id})
        elif isinstance(ev, Progress):
            self.status = "running"
            self.position = 0
            self.progress[ev.job_id] = (ev.step, ev.total)
            data: dict[str, Any] = {
                "job_id": ev.job_id,
                "step": ev.step,
                "total": ev.total,
                "percent": self.percent,
            }
            if ev.preview:
                self._drop_previews()  # at most one preview (the newest) is kept in memory
                data["preview"] = "data:image/png;base64," + base64.b64encode(ev.preview).decode()
            self._emit("progress", data)
        elif isinstance(ev, Images):
            self.finished_jobs.add(ev.job_id)
            if ev.job_id not in self.job_ids:
                self.job_ids.append(ev.job_id)
            new = [image_info(i, self.prefix) for i in ev.images]
            self.images.extend(new)
            self._emit("images", {"job_id": ev.job_id, "images": new, "percent": self.percent})
        elif isinstance(ev, Text):
            self.texts.append(ev.text)
            self._emit("text", {"text": ev.text})
        elif isinstance(ev, Refused):
            self.errors.append(ev.reason)
            if not self.job_ids:
                self.problem = (429 if ev.retry_after is not None else 422, ev.reason, ev.retry_after)
            self._emit("refused", {"reason": ev.reason, "retry_after": ev.retry_after})
            self.decided.set()
        elif isinstance(ev, Failed):
            self.errors.append(ev.reason)
            if ev.job_id:
                self.finished_jobs.add(ev.job_id)
            elif not self.job_ids:
                self.problem = (422, ev.reason, None)
            self._emit("job_failed", {"job_id": ev.job_id, "reason": ev.reason})
            self.decided.set()
        elif isinstance(ev, Cancelled):
            self.finished_jobs.add(ev.job_id)
            self._emit("job_cancelled", {"job_id": ev.job_id})

    def _drop_previews(self) -> None:
        for i, (name, data) in enumerate(self.log):
            if name == "progress" and "preview" in data:
                self.log[i] = (name, {k: v for k, v in data.items() if k != "preview"})

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        self.log.append((name, data))
        self._wake()

    def finish(self) -> None:
        if self.over:
            return
        if self.cancel_requested and not self.images:
            self.status = "cancelled"
        elif self.images or (self.texts and not self.errors):
            self.status = "done"
        elif self.cancel_requested:
            self.status = "cancelled"
        else:
            self.status = "failed"
            if not self.errors:
                self.errors.append(m.INTERNAL_ERROR)
        self.finished = time.time()
        self.position = None
        self._emit(self.status, self.snapshot())
        self.decided.set()


class WebJobs:
    """The live API jobs of this process, and their snapshots in the store."""

    def __init__(self, store: Store, engine: Engine | None = None, keep: int = 500) -> None:
        self.store = store
        self.engine = engine
        self.keep = keep
        self.live: dict[str, WebJob] = {}

    def start(self, job: WebJob, stream: AsyncIterator[Event]) -> WebJob:
        self.live[job.id] = job
        self._save(job)
        job.task = asyncio.get_running_loop().create_task(self._drive(job, stream), name=f"web-job-{job.id}")
        self._forget_old()
        return job

    async def _drive(self, job: WebJob, stream: AsyncIterator[Event]) -> None:
        try:
            async for ev in stream:
                job.record(ev)
                if isinstance(ev, Accepted):
                    self._save(job)
                    if job.on_accepted is not None:
                        job.on_accepted(job)
        except asyncio.CancelledError:
            job.cancel_requested = True
        except ChatcanvasError as exc:
            from chatcanvas.adapters.web.problems import problem_for_error

            p = problem_for_error(exc)
            job.errors.append(str(exc))
            if not job.job_ids:
                retry = exc.retry_after if hasattr(exc, "retry_after") else None
                job.problem = (p.status, p.detail, retry)
        except Exception:
            log.exception("web job %s failed", job.id)
            job.errors.append(m.INTERNAL_ERROR)
            if not job.job_ids:
                job.problem = (500, m.INTERNAL_ERROR, None)
        finally:
            with contextlib.suppress(Exception):
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            job.finish()
            self._save(job)

    def _save(self, job: WebJob) -> None:
        try:
            self.store.execute(
                "INSERT INTO web_jobs (id, key_id, user_key, kind, data, created, finished)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data, finished = excluded.finished",
                (
                    job.id,
                    job.key_id or "",
                    job.who.key,
                    job.kind,
                    json.dumps(job.snapshot()),
                    job.created,
                    job.finished,
                ),
            )
        except Exception:  # the store is closing; the engine keeps the jobs themselves
            log.warning("could not save web job %s", job.id, exc_info=True)

    def _forget_old(self) -> None:
        if len(self.live) <= self.keep:
            return
        done = sorted((j for j in self.live.values() if j.over), key=lambda j: j.finished or 0)
        for j in done[: len(self.live) - self.keep]:
            self.live.pop(j.id, None)

    # ------------------------------------------------------------ lookup

    def get(self, job_id: str) -> WebJob | None:
        return self.live.get(job_id)

    def stored(self, job_id: str) -> tuple[dict[str, Any], str, str | None] | None:
        """(snapshot, owner's UserRef key, key id) of a job from the store, refreshed from the engine."""
        rows = self.store.execute("SELECT data, user_key, key_id FROM web_jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        snap: dict[str, Any] = json.loads(rows[0]["data"])
        if snap.get("status") not in TERMINAL_EVENTS and self.engine is not None:
            snap = self._refresh(snap)
        return snap, rows[0]["user_key"], rows[0]["key_id"] or None

    def _refresh(self, snap: dict[str, Any]) -> dict[str, Any]:
        """After a restart: the job's state from the engine's records."""
        assert self.engine is not None
        statuses = []
        image_ids: list[str] = []
        errors: list[str] = list(snap.get("errors", []))
        for jid in snap.get("job_ids", []):
            rec = self.engine.job(jid)
            if rec is None:
                continue
            statuses.append(str(rec.status))
            image_ids.extend(rec.image_ids)
            if rec.error and rec.error not in errors:
                errors.append(rec.error)
        snap = dict(snap)
        links = snap.get("links", {}).get("self", "")
        prefix = links[: links.find("/v1/")] if "/v1/" in links else ""
        snap["images"] = images_by_id(self.store, image_ids, prefix)
        snap["errors"] = errors
        if statuses and all(s in _FINISHED_ENGINE for s in statuses):
            snap["status"] = "done" if image_ids else ("cancelled" if "cancelled" in statuses else "failed")
            snap["percent"] = 100 if image_ids else snap.get("percent", 0)
        elif "running" in statuses:
            snap["status"] = "running"
        elif statuses:
            snap["status"] = "queued"
        return snap
