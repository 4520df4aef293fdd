"""API jobs: one request (a text, a spec, a set of variations) followed through the assistant.

An API job groups the engine jobs the assistant starts for one request, with the rewritten
prompts, the assistant's text and the images. While this process follows it, it records the
assistant's event stream as named events for the SSE endpoint. The store keeps only which engine
jobs a request started (``web_requests``); after a restart ``GET /v1/jobs/{id}`` derives the status,
images and errors from those jobs' own records, so there is no second copy of job state to go stale.
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
from chatcanvas.bot.view import TurnView
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
    from chatcanvas.bot.assistant import Assistant
    from chatcanvas.store import Store

log = logging.getLogger(__name__)

TERMINAL_EVENTS = ("done", "failed", "cancelled")
# refusals for asking too much or too often: HTTP 429 (the rest, a request refused as such: 422)
_TOO_MANY = {"user_queue", "server_queue", "queue_full", "user_rate", "server_rate", "api_key_quota", "spending",
             "cooldown", "gpu_seconds"}  # fmt: skip
_FINISHED_ENGINE = ("done", "failed", "cancelled")


def new_job_id() -> str:
    return "w" + secrets.token_hex(8)


Signer = Callable[[str, str], str]  # (path, image id) -> the path with its signature (keys configured)


def image_info(img: GeneratedImage, prefix: str = "", sign: Signer | None = None) -> dict[str, Any]:
    r = img.recipe
    path = f"{prefix}/v1/images/{img.id}.png"
    return {
        "id": img.id,
        "url": sign(path, img.id) if sign is not None else path,
        "prompt": r.prompt,
        "revised_prompt": r.revised_prompt or r.prompt,
        "seed": r.seed,
        "width": r.width,
        "height": r.height,
        "steps": r.steps,
        "model": r.model,
        "backend": r.backend,
        "mode": str(r.mode),
        "colourway": r.colourway.model_dump() if r.colourway is not None else None,
        "colour_delta_e": r.colour_delta_e,
    }


def images_by_id(
    assistant: Assistant, image_ids: list[str], prefix: str = "", sign: Signer | None = None
) -> list[dict[str, Any]]:
    out = []
    for iid in image_ids:
        img = assistant.image(iid)
        if img is not None:
            out.append(image_info(img, prefix, sign))
    return out


@dataclass
class WebJob:
    id: str
    kind: str
    who: UserRef
    key_id: str | None
    prefix: str = ""  # where the app is mounted (the ASGI root_path), for the links
    sign: Signer | None = None  # signs image links when API keys are configured
    created: float = field(default_factory=time.time)
    finished: float | None = None
    status: str = "accepted"  # accepted | queued | running | done | failed | cancelled
    position: int | None = None
    note: str | None = None  # why it is waiting (the image workers are down): it reads queued meanwhile
    job_ids: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problem: tuple[int, str, float | None] | None = None  # (http status, message, retry_after) if refused
    rule: str | None = None  # the policy rule that refused it
    view: TurnView = field(default_factory=TurnView)  # the one reducer every adapter uses
    finished_jobs: set[str] = field(default_factory=set)
    cancel_requested: bool = False
    # The events so far, for SSE readers (who keep an index into it: entries are never removed).
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    decided: asyncio.Event = field(default_factory=asyncio.Event)  # accepted, refused or over
    task: asyncio.Task[None] | None = None

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
        if self.view.jobs:
            return self.view.percent
        return int(100 * len(self.finished_jobs) / len(self.job_ids))  # derived from the records

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
            "note": self.note,
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
        """Fold the event into the turn's view, and log it as a named SSE event."""
        self.view.apply(ev)
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
            # a job waiting for the image workers is still queued (nothing runs), with the note as its reason
            self.status = "queued" if ev.note else "running"
            self.position = 0
            self.note = ev.note
            data: dict[str, Any] = {
                "job_id": ev.job_id,
                "step": ev.step,
                "total": ev.total,
                "percent": self.percent,
            }
            if ev.note:
                data["note"] = ev.note
            if ev.preview:
                self._drop_previews()  # at most one preview (the newest) is kept in memory
                data["preview"] = "data:image/png;base64," + base64.b64encode(ev.preview).decode()
            self._emit("progress", data)
        elif isinstance(ev, Images):
            self.finished_jobs.add(ev.job_id)
            if ev.job_id not in self.job_ids:
                self.job_ids.append(ev.job_id)
            self.texts.extend(ev.notes)
            new = [image_info(i, self.prefix, self.sign) for i in ev.images]
            self.images.extend(new)
            self._emit("images", {"job_id": ev.job_id, "images": new, "percent": self.percent})
        elif isinstance(ev, Text):
            self.texts.append(ev.text)
            self._emit("text", {"text": ev.text})
        elif isinstance(ev, Refused):
            self.errors.append(ev.reason)
            if not self.job_ids:
                busy = ev.retry_after is not None or ev.rule in _TOO_MANY
                self.problem = (429 if busy else 422, ev.reason, ev.retry_after)
                self.rule = ev.rule
            self._emit("refused", {"reason": ev.reason, "rule": ev.rule, "retry_after": ev.retry_after})
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
        self.note = None
        self._emit(self.status, self.snapshot())
        self.decided.set()


class WebJobs:
    """The live API jobs of this process, and which engine jobs each request started (in the store)."""

    def __init__(self, store: Store, assistant: Assistant, keep: int = 500, sign: Signer | None = None) -> None:
        from chatcanvas.adapters.web.tables import MIGRATIONS

        self.store = store
        self.assistant = assistant
        self.sign = sign
        self.keep = keep
        self.live: dict[str, WebJob] = {}
        store.migrate(MIGRATIONS)

    def start(self, job: WebJob, stream: AsyncIterator[Event]) -> WebJob:
        self.live[job.id] = job
        self._save(job)
        job.task = asyncio.get_running_loop().create_task(self._drive(job, stream), name=f"web-job-{job.id}")
        self._forget_old()
        return job

    async def _drive(self, job: WebJob, stream: AsyncIterator[Event]) -> None:
        shutting_down = False
        try:
            async for ev in stream:
                job.record(ev)
                if isinstance(ev, (Accepted, Text)):
                    self._save(job)
        except asyncio.CancelledError:
            shutting_down = not job.cancel_requested  # the server stops; the engine keeps the jobs
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
            if not shutting_down:
                job.finish()
            self._save(job)

    def _save(self, job: WebJob) -> None:
        try:
            self.store.execute(
                "INSERT INTO web_requests (id, key_id, user_key, kind, job_ids, texts, errors, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET job_ids = excluded.job_ids, texts = excluded.texts,"
                " errors = excluded.errors",
                (
                    job.id,
                    job.key_id or "",
                    job.who.key,
                    job.kind,
                    json.dumps(job.job_ids),
                    json.dumps(job.texts),
                    json.dumps([] if job.job_ids else job.errors),
                    job.created,
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

    def stored(self, job_id: str, prefix: str = "") -> tuple[dict[str, Any], str, str | None] | None:
        """(snapshot, owner's UserRef key, key id) of a request this process no longer follows,
        derived from its engine jobs' records."""
        rows = self.store.execute(
            "SELECT kind, key_id, user_key, job_ids, texts, errors, created FROM web_requests WHERE id = ?",
            (job_id,),
        )
        if not rows:
            return None
        row = rows[0]
        job = WebJob(id=job_id, kind=row["kind"], who=_owner(row["user_key"]), key_id=row["key_id"] or None)
        job.prefix = prefix
        job.sign = self.sign
        job.created = row["created"]
        job.job_ids = list(json.loads(row["job_ids"]))
        job.texts = list(json.loads(row["texts"]))
        job.errors = list(json.loads(row["errors"]))
        statuses: list[str] = []
        image_ids: list[str] = []
        for jid in job.job_ids:
            rec = self.assistant.job(jid)
            if rec is None:
                continue
            statuses.append(str(rec.status))
            job.prompts.append(rec.spec.prompt)
            image_ids.extend(rec.image_ids)
            if rec.error and rec.error not in job.errors and str(rec.status) == "failed":
                job.errors.append(rec.error)
            if str(rec.status) in _FINISHED_ENGINE:
                job.finished_jobs.add(jid)
            if rec.finished:
                job.finished = max(job.finished or 0.0, rec.finished)
        job.images = images_by_id(self.assistant, image_ids, prefix, self.sign)
        if statuses and all(st in _FINISHED_ENGINE for st in statuses):
            job.status = "done" if image_ids else ("cancelled" if "cancelled" in statuses else "failed")
        elif "running" in statuses:
            job.status, job.position = "running", 0
        elif statuses:
            job.status = "queued"
            job.position = min(self.assistant.position(j) for j in job.job_ids)
        else:
            job.status = "failed" if job.errors else "done"
        if not job.over:
            job.finished = None
        return job.snapshot(), row["user_key"], row["key_id"] or None


def _owner(user_key: str) -> UserRef:
    platform, _, rest = user_key.partition(":")
    server, _, user = rest.partition(":")
    return UserRef(platform=platform or "web", user=user or "?", server=server)
