"""RFC 9457 problem details: every error the API returns, as JSON, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatcanvas import messages as m
from chatcanvas.errors import (
    ChatcanvasError,
    ContentPolicyRefusal,
    InputImageError,
    QuotaExceeded,
    SpecError,
)
from chatcanvas.images import ImageTooLarge

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://chatcanvas.dev/problems/"
MEDIA_TYPE = "application/problem+json"

TITLES: dict[int, str] = {
    400: "Bad request",
    401: "API key needed",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Upload too large",
    415: "Unsupported image",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    502: "Image service error",
    503: "Busy",
}

SLUGS: dict[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "rate-limited",
    500: "internal",
    502: "backend",
    503: "busy",
}


class Problem(Exception):
    """Raise from a route to answer with problem details."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra or {}


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + SLUGS.get(status, str(status)),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def problem_for_error(exc: BaseException) -> Problem:
    """The HTTP answer for one of our errors."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, QuotaExceeded):
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        extra = {"retry_after": exc.retry_after} if exc.retry_after is not None else None
        return Problem(429, str(exc), headers=headers, extra=extra)
    if isinstance(exc, ImageTooLarge):
        return Problem(413, str(exc))
    if isinstance(exc, InputImageError):
        return Problem(415, str(exc))
    if isinstance(exc, SpecError):
        return Problem(422, str(exc))
    if isinstance(exc, ContentPolicyRefusal):
        return Problem(422, str(exc), title="Refused by the content policy")
    if isinstance(exc, ChatcanvasError):
        return Problem(400, str(exc))
    return Problem(500, m.INTERNAL_ERROR)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        msg = str(err.get("msg", "invalid"))
        errors.append({"loc": loc, "msg": msg})
        parts.append(f"{loc}: {msg}" if loc else msg)
    return m.BAD_REQUEST_BODY.format(detail="; ".join(parts) or "invalid"), errors


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            headers=exc.headers,
            instance=request.url.path,
            extra=exc.extra,
        )

    @app.exception_handler(ChatcanvasError)
    async def _ours(request: Request, exc: ChatcanvasError) -> JSONResponse:
        p = problem_for_error(exc)
        return problem_response(
            p.status, p.detail, title=p.title, headers=p.headers, instance=request.url.path, extra=p.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(exc)
        return problem_response(422, detail, instance=request.url.path, extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        return problem_response(
            exc.status_code, detail, headers=dict(exc.headers or {}), instance=request.url.path
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, m.INTERNAL_ERROR, instance=request.url.path)
