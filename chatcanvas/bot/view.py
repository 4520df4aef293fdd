"""One view of a turn: the assistant's event stream folded into what a renderer shows.

Every adapter (Discord, Slack, web, terminal) feeds the events of one request to a :class:`TurnView`
and only formats what it holds: the assistant's texts, each job's prompt, queue position and
progress, the newest preview, the images, refusals and failures. A feature added to the event
stream shows up on every platform by being added here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
)

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
TurnStatus = Literal["accepted", "queued", "running", "done", "failed", "cancelled", "refused"]

__all__ = ["JobView", "TurnView"]


@dataclass
class JobView:
    job_id: str
    prompt: str = ""
    state: JobState = "queued"
    position: int | None = None  # jobs ahead of it, while queued
    step: int = 0
    total: int = 0
    error: str | None = None
    note: str | None = None  # why a running job is not stepping (waiting for the image workers)
    images: list[GeneratedImage] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        return self.step / self.total if self.total else 0.0


@dataclass
class TurnView:
    texts: list[str] = field(default_factory=list)
    jobs: dict[str, JobView] = field(default_factory=dict)  # in the order they were accepted
    refusals: list[Refused] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # failures before any job, or of a job
    preview: bytes | None = None  # the newest preview PNG of any job still running
    preview_job: str | None = None

    # ------------------------------------------------------------ folding

    def job(self, job_id: str) -> JobView:
        view = self.jobs.get(job_id)
        if view is None:
            view = self.jobs[job_id] = JobView(job_id)
        return view

    def apply(self, ev: Event) -> Event:
        """Fold one event in; returns it, so a renderer can ``for ev in ...: show(view.apply(ev))``."""
        if isinstance(ev, Text):
            self.texts.append(ev.text)
        elif isinstance(ev, Accepted):
            for i, job_id in enumerate(ev.job_ids):
                jv = self.job(job_id)
                if i < len(ev.prompts):
                    jv.prompt = ev.prompts[i]
                jv.position = ev.position + i
        elif isinstance(ev, Queued):
            jv = self.job(ev.job_id)
            if jv.state == "queued":
                jv.position = ev.position
        elif isinstance(ev, Started):
            jv = self.job(ev.job_id)
            jv.state, jv.position = "running", None
        elif isinstance(ev, Progress):
            jv = self.job(ev.job_id)
            jv.state, jv.position, jv.step, jv.total, jv.note = "running", None, ev.step, ev.total, ev.note
            if ev.preview:
                self.preview, self.preview_job = ev.preview, ev.job_id
        elif isinstance(ev, Images):
            jv = self.job(ev.job_id)
            jv.state, jv.position = "done", None
            jv.images = list(ev.images)
            self.texts.extend(ev.notes)
            if self.preview_job == ev.job_id:
                self.preview, self.preview_job = None, None
        elif isinstance(ev, Refused):
            self.refusals.append(ev)
        elif isinstance(ev, Failed):
            self.failures.append(ev.reason)
            if ev.job_id:
                jv = self.job(ev.job_id)
                jv.state, jv.error, jv.position = "failed", ev.reason, None
        elif isinstance(ev, Cancelled):
            self.job(ev.job_id).state = "cancelled"
        return ev

    # ------------------------------------------------------------ what to show

    @property
    def images(self) -> list[GeneratedImage]:
        return [img for jv in self.jobs.values() for img in jv.images]

    @property
    def percent(self) -> int:
        """Of all the turn's jobs together."""
        if not self.jobs:
            return 0
        return int(100 * sum(jv.fraction for jv in self.jobs.values()) / len(self.jobs))

    @property
    def running(self) -> bool:
        return any(jv.state == "running" for jv in self.jobs.values())

    @property
    def position(self) -> int | None:
        """Jobs ahead of the turn's first waiting job (None when none waits)."""
        waiting = [jv.position for jv in self.jobs.values() if jv.state == "queued" and jv.position is not None]
        return min(waiting) if waiting else None

    @property
    def over(self) -> bool:
        return all(jv.finished for jv in self.jobs.values()) if self.jobs else bool(self.refusals or self.failures)

    @property
    def status(self) -> TurnStatus:
        if not self.jobs:
            if self.refusals:
                return "refused"
            if self.failures:
                return "failed"
            return "done" if self.texts else "accepted"
        states = {jv.state for jv in self.jobs.values()}
        if "running" in states:
            return "running"
        if "queued" in states:
            return "queued"
        if self.images:
            return "done"
        return "cancelled" if "cancelled" in states else "failed"
