"""``GET /healthz`` (the process answers), ``GET /readyz`` (it can take work), ``GET /metrics`` (Prometheus).

``/healthz`` touches nothing and answers 200 at once. ``/readyz`` answers 503 with the reason until
the app is built, the configured backend has loaded its model and the store takes writes, then 200.
``/metrics`` is the app's own registry in the Prometheus text format; with ``CHATCANVAS_API_KEYS`` set
it asks for a key like every other route (or scrape the key-less ``CHATCANVAS_METRICS_PORT``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from chatcanvas import messages as m
from chatcanvas.adapters.web.problems import Problem
from chatcanvas.adapters.web.routes_api import State, caller_of
from chatcanvas.adapters.web.state import Holder

router = APIRouter(tags=["operations"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _build_in_background(request: Request, holder: Holder) -> None:
    """A mounted app (no lifespan) builds its context on first use: start that, don't wait for it."""
    app_state: Any = request.app.state
    task = getattr(app_state, "chatcanvas_building", None)
    if task is None or task.done():
        app_state.chatcanvas_building = asyncio.create_task(holder.get())


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    holder: Holder = request.app.state.chatcanvas
    state = holder.state
    if state is None:
        _build_in_background(request, holder)
        return _not_ready(m.NOT_READY_STARTING)
    ok, why = await asyncio.to_thread(state.ctx.assistant.ready)
    if not ok:
        return _not_ready(why)
    return JSONResponse({"status": m.READY})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "reason": reason}, status_code=503, headers={"Retry-After": "5"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, st: State) -> Response:
    caller_of(request, st)  # 401 when API keys are configured and none was given
    export = st.ctx.assistant.metrics
    if export is None:
        raise Problem(404, m.OPS_METRICS_OFF)
    body, content_type = await asyncio.to_thread(export.exposition)
    return Response(body, media_type=content_type)
