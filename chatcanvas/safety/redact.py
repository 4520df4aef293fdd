"""Secrets stay secret: a logging filter that blanks every configured token and key, and :func:`scrub`.

What is redacted: ``OPENAI_API_KEY``, ``SLACK_BOT_TOKEN``, ``SLACK_APP_TOKEN``,
``SLACK_SIGNING_SECRET``, ``DISCORD_TOKEN``, every ``CHATCANVAS_API_KEYS`` entry and the image-URL
signing key, wherever they appear (message, its arguments, the exception and stack text); and,
even when not configured, anything shaped like an OpenAI key (``sk-...``), a Slack token
(``xoxb-...``, ``xapp-...``), a Discord bot token or a ``Bearer`` credential. Each becomes
``[redacted NAME]``. Values shorter than 6 characters are not searched for (they would blank
ordinary words); such a value is no secret anyway.

:func:`install_redaction` puts the filter on the root logger and on its handlers (a filter on a
logger sees only records logged on that very logger; propagated records meet the handlers'), and
wraps the log record factory so records from loggers with handlers of their own (uvicorn,
discord.py) are redacted too.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["RedactingFilter", "install_redaction", "scrub", "secrets_of"]

MIN_SECRET_CHARS = 6

# Credentials recognisable by their shape, configured or not.
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("OPENAI_API_KEY", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}")),
    ("SLACK_TOKEN", re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{8,}")),
    ("SLACK_APP_TOKEN", re.compile(r"\bxapp-[A-Za-z0-9\-]{8,}")),
    ("DISCORD_TOKEN", re.compile(r"\b[A-Za-z\d_\-]{24,28}\.[A-Za-z\d_\-]{6}\.[A-Za-z\d_\-]{27,40}\b")),
    ("credential", re.compile(r"(?<=Bearer )[A-Za-z0-9._~+/\-]{8,}=*", re.IGNORECASE)),
)


def secrets_of(settings: Settings) -> list[tuple[str, str]]:
    """(name, value) of every configured secret, longest first."""
    found: list[tuple[str, str]] = []
    for field, name in (
        ("openai_api_key", "OPENAI_API_KEY"),
        ("slack_bot_token", "SLACK_BOT_TOKEN"),
        ("slack_app_token", "SLACK_APP_TOKEN"),
        ("slack_signing_secret", "SLACK_SIGNING_SECRET"),
        ("discord_token", "DISCORD_TOKEN"),
    ):
        value = getattr(settings, field, None)
        if value:
            found.append((name, str(value)))
    found.extend(("CHATCANVAS_API_KEYS", k) for k in settings.api_keys if k)
    from chatcanvas.safety.signing import existing_key_hex

    key = existing_key_hex(settings)
    if key:
        found.append(("image URL signing key", key))
    found = [(n, v) for n, v in found if len(v) >= MIN_SECRET_CHARS]
    return sorted(found, key=lambda nv: -len(nv[1]))


class Redactor:
    """Replaces known secrets and secret-shaped strings in text."""

    def __init__(self, secrets: list[tuple[str, str]]) -> None:
        self.secrets = sorted(
            [(n, v) for n, v in secrets if len(v) >= MIN_SECRET_CHARS], key=lambda nv: -len(nv[1])
        )

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for name, value in self.secrets:
            if value in text:
                text = text.replace(value, f"[redacted {name}]")
        for name, pattern in _SHAPES:
            text = pattern.sub(f"[redacted {name}]", text)
        return text


def scrub(text: str, settings: Settings) -> str:
    """``text`` (an error message, a response body) with every secret replaced by ``[redacted NAME]``."""
    return Redactor(secrets_of(settings))(text)


class RedactingFilter(logging.Filter):
    """Redacts a record in place: the message with its arguments, the exception and stack text.

    Always returns True: the record is kept, only its secrets go.
    """

    def __init__(self, secrets: list[tuple[str, str]]) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_chatcanvas_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, as text
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            # exc_text is what formatters print; exc_info would only be formatted again from it.
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._chatcanvas_redacted = True
        return True


_installed: dict[str, Any] = {}


def install_redaction(settings: Settings, logger: logging.Logger | None = None) -> RedactingFilter:
    """Redact every log record from now on (idempotent: a second call replaces the first)."""
    root = logger or logging.getLogger()
    flt = RedactingFilter(secrets_of(settings))
    old = _installed.get("filter")
    for target in (root, *root.handlers):
        if old is not None:
            target.removeFilter(old)
        target.addFilter(flt)
    base = _installed.get("base_factory") or logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        flt.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed.update(filter=flt, base_factory=base)
    return flt


def uninstall_redaction(logger: logging.Logger | None = None) -> None:
    """Undo :func:`install_redaction` (for tests)."""
    root = logger or logging.getLogger()
    old = _installed.pop("filter", None)
    if old is not None:
        for target in (root, *root.handlers):
            target.removeFilter(old)
    base = _installed.pop("base_factory", None)
    if base is not None:
        logging.setLogRecordFactory(base)
