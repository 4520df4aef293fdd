"""The engine's backends: one pool per backend name, made in worker threads, models loaded in the
background (the warm-up), so nothing heavy ever runs on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator

from chatcanvas.config import Settings
from chatcanvas.generation.base import Backend

log = logging.getLogger("chatcanvas.generation.engine")

# A warm-up that failed (a model folder not mounted yet, the hub unreachable) is tried again after these
# waits, then every last one, so /readyz turns 200 once the cause is gone, without a restart.
WARM_RETRY_S = (15.0, 30.0, 60.0, 120.0, 300.0)
_paused_gc = [0, 0]  # warm-ups under way; whether the process's first one froze what it loaded


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while models load: importing torch and diffusers in a worker thread
    makes millions of objects, and each full collection holds the GIL (the event loop) for a few hundred
    ms. Afterwards what the process's first warm-up loaded is frozen out of later collections, which
    then stay short (once only: a later freeze would keep whatever garbage is pending at the time)."""
    was = gc.isenabled()
    _paused_gc[0] += 1
    if _paused_gc[0] == 1 and was:
        gc.disable()
    try:
        yield
    finally:
        _paused_gc[0] -= 1
        if _paused_gc[0] == 0 and was:
            if not _paused_gc[1]:
                _paused_gc[1] = 1
                gc.freeze()
            gc.enable()


class BackendPools:
    """Backends by name for the :class:`~chatcanvas.generation.engine.Engine` (its base class)."""

    settings: Settings

    def __init__(self, backends: dict[str, Callable[[], Backend]] | None = None) -> None:
        self._factories = backends or {}
        self._pools: dict[str, list[Backend]] = {}
        self._building: dict[str, asyncio.Future[list[Backend]]] = {}
        self._warm: dict[str, str] = {}  # backend -> "warming" | "ready" | "failed"
        self._warm_tasks: dict[str, asyncio.Future[None]] = {}
        self._warm_failures: dict[str, int] = {}  # failed warm-ups in a row, per backend
        self._warm_retries: dict[str, asyncio.TimerHandle] = {}

    def _pool_added(self, name: str) -> None:
        """A new pool is in place (the engine gives it a queue and, when serving, workers)."""

    def register_backend(self, name: str, factory: Callable[[], Backend]) -> None:
        """Use ``factory`` for backend ``name`` (before its pool is made; e.g. a backend of your own)."""
        self._factories[name] = factory

    def backend(self, name: str | None = None) -> Backend:
        """The first backend of a pool (for resolving specs, counting tokens).

        ``start`` makes the pools in a worker thread; on the event loop call ``await ensure_backend``
        for any other name first. Made here, on the calling thread, only when neither happened.
        """
        name = name or self.settings.backend
        pool = self._pools.get(name)
        if not pool:
            pool = self._add_pool(name, self._make_pool(name))
        return pool[0]

    async def ensure_backend(self, name: str | None = None) -> Backend:
        """The first backend of a pool, its pool made in a worker thread if needed (never on the loop)."""
        name = name or self.settings.backend
        pool = self._pools.get(name)
        if pool:
            return pool[0]
        task = self._building.get(name)
        if task is None:
            task = self._building[name] = asyncio.ensure_future(asyncio.to_thread(self._make_pool, name))
        try:
            made = await asyncio.shield(task)
        finally:
            if task.done() and self._building.get(name) is task:
                del self._building[name]  # made (kept below) or failed (tried again next time)
        return self._add_pool(name, made)[0]

    def _make_pool(self, name: str) -> list[Backend]:
        """A pool's backends (imports and constructors; may run in any thread)."""
        factory = self._factories.get(name)
        if factory is None:
            from chatcanvas.generation.registry import load_backend

            def factory(name: str = name) -> Backend:
                return load_backend(name, self.settings)

            self._factories[name] = factory
        size = self.settings.workers if name == "local" else max(4, self.settings.workers)
        return [factory() for _ in range(size)]

    def _add_pool(self, name: str, made: list[Backend]) -> list[Backend]:
        pool = self._pools.get(name)
        if pool:  # made twice (two first callers): keep the first
            return pool
        pool = self._pools[name] = made
        self._pool_added(name)
        return pool

    # ------------------------------------------------------------ warm-up

    def ready(self, name: str | None = None) -> bool:
        """Whether backend ``name`` (default: the configured one) has its models loaded."""
        return self._warm.get(name or self.settings.backend) == "ready"

    def warming(self, name: str | None = None) -> bool:
        """Whether backend ``name`` is still loading its models (requests wait in the queue meanwhile)."""
        return self._warm.get(name or self.settings.backend) == "warming"

    async def warm_up(self, name: str | None = None) -> None:
        """Make the pool and load its models, all in worker threads; idempotent. ``start`` begins it."""
        await asyncio.shield(self._begin_warm_up(name or self.settings.backend))

    def begin_warm_up(self, name: str | None = None) -> asyncio.Future[None] | None:
        """Start loading now, if not already (for plugin entry points); None without a running loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._begin_warm_up(name or self.settings.backend)

    def _begin_warm_up(self, name: str) -> asyncio.Future[None]:
        task = self._warm_tasks.get(name)
        if task is None:
            self._warm[name] = "warming"
            task = self._warm_tasks[name] = asyncio.ensure_future(self._warm_up(name))
        return task

    async def _warm_up(self, name: str) -> None:
        t0 = time.perf_counter()
        try:
            with _collector_paused():
                await self.ensure_backend(name)
                await asyncio.gather(*(be.warm_up() for be in self._pools[name]))
        except Exception as exc:  # the first job reports it again, in words for its user
            self._warm[name] = "failed"
            tries = self._warm_failures[name] = self._warm_failures.get(name, 0) + 1
            wait = WARM_RETRY_S[min(tries, len(WARM_RETRY_S)) - 1]
            log.warning("backend %s could not be loaded: %s (trying again in %.0f s)", name, exc, wait)
            self._warm_tasks.pop(name, None)
            self._warm_retries[name] = asyncio.get_running_loop().call_later(wait, self._retry_warm_up, name)
            return
        self.mark_ready(name)
        log.info("backend %s ready in %.1fs", name, time.perf_counter() - t0)

    def _retry_warm_up(self, name: str) -> None:
        self._warm_retries.pop(name, None)
        if self._warm.get(name) == "failed" and not getattr(self, "_stopping", False):
            self._begin_warm_up(name)

    def mark_ready(self, name: str) -> None:
        """Backend ``name`` has its model loaded (its warm-up finished, or a job on it made images)."""
        self._warm[name] = "ready"
        self._warm_failures.pop(name, None)
        retry = self._warm_retries.pop(name, None)
        if retry is not None:
            retry.cancel()

    def cancel_warm_up_retries(self) -> None:
        for handle in self._warm_retries.values():
            handle.cancel()
        self._warm_retries.clear()
