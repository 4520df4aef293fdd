"""Structured logs: one JSON object a line with the job's fields, the user hashed, secrets redacted in both
formats (the redaction filter and the JSON formatter's own pass over extra fields)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chatcanvas.config import Settings
from chatcanvas.ops.logs import configure_logging, hash_user, log_format
from chatcanvas.safety.redact import install_redaction, uninstall_redaction

SLACK_SECRET = "xoxb-1111-2222-abcdefghijklmnop"
OPENAI_SECRET = "sk-proj-ZYXWVUTSRQponmlkjihg0987"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    uninstall_redaction()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stream.getvalue().splitlines() if x.strip()]


def test_text_in_a_terminal_json_otherwise(tmp_path: Any) -> None:
    s = Settings(data_dir=tmp_path)
    assert log_format(s, _Tty()) == "text"
    assert log_format(s, io.StringIO()) == "json"
    assert log_format(s.model_copy(update={"log_format": "json"}), _Tty()) == "json"
    assert log_format(s.model_copy(update={"log_format": "text"}), io.StringIO()) == "text"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_redacted_in_both_formats(tmp_path: Any, restore_logging: None, fmt: str) -> None:
    s = Settings(data_dir=tmp_path, slack_bot_token=SLACK_SECRET, log_format=fmt)  # type: ignore[arg-type]
    out = io.StringIO()
    assert configure_logging(s, stream=out) == fmt
    install_redaction(s)
    log = logging.getLogger("chatcanvas.test")
    log.warning("posting with token %s failed", SLACK_SECRET, extra={"job_id": "j1", "rule": f"bearer {OPENAI_SECRET}"})
    try:
        raise RuntimeError(f"upstream said: bad key {OPENAI_SECRET}")
    except RuntimeError:
        log.exception("call failed")
    text = out.getvalue()
    assert SLACK_SECRET not in text and OPENAI_SECRET not in text
    assert "[redacted SLACK_BOT_TOKEN]" in text and "[redacted OPENAI_API_KEY]" in text
    if fmt == "json":
        first, second = lines(out)
        assert first["level"] == "warning" and first["logger"] == "chatcanvas.test" and first["job_id"] == "j1"
        assert first["message"] == "posting with token [redacted SLACK_BOT_TOKEN] failed"
        assert "[redacted OPENAI_API_KEY]" in first["rule"]  # an extra field, redacted by the formatter
        assert "RuntimeError" in second["exc"] and first["time"].endswith("+00:00")


async def test_a_job_logs_its_transitions_with_the_user_hashed(settings: Any, restore_logging: None) -> None:
    from chatcanvas.app import build_app
    from chatcanvas.types import ImageSpec, Place, UserRef

    out = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=out)
    logging.getLogger("chatcanvas.jobs").setLevel(logging.INFO)
    try:
        ctx = await build_app(settings)
        try:
            who = UserRef(platform="slack", user="U0LAURA", server="T1")
            here = Place(platform="slack")
            events = [e async for e in ctx.assistant.generate(ImageSpec(prompt="a forest green sneaker"), who, here)]
            assert events[-1].kind == "images"  # type: ignore[attr-defined]
            refused = [e async for e in ctx.assistant.generate(ImageSpec(prompt="x", count=50), who, here)]
            assert refused[-1].kind == "refused"  # type: ignore[attr-defined]
        finally:
            await ctx.aclose()
    finally:
        logging.getLogger("chatcanvas.jobs").setLevel(logging.NOTSET)
    records = [r for r in lines(out) if r["logger"] == "chatcanvas.jobs"]
    statuses = [r.get("status") for r in records if "job_id" in r]
    assert statuses == ["queued", "started", "done"]
    done = next(r for r in records if r.get("status") == "done")
    assert done["platform"] == "slack" and done["backend"] == "local" and done["images"] == 1
    assert done["user"] == hash_user(who.key) and "U0LAURA" not in out.getvalue()
    assert done["seconds"] >= 0
    (refusal,) = [r for r in records if "rule" in r]
    assert refusal["rule"] == "limits" and refusal["user"] == hash_user(who.key)
