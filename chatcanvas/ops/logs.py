"""Logs: plain text in a terminal, one JSON object a line elsewhere (``CHATCANVAS_LOG_FORMAT``).

A JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and when the record
carries them ``job_id``, ``platform``, ``user`` (a hash of the user's key, never the id itself),
``backend``, ``rule``, ``seconds``, and ``exc`` (the traceback). Secrets are redacted in both formats:
the record is redacted as it is made (:func:`chatcanvas.safety.redact.install_redaction`), and the
JSON formatter passes every string it writes through the same redactor, extra fields included.

:func:`job_log_hooks` logs each job's transitions (queued, started, done, failed, cancelled) and each
refusal at INFO on the ``chatcanvas.jobs`` logger, with those fields.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["FIELDS", "JsonFormatter", "configure_logging", "hash_user", "job_log_hooks", "log_format"]

FIELDS = ("job_id", "platform", "user", "backend", "rule", "status", "seconds", "images")
TEXT_FORMAT = "%(message)s"
VERBOSE_FORMAT = "%(levelname)s %(name)s: %(message)s"
jobs_log = logging.getLogger("chatcanvas.jobs")


def hash_user(key: str) -> str:
    """A user's key (``platform:server:user``) as logs carry it: 12 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; every string passed through ``redact``."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.redact = redact or (lambda s: s)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        clean = {k: self.redact(v) if isinstance(v, str) else v for k, v in out.items()}
        return json.dumps(clean, ensure_ascii=False, default=str)


def log_format(settings: Settings | None, stream: TextIO | None = None) -> str:
    """``json`` or ``text``: the setting, or text when ``stream`` (stderr) is a terminal."""
    chosen = settings.log_format if settings is not None else None
    if chosen:
        return chosen
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def configure_logging(settings: Settings | None, *, verbose: bool = False, stream: TextIO | None = None) -> str:
    """Format the root logger's stderr handlers (the one ``logging.basicConfig`` made, or one of ours) in
    the configured format; with ``stream``, log there with a handler of ours. Handlers a host attached to
    other streams keep their own format. Returns the format used.

    Call :func:`chatcanvas.safety.redact.install_redaction` after this (it filters the root's handlers).
    """
    fmt = log_format(settings, stream)
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_chatcanvas", False)]:
        root.removeHandler(h)
    targets = [
        h for h in root.handlers if stream is None and type(h) is logging.StreamHandler and h.stream is sys.stderr
    ]
    if stream is not None or not root.handlers:
        ours = logging.StreamHandler(stream or sys.stderr)
        ours._chatcanvas = True  # type: ignore[attr-defined]
        root.addHandler(ours)
        targets.append(ours)
    formatter: logging.Formatter
    if fmt == "json":
        redact: Callable[[str], str] | None = None
        if settings is not None:
            from chatcanvas.safety.redact import Redactor, secrets_of

            redact = Redactor(secrets_of(settings))
        formatter = JsonFormatter(redact)
    else:
        formatter = logging.Formatter(VERBOSE_FORMAT if verbose else TEXT_FORMAT)
    for h in targets:
        h.setFormatter(formatter)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    return fmt


def job_log_hooks(settings: Settings, table: Any) -> tuple[Callable[..., None], Callable[..., None]]:
    """Hooks for ``JobTable.on_event`` and ``Assistant.on_refused`` that log with the structured fields."""

    def on_event(job_id: str, kind: str, data: dict[str, object]) -> None:
        if kind not in ("queued", "started", "done", "failed", "cancelled", "requeued") or not jobs_log.isEnabledFor(
            logging.INFO
        ):
            return
        rec = table.get(job_id)
        if rec is None:
            return
        extra: dict[str, object] = {
            "job_id": job_id,
            "status": kind,
            "platform": rec.who.platform,
            "user": hash_user(rec.who.key),
            "backend": rec.spec.backend or settings.backend,
        }
        if kind == "done":
            extra["images"] = len(rec.image_ids)
            if rec.started is not None and rec.finished is not None:
                extra["seconds"] = round(rec.finished - rec.started, 3)
        jobs_log.info("job %s %s", job_id, kind, extra=extra)

    def on_refused(ev: Any, who: Any, where: Any) -> None:
        jobs_log.info(
            "refused: %s",
            ev.rule,
            extra={"rule": ev.rule, "platform": who.platform, "user": hash_user(who.key)},
        )

    return on_event, on_refused
