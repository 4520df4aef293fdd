"""Job records and their rows in the store."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chatcanvas.store import Store
from chatcanvas.types import GeneratedImage, ImageSpec, Place, UserRef

log = logging.getLogger(__name__)

# Called after each job event is logged (queued, started, done, failed, cancelled, requeued): job id, kind, data.
EventHook = Callable[[str, str, dict[str, object]], None]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class JobRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: JobStatus
    spec: ImageSpec
    who: UserRef
    where: Place
    prompt_in: str = ""
    error: str | None = None
    attempts: int = 0
    delivered: bool = False
    created: float
    started: float | None = None
    finished: float | None = None
    image_ids: tuple[str, ...] = ()


def _record(row: sqlite3.Row, image_ids: tuple[str, ...]) -> JobRecord:
    return JobRecord(
        id=row["id"],
        status=JobStatus(row["status"]),
        spec=ImageSpec.model_validate_json(row["spec"]),
        who=UserRef(platform=row["platform"], user=row["user_id"], server=row["server_id"]),
        where=Place(platform=row["platform"], channel=row["channel"], thread=row["thread"]),
        prompt_in=row["prompt_in"],
        error=row["error"],
        attempts=row["attempts"],
        delivered=bool(row["delivered"]),
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        image_ids=image_ids,
    )


class JobTable:
    """The jobs, images and job_events tables."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.on_event: list[EventHook] = []

    def insert(self, job_id: str, spec: ImageSpec, who: UserRef, where: Place, prompt_in: str) -> JobRecord:
        now = time.time()
        self.store.execute(
            "INSERT INTO jobs (id, status, spec, platform, user_id, server_id, channel, thread, prompt_in, created)"
            " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                spec.model_dump_json(),
                who.platform,
                who.user,
                who.server,
                where.channel,
                where.thread,
                prompt_in,
                now,
            ),
        )
        got = self.get(job_id)
        assert got is not None
        return got

    def get(self, job_id: str) -> JobRecord | None:
        rows = self.store.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        ids = tuple(
            r[0] for r in self.store.execute("SELECT id FROM images WHERE job_id = ? ORDER BY idx", (job_id,))
        )
        return _record(rows[0], ids)

    def query(self, where: str = "1", params: tuple[object, ...] = (), limit: int = 100) -> list[JobRecord]:
        rows = self.store.execute(
            f"SELECT id FROM jobs WHERE {where} ORDER BY created DESC LIMIT ?", (*params, limit)
        )
        out = [self.get(r[0]) for r in rows]
        return [j for j in out if j is not None]

    def unfinished(self) -> list[JobRecord]:
        rows = self.store.execute(
            "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created"
        )
        out = [self.get(r[0]) for r in rows]
        return [j for j in out if j is not None]

    def set_status(self, job_id: str, status: JobStatus, error: str | None = None) -> None:
        now = time.time()
        if status == JobStatus.RUNNING:
            self.store.execute(
                "UPDATE jobs SET status = ?, started = ?, attempts = attempts + 1 WHERE id = ?",
                (status, now, job_id),
            )
        elif status == JobStatus.QUEUED:
            self.store.execute("UPDATE jobs SET status = ?, started = NULL WHERE id = ?", (status, job_id))
        else:
            self.store.execute(
                "UPDATE jobs SET status = ?, error = ?, finished = ? WHERE id = ?",
                (status, error, now, job_id),
            )

    def finish_with_images(self, job_id: str, images: list[GeneratedImage]) -> None:
        """Files are already on disk; record them and mark the job done in one transaction."""
        now = time.time()
        with self.store.lock:
            db = self.store.db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM images WHERE job_id = ?", (job_id,))
                for i, img in enumerate(images):
                    db.execute(
                        "INSERT INTO images (id, job_id, idx, path, recipe, seconds, created) VALUES (?,?,?,?,?,?,?)",
                        (img.id, job_id, i, img.path, img.recipe.model_dump_json(), img.seconds, now),
                    )
                db.execute(
                    "UPDATE jobs SET status = 'done', error = NULL, finished = ? WHERE id = ?", (now, job_id)
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def log_event(self, job_id: str, kind: str, data: dict[str, object]) -> None:
        self.store.execute(
            "INSERT INTO job_events (job_id, seq, kind, data, at) VALUES (?, "
            "(SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?), ?, ?, ?)",
            (job_id, job_id, kind, json.dumps(data), time.time()),
        )
        for hook in self.on_event:
            try:
                hook(job_id, kind, data)
            except Exception:
                log.exception("job event hook failed for %s", job_id)

    def mark_delivered(self, job_id: str) -> None:
        self.store.execute("UPDATE jobs SET delivered = 1 WHERE id = ?", (job_id,))
