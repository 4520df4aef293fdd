"""The versioned JSON API: generations, variations, jobs, images."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from chatcanvas import messages as m
from chatcanvas.adapters.web.auth import SESSION_COOKIE, Caller
from chatcanvas.adapters.web.problems import Problem
from chatcanvas.adapters.web.schemas import GenerationRequest, InfoOut, JobOut, ProblemOut
from chatcanvas.adapters.web.state import WebState, web_state
from chatcanvas.adapters.web.tracker import WebJob, new_job_id
from chatcanvas.errors import ChatcanvasError
from chatcanvas.images import MIME_TYPES, ImageTooLarge, load_upload, megabytes, sniff_format
from chatcanvas.types import ChatTurn, Event, Place

ACCEPT_WAIT_S = 15.0  # how long a POST waits for the job to be queued (or refused) before answering
_IMAGE_ID = re.compile(r"^[0-9a-f]{32}$")
_ALLOWED_MIME = set(MIME_TYPES.values()) | {"application/octet-stream", ""}

router = APIRouter(prefix="/v1", tags=["v1"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    s: {"model": ProblemOut, "description": d}
    for s, d in {
        401: "API key missing or invalid",
        404: "No such job or image",
        413: "Upload too large (bytes or pixels)",
        415: "Not a PNG, JPEG or WebP image",
        422: "Invalid request",
        429: "Quota or rate limit; see Retry-After",
    }.items()
}


def caller_of(request: Request, st: WebState) -> Caller:
    return st.keys.caller(request)


State = Annotated[WebState, Depends(web_state)]


def _place(caller: Caller, conversation: str | None) -> Place:
    return Place(platform="web", channel=(conversation or caller.who.user)[:128])


def root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _start(
    st: WebState, caller: Caller, kind: str, stream: AsyncIterator[Event], prefix: str = ""
) -> JSONResponse:
    """Follow the stream in the background, answer once it is queued or refused (the policy decides)."""
    job = WebJob(
        id=new_job_id(), kind=kind, who=caller.who, key_id=caller.key_id, prefix=prefix, sign=st.jobs.sign
    )
    st.jobs.start(job, stream)
    try:
        await asyncio.wait_for(job.decided.wait(), ACCEPT_WAIT_S)
    except TimeoutError:
        pass  # still thinking (a slow LLM): answer now, the events endpoint will tell the rest
    if job.problem is not None:
        status, detail, retry = job.problem
        headers = {"Retry-After": str(max(1, int(retry + 0.999)))} if retry is not None else None
        extra: dict[str, Any] = {"job": job.id, **({"retry_after": retry} if retry is not None else {})}
        if job.rule:
            extra["rule"] = job.rule
        raise Problem(status, detail, headers=headers, extra=extra)
    code = 200 if job.over else 202
    return JSONResponse(job.snapshot(), status_code=code, headers={"Location": f"{prefix}/v1/jobs/{job.id}"})


def _model_name(ref: str) -> str:
    """A hub id as is; a local path by its last part (the server's folders are not shown)."""
    from pathlib import Path

    return Path(ref).name if ref.startswith(("/", ".", "~")) or "\\" in ref else ref


@router.get("", response_model=InfoOut, summary="What this server runs")
async def info(st: State) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("chatcanvas")
    except PackageNotFoundError:
        ver = "0"
    s = st.ctx.settings
    return {
        "version": ver,
        "backend": s.backend,
        "model": "demo" if s.using_demo_model else _model_name(s.model_ref),
        "demo_model": s.using_demo_model,
        "api_keys_required": st.keys.enabled,
        "max_upload_bytes": s.max_upload_bytes,
        "max_upload_pixels": s.max_upload_pixels,
        "max_variations": st.ctx.assistant.max_variations,
    }


@router.post(
    "/generations",
    status_code=202,
    response_model=JobOut,
    responses=PROBLEMS,
    summary="Make images from free text (via the assistant) or an exact ImageSpec",
)
async def create_generation(body: GenerationRequest, request: Request, st: State) -> JSONResponse:
    caller = caller_of(request, st)
    where = _place(caller, body.conversation)
    a = st.ctx.assistant
    if body.spec is not None:
        spec = st.ctx.settings.limits.check(body.spec)
        stream = a.generate(spec, caller.who, where)
        return await _start(st, caller, "generation", stream, root_path(request))
    assert body.text is not None
    turn = ChatTurn(who=caller.who, where=where, text=body.text.strip())
    return await _start(st, caller, "generation", a.handle(turn), root_path(request))


async def _read_upload(upload: UploadFile, st: WebState, what: str) -> bytes:
    """The file's bytes, within the byte cap; the declared type only words the error (bytes decide)."""
    limit = st.ctx.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(
            m.IMAGE_TOO_LARGE.format(detail=f"{what} is over {megabytes(limit)}", limit=megabytes(limit))
        )
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if ctype not in _ALLOWED_MIME and sniff_format(data) is None:
        raise Problem(415, m.UNSUPPORTED_MEDIA.format(content_type=ctype))
    return data


def _variations(raw: list[str]) -> str | list[str]:
    """The form field as sent: a JSON list, the field repeated, or one typed list ("navy, forest green")."""
    if len(raw) == 1 and raw[0].lstrip().startswith("["):
        try:
            parsed = json.loads(raw[0])
        except json.JSONDecodeError:
            raise Problem(422, m.NO_VARIATIONS) from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise Problem(422, m.NO_VARIATIONS)
        return list(parsed)
    return raw[0] if len(raw) == 1 else raw


@router.post(
    "/variations",
    status_code=202,
    response_model=JobOut,
    responses=PROBLEMS,
    summary="Recolour a product photo: one image per variation, same shape and background",
)
async def create_variations(
    request: Request,
    st: State,
    image: Annotated[UploadFile, File(description="the product photo (PNG, JPEG or WebP)")],
    variations: Annotated[
        list[str], Form(description='a JSON list like ["red", "navy"], a comma list, or the field repeated')
    ],
    mask: Annotated[
        UploadFile | None, File(description="optional: white = the product, black = keep")
    ] = None,
    subject: Annotated[str, Form(max_length=100, description='the product words, e.g. "mug"')] = "",
    conversation: Annotated[str | None, Form(max_length=128)] = None,
) -> JSONResponse:
    caller = caller_of(request, st)
    data = await _read_upload(image, st, "the photo")
    load_upload(data, st.ctx.settings)  # 413 / 415 now, before anything is queued
    mask_data = None
    if mask is not None and mask.filename:
        mask_data = await _read_upload(mask, st, "the mask")
        load_upload(mask_data, st.ctx.settings, mode="L")
    stream = st.ctx.assistant.vary_product(
        data, _variations(variations), caller.who, _place(caller, conversation), mask=mask_data, subject=subject.strip()
    )
    return await _start(st, caller, "variations", stream, root_path(request))


def _find(st: WebState, caller: Caller, job_id: str, prefix: str = "") -> tuple[WebJob | None, dict[str, Any]]:
    """The job (live, or derived from its engine jobs' records) if the caller may see it; 404 otherwise."""
    live = st.jobs.get(job_id)
    if live is not None:
        if st.keys.enabled and live.key_id != caller.key_id:
            raise Problem(404, m.NO_SUCH_JOB.format(job_id=job_id))
        return live, live.snapshot()
    stored = st.jobs.stored(job_id, prefix)
    if stored is not None:
        snap, _, kid = stored
        if st.keys.enabled and kid != caller.key_id:
            raise Problem(404, m.NO_SUCH_JOB.format(job_id=job_id))
        return None, snap
    raise Problem(404, m.NO_SUCH_JOB.format(job_id=job_id))


@router.get("/jobs/{job_id}", response_model=JobOut, responses=PROBLEMS, summary="A job's status and images")
async def get_job(job_id: str, request: Request, st: State) -> dict[str, Any]:
    _, snap = _find(st, caller_of(request, st), job_id, root_path(request))
    return snap


@router.delete("/jobs/{job_id}", response_model=JobOut, responses=PROBLEMS, summary="Cancel a job")
async def cancel_job(job_id: str, request: Request, st: State) -> dict[str, Any]:
    caller = caller_of(request, st)
    live, snap = _find(st, caller, job_id, root_path(request))
    if live is not None:
        if live.over:
            return live.snapshot()
        live.cancel_requested = True
        ids = list(live.job_ids)
        if not ids and live.task is not None:
            live.task.cancel()  # not queued yet: stop the assistant
    else:
        ids = list(snap.get("job_ids", []))
    for jid in ids:
        try:
            await st.ctx.assistant.cancel(jid, caller.who)
        except ChatcanvasError as exc:  # only its owner may cancel a job
            raise Problem(403, str(exc)) from None
    if live is not None:
        if live.task is not None and not ids:
            await asyncio.gather(live.task, return_exceptions=True)
        return live.snapshot()
    fresh = st.jobs.stored(job_id, root_path(request))
    return fresh[0] if fresh is not None else snap


@router.get(
    "/images/{image_id}.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: PROBLEMS[404]},
    summary="A generated image (PNG with its recipe in the 'parameters' text chunk)",
)
async def get_image(
    image_id: str,
    request: Request,
    st: State,
    download: bool = False,
    exp: str | None = None,
    sig: str | None = None,
) -> FileResponse:
    if not _IMAGE_ID.match(image_id):
        raise Problem(404, m.NO_SUCH_IMAGE.format(ref=image_id))
    private = st.keys.enabled
    if private:
        from chatcanvas.safety.signing import verify_image_signature

        if not verify_image_signature(image_id, exp, sig, st.ctx.settings):
            caller_of(request, st)  # else a key (header or session cookie): 401 without one
    path = st.ctx.assistant.image_path(image_id)
    if path is None:
        raise Problem(404, m.NO_SUCH_IMAGE.format(ref=image_id))
    cache = "private, max-age=3600" if private else "public, max-age=31536000, immutable"
    return FileResponse(
        path,
        media_type="image/png",
        headers={"Cache-Control": cache},
        filename=f"chatcanvas-{image_id[:12]}.png" if download else None,
        content_disposition_type="attachment" if download else "inline",
    )


@router.post("/session", status_code=204, responses=PROBLEMS, summary="Trade the API key (header) for a session cookie")
async def open_session(request: Request, st: State) -> Response:
    """The page sends its key once in the Authorization header and gets an HttpOnly, same-site cookie,
    which EventSource and <img> send by themselves: the key never travels in a URL."""
    caller = caller_of(request, st)
    resp = Response(status_code=204)
    if caller.key_id is not None:
        value, ttl = st.keys.session_cookie(caller.key_id)
        resp.set_cookie(
            SESSION_COOKIE, value, max_age=ttl, httponly=True, samesite="strict", path=root_path(request) or "/"
        )
    return resp


@router.post(
    "/images/{image_id}/reroll",
    status_code=202,
    response_model=JobOut,
    responses=PROBLEMS,
    summary="The same request again with a new seed",
)
async def reroll(image_id: str, request: Request, st: State) -> JSONResponse:
    caller = caller_of(request, st)
    _known_image(st, image_id)
    stream = st.ctx.assistant.reroll(image_id, caller.who, _place(caller, None))
    return await _start(st, caller, "reroll", stream, root_path(request))


@router.post(
    "/images/{image_id}/vary",
    status_code=202,
    response_model=JobOut,
    responses=PROBLEMS,
    summary="A fresh take on this image (image-to-image)",
)
async def vary(image_id: str, request: Request, st: State) -> JSONResponse:
    caller = caller_of(request, st)
    _known_image(st, image_id)
    stream = st.ctx.assistant.vary(image_id, caller.who, _place(caller, None))
    return await _start(st, caller, "vary", stream, root_path(request))


def _known_image(st: WebState, image_id: str) -> None:
    if not _IMAGE_ID.match(image_id) or st.ctx.assistant.image(image_id) is None:
        raise Problem(404, m.NO_SUCH_IMAGE.format(ref=image_id))
