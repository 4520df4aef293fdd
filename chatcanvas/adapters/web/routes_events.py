"""Server-sent events for one job: queued (with position), started, progress, images, text, then
done / failed / cancelled (the last carries the job's JSON). ``Last-Event-ID`` resumes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from chatcanvas.adapters.web.routes_api import PROBLEMS, State, _find, caller_of, root_path
from chatcanvas.adapters.web.tracker import TERMINAL_EVENTS, WebJob

KEEPALIVE_S = 15.0

router = APIRouter(prefix="/v1", tags=["v1"])


def sse(seq: int, name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=name, id=str(seq))


async def _follow_live(job: WebJob, start: int) -> AsyncIterator[ServerSentEvent]:
    """The job's events from ``start`` on, pushed as they happen (sse-starlette sends the keep-alive
    comments and stops this when the client goes away)."""
    yield ServerSentEvent(retry=2000)
    i = start
    while True:
        while i < len(job.log):
            name, data = job.log[i]
            i += 1
            yield sse(i, name, data)
            if name in TERMINAL_EVENTS:
                return
        if job.over:  # ended before we joined; the terminal event was sent above
            return
        await job.changed.wait()


@router.get(
    "/jobs/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **PROBLEMS},
    summary="Server-sent events: queued, progress, images, done / failed / cancelled",
)
async def job_events(job_id: str, request: Request, st: State) -> EventSourceResponse:
    caller = caller_of(request, st)
    live, snap = _find(st, caller, job_id, root_path(request))
    if live is None and snap.get("status") not in TERMINAL_EVENTS and snap.get("job_ids"):
        # From before a restart: follow its engine jobs again.
        live = WebJob(
            id=job_id,
            kind=str(snap.get("kind", "generation")),
            who=caller.who,
            key_id=caller.key_id,
            prefix=root_path(request),
            sign=st.jobs.sign,
        )
        live.job_ids = list(snap["job_ids"])
        live.prompts = list(snap.get("prompts", []))
        live.texts = list(snap.get("texts", []))
        live.created = float(snap.get("created", live.created))
        st.jobs.start(live, st.ctx.assistant.follow(live.job_ids))
    try:
        start = max(0, int(request.headers.get("last-event-id", "0")))
    except ValueError:
        start = 0
    if live is None:
        name = str(snap.get("status", "failed"))
        name = name if name in TERMINAL_EVENTS else "failed"

        async def once() -> AsyncIterator[ServerSentEvent]:
            yield sse(1, name, snap)

        return EventSourceResponse(once(), ping=KEEPALIVE_S)
    return EventSourceResponse(_follow_live(live, start), ping=KEEPALIVE_S)
