"""Hook an app's parts together for operations: metrics, backend-time usage, job logs, paused backends.

``install_ops(ctx)`` is called once per app (``build_app``); it is idempotent per assistant.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from chatcanvas.bot.controls import Controls, share_batch_seconds
from chatcanvas.ops.logs import job_log_hooks
from chatcanvas.ops.metrics import Metrics

__all__ = ["install_ops", "queue_depths"]


class _Ctx(Protocol):
    settings: Any
    store: Any
    engine: Any
    assistant: Any


def queue_depths(store: Any, default_backend: str) -> dict[str, int]:
    """Jobs waiting per backend, from the store (what this process and any other queued)."""
    rows = store.execute(
        "SELECT COALESCE(json_extract(spec, '$.backend'), ?) AS backend, COUNT(*) FROM jobs"
        " WHERE status = 'queued' GROUP BY backend",
        (default_backend,),
    )
    depths = {str(r[0]): int(r[1]) for r in rows}
    depths.setdefault(default_backend, 0)
    return depths


def install_ops(ctx: _Ctx) -> Metrics:
    """Metrics (a registry of this app's own) on ``ctx.assistant.metrics``; usage, logs and holds wired."""
    assistant, engine, store, settings = ctx.assistant, ctx.engine, ctx.store, ctx.settings
    existing = getattr(assistant, "metrics", None)
    if isinstance(existing, Metrics):
        return existing
    from chatcanvas.generation.registry import backend_names

    controls = Controls(store)
    engine.held = controls.is_paused  # a paused backend's queued jobs wait

    metrics = Metrics(
        backend_names(),
        depths=lambda: queue_depths(store, settings.backend),
        ready=lambda: bool(engine.ready()),
        default_backend=settings.backend,
    )
    table = engine.table

    def on_event(job_id: str, kind: str, data: dict[str, object]) -> None:
        if kind not in ("queued", "started", "done", "failed", "cancelled"):
            return
        rec = table.get(job_id)
        if rec is None:
            return
        if kind == "started":
            metrics.queue_wait_seconds.observe(max(0.0, (rec.started or time.time()) - rec.created))
            return
        metrics.job(kind, rec.spec.backend, rec.who.platform)

    def on_done(rec: Any, images: list[Any]) -> None:
        cost = sum(i.recipe.cost_usd or 0.0 for i in images if i.recipe.backend == "openai")
        metrics.made(rec.spec.backend, len(images), cost)

    def on_batch(backend: str, recs: list[Any], seconds: float, made: bool) -> None:
        metrics.batch(backend, seconds)
        shares = share_batch_seconds(seconds, [r.spec.count for r in recs])
        for rec, share in zip(recs, shares, strict=True):  # a failed or stopped call's time counts too
            controls.record_seconds(rec.id, rec.who, backend, rec.spec.count if made else 0, share)

    def on_refused(ev: Any, who: Any, where: Any) -> None:
        metrics.refused(ev.rule, who.platform)

    log_event, log_refused = job_log_hooks(settings, table)
    table.on_event += [on_event, log_event]
    engine.on_done.append(on_done)
    engine.on_batch.append(on_batch)
    assistant.on_refused += [on_refused, log_refused]
    assistant.metrics = metrics
    return metrics
