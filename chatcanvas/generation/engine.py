"""The job engine: one persistent, fair queue for every platform, with micro-batching.

A job is one :class:`ImageSpec` (``count`` images) from one user. ``submit`` records it in SQLite
before it returns; workers take jobs round-robin across servers and users, run compatible ones as
one backend call, write the images (fsynced) and only then mark the job done. On start, queued and
interrupted jobs are taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.errors import Busy, ChatcanvasError, JobCancelled, Refusal, SpecError
from chatcanvas.generation.base import Backend, StepInfo
from chatcanvas.generation.jobs import JobRecord, JobStatus, JobTable
from chatcanvas.generation.pools import BackendPools
from chatcanvas.generation.queue import FairQueue, QueueCounts
from chatcanvas.store import Store
from chatcanvas.types import (
    TERMINAL,
    Cancelled,
    Failed,
    GeneratedImage,
    Images,
    ImageSpec,
    JobEvent,
    Mode,
    Place,
    Progress,
    Queued,
    Started,
    UserRef,
)

log = logging.getLogger(__name__)

# Called when a job is done, with its images (e.g. to record what it cost).
DoneHook = Callable[[JobRecord, list[GeneratedImage]], None]
# Called after each backend call that made images: the backend's name, the batch's jobs, the seconds it took.
BatchHook = Callable[[str, list[JobRecord], float, bool], None]  # backend, jobs, seconds, made images
HOLD_POLL_S = 1.0  # how often a held (paused) backend's workers look again

_FINISHED_KEPT = 2000
# A worker thread runs Python between torch's kernels; the event loop, woken by a request, then waits
# for the GIL up to the interpreter's switch interval (5 ms) at every wake-up. 1 ms keeps that short.
SWITCH_INTERVAL_S = 0.001


@dataclass
class _Live:
    """A job's in-memory side: its events so far and who is waiting for more."""

    record: JobRecord
    events: list[JobEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    cancel: bool = False
    requeue: bool = False
    deadline: float = 0.0

    def emit(self, ev: JobEvent) -> None:
        self.events.append(ev)
        self.changed.set()
        self.changed = asyncio.Event()


class Engine(BackendPools):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        backends: dict[str, Callable[[], Backend]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.table = JobTable(store)
        self.on_done: list[DoneHook] = []
        self.on_batch: list[BatchHook] = []
        self.held: Callable[[str], bool] | None = None  # True: an operator paused this backend; its queue waits
        super().__init__(backends)
        # Called once in a worker thread by ``start``, before serving: imports and caches that the first
        # request would otherwise fill on the event loop (the app adds the rewriter's).
        self.warm_hooks: list[Callable[[], None]] = []
        self._arrivals: dict[str, float] = {}  # backend -> when the job before the last one was submitted
        self._last_arrival: dict[str, float] = {}
        self._idle = asyncio.Event()  # set whenever no job is running (shutdown waits on it)
        self._idle.set()
        self._queues: dict[str, FairQueue] = {}
        self._live: dict[str, _Live] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[str] = set()
        self._accepting = False
        self._stopping = False
        self._started_at = float("inf")  # jobs created before this are owed to their platform (see owed)

    # ------------------------------------------------------------ backends

    def backend_name(self, spec: ImageSpec) -> str:
        return spec.backend or self.settings.backend

    def _queue_of(self, name: str) -> FairQueue:
        self._wake.setdefault(name, asyncio.Event())
        return self._queues.setdefault(name, FairQueue())

    def _start_workers(self, name: str) -> None:
        for i, be in enumerate(self._pools[name]):
            self._tasks.append(asyncio.create_task(self._worker(name, be), name=f"worker-{name}-{i}"))

    def _pool_added(self, name: str) -> None:
        self._queue_of(name)
        if self._accepting:
            self._start_workers(name)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take up queued and interrupted jobs, then start the workers.

        Nothing heavy runs on the event loop: the backends are made (imports, constructors) and the
        warm hooks run in a worker thread before this returns; the models then load in the
        background (:meth:`warm_up`), and jobs submitted meanwhile wait in the queue.
        """
        self._started_at = time.time()
        self._accepting = True
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:  # see SWITCH_INTERVAL_S
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        for name in list(self._pools):
            self._start_workers(name)
        # First the model (its imports' long hold of the GIL then falls in start-up, not in serving),
        # meanwhile the first request's caches; the pool itself before serving.
        self._begin_warm_up(self.settings.backend)
        await asyncio.to_thread(self._run_warm_hooks)
        with contextlib.suppress(Exception):  # e.g. no API key: the warm-up logs it, every request says it
            await self.ensure_backend()
        for rec in self.table.unfinished():
            if rec.status == JobStatus.RUNNING:
                self.table.set_status(rec.id, JobStatus.QUEUED)
                self.table.log_event(rec.id, "requeued", {"reason": "restart"})
                if rec.attempts >= self.settings.max_attempts:
                    self._finish_failed(rec.id, m.JOB_GAVE_UP.format(n=rec.attempts))
                    continue
            rec = self.table.get(rec.id) or rec
            live = self._live[rec.id] = _Live(rec)
            name = self.backend_name(rec.spec)
            self._queue_of(name).push(rec.who.server, rec.who.key, rec.id)
            live.emit(Queued(job_id=rec.id, position=0))
            self._wake[name].set()
            if name not in self._pools:  # its workers start once the pool is made (in a thread)
                self._begin_warm_up(name)
        self._announce_positions()

    def _run_warm_hooks(self) -> None:
        for hook in self.warm_hooks:
            try:
                hook()
            except Exception:  # a cache not filled: the first request fills it
                log.warning("warm-up hook %r failed", hook, exc_info=True)

    async def shutdown(self, drain_timeout: float | None = None) -> None:
        """Stop taking work; let running jobs finish for a while, then put them back in the queue."""
        self._accepting = False
        self._stopping = True
        self.cancel_warm_up_retries()
        for ev in self._wake.values():
            ev.set()
        timeout = self.settings.drain_timeout_s if drain_timeout is None else drain_timeout
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        for job_id in list(self._running):
            live = self._live.get(job_id)
            if live:
                live.requeue = True
        if self._running:  # stopped at their next step, back in the queue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 10)
        for task in self._warm_tasks.values():  # a model being loaded in a thread finishes loading
            with contextlib.suppress(Exception):
                await task
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for pool in self._pools.values():
            for be in pool:
                await be.aclose()

    # ------------------------------------------------------------ submit

    def queue_counts(self, who: UserRef) -> QueueCounts:
        """Jobs waiting: in all, this user's, this server's (for the policy's queue caps)."""
        queues = self._queues.values()
        total = sum(len(q) for q in queues)
        mine = sum(q.count(user=who.key) for q in queues)
        server = sum(q.count(server=who.server) for q in queues) if who.server else 0
        return QueueCounts(total=total, user=mine, server=server)

    def prepare(self, spec: ImageSpec) -> ImageSpec:
        """Check the limits and fill every default, the seed included, so the job is exactly repeatable."""
        spec = self.settings.limits.check(spec)
        name = self.backend_name(spec)
        backend = self.backend(name)
        if (spec.mode == Mode.IMG2IMG and not backend.supports_img2img) or (
            spec.mode == Mode.INPAINT and not backend.supports_inpaint
        ):
            raise SpecError(m.BACKEND_CANNOT.format(backend=name, mode=spec.mode.value))
        spec = backend.resolve(spec.model_copy(update={"backend": name}))
        if not getattr(backend, "fixed_sizes", False):  # a provider's own sizes are not ours to refuse
            spec = self.settings.limits.check(spec)
        if spec.seed is None:
            spec = spec.model_copy(update={"seed": secrets.randbelow(2**32)})
        return spec

    async def submit(self, spec: ImageSpec, who: UserRef, where: Place, prompt_in: str = "") -> JobRecord:
        """Record the job and queue it; returns at once. Raises Busy (shutting down) / SpecError.

        Admission (who may ask, how much) is the policy's, before this is called.
        """
        if not self._accepting:
            raise Busy(m.SHUTTING_DOWN, retry_after=10, rule="shutting_down")
        await self.ensure_backend(self.backend_name(spec))  # made in a thread; its models need not be loaded
        spec = self.prepare(spec)
        name = self.backend_name(spec)
        job_id = secrets.token_hex(8)
        rec = self.table.insert(job_id, spec, who, where, prompt_in)
        self.table.log_event(job_id, "queued", {})
        live = self._live[job_id] = _Live(rec)
        self._queue_of(name).push(who.server, who.key, job_id)
        live.emit(Queued(job_id=job_id, position=self.position(job_id)))
        now = time.monotonic()
        self._arrivals[name] = self._last_arrival.get(name, float("-inf"))
        self._last_arrival[name] = now
        self._wake[name].set()
        self._forget_old()
        return rec

    def position(self, job_id: str) -> int:
        """How many jobs are ahead of this one: those running on its backend and those queued before it."""
        for name, q in self._queues.items():
            order = q.order()
            if job_id in order:
                return order.index(job_id) + self._running_on(name)
        return 0

    def _running_on(self, name: str) -> int:
        return sum(1 for j in self._running if (lv := self._live.get(j)) and self.backend_name(lv.record.spec) == name)

    def _announce_positions(self) -> None:
        for name, q in self._queues.items():
            ahead = self._running_on(name)
            for i, job_id in enumerate(q.order()):
                pos = i + ahead
                live = self._live.get(job_id)
                if live is None:
                    continue
                last = next((e for e in reversed(live.events) if isinstance(e, Queued)), None)
                if last is None or last.position != pos:
                    live.emit(Queued(job_id=job_id, position=pos))

    # ------------------------------------------------------------ queries

    def job(self, job_id: str) -> JobRecord | None:
        return self.table.get(job_id)

    def jobs(
        self, who: UserRef | None = None, status: JobStatus | None = None, limit: int = 50
    ) -> list[JobRecord]:
        clauses, params = [], []
        if who is not None:
            clauses += ["platform = ?", "user_id = ?"]
            params += [who.platform, who.user]
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        return self.table.query(" AND ".join(clauses) or "1", tuple(params), limit)

    def owed(self, platform: str) -> list[JobRecord]:
        """Jobs of ``platform`` from before this start whose result was never shown: finished, running
        or back in the queue. (Jobs submitted since are followed by whoever submitted them.)"""
        return self.table.query(
            "platform = ? AND delivered = 0 AND status IN ('done', 'failed', 'queued', 'running') AND created < ?",
            (platform, self._started_at),
            limit=500,
        )

    def job_for_image(self, image_id: str) -> JobRecord | None:
        rows = self.store.execute("SELECT job_id FROM images WHERE id = ? LIMIT 1", (image_id,))
        return self.table.get(rows[0][0]) if rows else None

    def mark_delivered(self, job_id: str) -> None:
        self.table.mark_delivered(job_id)

    async def follow(self, job_id: str) -> AsyncIterator[JobEvent]:
        """Every event of a job so far, then new ones as they come, ending with its last."""
        live = self._live.get(job_id)
        if live is None:
            rec = self.table.get(job_id)
            if rec is None:
                yield Failed(job_id=job_id, reason=m.NO_SUCH_JOB.format(job_id=job_id))
                return
            yield self._terminal_from_record(rec)
            return
        i = 0
        while True:
            while i < len(live.events):
                ev = live.events[i]
                i += 1
                yield ev
                if isinstance(ev, TERMINAL):
                    return
            await live.changed.wait()

    def _terminal_from_record(self, rec: JobRecord) -> JobEvent:
        if rec.status == JobStatus.DONE:
            imgs = [self.store.image(i) for i in rec.image_ids]
            return Images(job_id=rec.id, images=tuple(i for i in imgs if i is not None))
        if rec.status == JobStatus.CANCELLED:
            return Cancelled(job_id=rec.id)
        if rec.status == JobStatus.FAILED:
            return Failed(job_id=rec.id, reason=rec.error or m.JOB_FAILED.format(detail="unknown"))
        return Queued(job_id=rec.id, position=self.position(rec.id))

    # ------------------------------------------------------------ cancel / retry

    async def cancel(self, job_id: str, who: UserRef | None = None) -> bool:
        """Cancel a queued job, or stop a running one at its next step. ``who`` must own it (None: admin)."""
        rec = self.table.get(job_id)
        if rec is None or rec.status.finished:
            return False
        if who is not None and (who.platform, who.user) != (rec.who.platform, rec.who.user):
            raise Refusal(m.NOT_YOUR_JOB, rule="owner")
        live = self._live.get(job_id)
        for q in self._queues.values():
            if q.remove(job_id):
                self._finish_cancelled(job_id)
                self._announce_positions()
                return True
        if live is not None:
            live.cancel = True
            return True
        self._finish_cancelled(job_id)
        return True

    async def retry(self, job_id: str) -> JobRecord:
        """Run a finished job's exact spec again as a new job for the same user."""
        rec = self.table.get(job_id)
        if rec is None:
            raise ChatcanvasError(m.NO_SUCH_JOB.format(job_id=job_id))
        return await self.submit(rec.spec, rec.who, rec.where, rec.prompt_in)

    # ------------------------------------------------------------ workers

    def _forget_old(self) -> None:
        if len(self._live) <= _FINISHED_KEPT:
            return
        for job_id in [
            j for j, lv in self._live.items() if lv.events and isinstance(lv.events[-1], TERMINAL)
        ]:
            if len(self._live) <= _FINISHED_KEPT // 2:
                break
            del self._live[job_id]

    async def _next_batch(self, name: str, backend: Backend) -> list[_Live]:
        q, wake = self._queues[name], self._wake[name]
        while True:
            if self._stopping:
                return []
            if self.held is not None and self.held(name):
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), HOLD_POLL_S)
                except TimeoutError:
                    pass
                continue
            job_id = q.pop()
            if job_id is not None:
                break
            wake.clear()
            await wake.wait()
        first = self._live[job_id]
        batch = [first]
        key = backend.batch_key(first.record.spec)
        limit = min(self.settings.batch_size, backend.max_batch)

        def compatible(other: str) -> bool:
            return backend.batch_key(self._live[other].record.spec) == key

        wait = self.settings.batch_wait_ms / 1000
        deadline = time.monotonic() + wait
        # Wait for partners only while requests are coming in together (two within the window): a
        # lone request, or one user asking one at a time, starts at once.
        burst = self._last_arrival.get(name, float("-inf")) - self._arrivals.get(name, float("-inf")) < wait
        while len(batch) < limit:
            other = q.pop(compatible)
            if other is not None:
                batch.append(self._live[other])
                continue
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping or not burst:
                break
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), left)
            except TimeoutError:
                break
        return batch

    async def _worker(self, name: str, backend: Backend) -> None:
        warm = self._warm_tasks.get(name)
        if warm is not None:  # jobs wait queued (and batch together) while the models load
            with contextlib.suppress(Exception):
                await asyncio.shield(warm)
        while not self._stopping:
            batch = await self._next_batch(name, backend)
            if not batch:
                return
            ids = [lv.record.id for lv in batch]
            self._running.update(ids)
            self._idle.clear()
            try:
                await self._run(backend, batch)
            except Exception:  # never let a worker die
                log.exception("worker %s crashed on %s", name, ids)
                for lv in batch:
                    self._finish_failed(lv.record.id, m.INTERNAL_ERROR)
            finally:
                self._running.difference_update(ids)
                if not self._running:
                    self._idle.set()
                self._announce_positions()

    async def _run(self, backend: Backend, batch: list[_Live]) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        for lv in list(batch):  # cancelled meanwhile from another process (`chatcanvas jobs cancel`)?
            current = self.table.get(lv.record.id)
            if current is not None and current.status == JobStatus.CANCELLED:
                lv.emit(Cancelled(job_id=lv.record.id))
                batch.remove(lv)
        if not batch:
            return
        for lv in batch:
            self.table.set_status(lv.record.id, JobStatus.RUNNING)
            self.table.log_event(lv.record.id, "started", {"batch": len(batch)})
            lv.deadline = now + self.settings.job_timeout_s
            lv.emit(Started(job_id=lv.record.id))
        self._announce_positions()

        shown = [float("-inf")]  # when the last progress event went out
        every = self.settings.progress_interval_s

        def on_step(info: StepInfo) -> None:  # runs in the worker thread
            def emit() -> None:
                for lv in batch:
                    if not lv.cancel:
                        prog = Progress(
                            job_id=lv.record.id,
                            step=info.step,
                            total=info.total,
                            preview=info.preview_png,
                            note=info.note,
                        )
                        lv.emit(prog)

            t = time.monotonic()
            # at most one event every CHATCANVAS_PROGRESS_INTERVAL_S (each wakes the loop and every
            # follower); a preview, the first step (also of a run begun again) and the last always go out
            if info.preview_png is not None or info.step <= 1 or info.step >= info.total or t - shown[0] >= every:
                shown[0] = t
                loop.call_soon_threadsafe(emit)
            if all(lv.cancel or lv.requeue or t > lv.deadline for lv in batch):
                raise JobCancelled("stopped")

        specs = [lv.record.spec for lv in batch]
        t0 = time.monotonic()
        try:
            images = await asyncio.wait_for(backend.generate(specs, on_step), self.settings.job_timeout_s + 5)
        except (JobCancelled, TimeoutError):  # the backend ran until it was stopped: that time was spent
            self._batch_done(batch, time.monotonic() - t0, made=False)
            for lv in batch:
                self._stopped(lv)
            return
        except ChatcanvasError as exc:
            if getattr(exc, "ran", True):
                self._batch_done(batch, time.monotonic() - t0, made=False)
            for lv in batch:
                self._finish_failed(lv.record.id, str(exc))
            return
        except Exception as exc:
            log.exception("generation failed for %s", [lv.record.id for lv in batch])
            self._batch_done(batch, time.monotonic() - t0, made=False)
            for lv in batch:
                self._finish_failed(lv.record.id, m.JOB_FAILED.format(detail=type(exc).__name__))
            return
        self._batch_done(batch, time.monotonic() - t0, made=True)
        i = 0
        for lv in batch:
            mine = images[i : i + lv.record.spec.count]
            i += lv.record.spec.count
            if lv.cancel:
                self._finish_cancelled(lv.record.id)
            elif lv.requeue:
                self._stopped(lv)
            else:
                await self._finish_done(lv, mine)

    def _batch_done(self, batch: list[_Live], seconds: float, *, made: bool) -> None:
        """Tell the usage hooks how long one backend call took, whether or not it made images."""
        name = self.backend_name(batch[0].record.spec)
        if made and not self.ready(name):  # its model loaded after all (e.g. on a job after a failed warm-up)
            self.mark_ready(name)
        for hook in self.on_batch:
            try:
                hook(name, [lv.record for lv in batch], seconds, made)
            except Exception:
                log.exception("batch hook failed for %s", [lv.record.id for lv in batch])

    def _stopped(self, lv: _Live) -> None:
        job_id = lv.record.id
        if lv.requeue:  # shutting down: back to the queue, taken up on the next start
            self.table.set_status(job_id, JobStatus.QUEUED)
            self.table.log_event(job_id, "requeued", {"reason": "shutdown"})
        elif lv.cancel:
            self._finish_cancelled(job_id)
        else:
            self._finish_failed(job_id, m.JOB_TIMED_OUT.format(limit=self.settings.job_timeout_s))

    async def _finish_done(self, lv: _Live, images: list[GeneratedImage]) -> None:
        job_id = lv.record.id
        kept = [img for img in images if not img.recipe.safety_blocked]
        notes: tuple[str, ...] = ()
        if len(kept) < len(images):  # the safety checker's verdict is told, never a black square
            text = m.SAFETY_CHECKER_BLOCKED.format(n=len(images) - len(kept), total=len(images))
            if not kept:
                self._finish_failed(job_id, text)
                return
            notes, images = (text,), kept

        def write() -> list[GeneratedImage]:  # durable before the job is marked done, synced together
            paths = self.store.write_image_files(images)
            return [img.model_copy(update={"path": str(p)}) for img, p in zip(images, paths, strict=True)]

        stored = await asyncio.to_thread(write)
        self.table.finish_with_images(job_id, stored)
        self.table.log_event(job_id, "done", {"images": [i.id for i in stored]})
        rec = self.table.get(job_id) or lv.record
        for hook in self.on_done:
            try:
                hook(rec, stored)
            except Exception:
                log.exception("done hook failed for %s", job_id)
        lv.record = rec
        lv.emit(Images(job_id=job_id, images=tuple(stored), notes=notes))

    def _finish_failed(self, job_id: str, reason: str) -> None:
        self.table.set_status(job_id, JobStatus.FAILED, reason)
        self.table.log_event(job_id, "failed", {"reason": reason})
        live = self._live.get(job_id)
        if live:
            live.emit(Failed(job_id=job_id, reason=reason))

    def _finish_cancelled(self, job_id: str) -> None:
        self.table.set_status(job_id, JobStatus.CANCELLED, m.JOB_CANCELLED)
        self.table.log_event(job_id, "cancelled", {})
        live = self._live.get(job_id)
        if live:
            live.emit(Cancelled(job_id=job_id))
