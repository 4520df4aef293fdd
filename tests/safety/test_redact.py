"""Secrets stay secret: configured tokens and keys never reach a log line or an error string."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcanvas.config import Settings, load_settings
from chatcanvas.safety.redact import install_redaction, scrub, uninstall_redaction

OPENAI = "sk-proj-Zq8vR2mW7xT4nB9kL1pY6cD3"
SLACK_BOT = "xoxb-2718281828-3141592653-AbCdEfGhIjKlMnOp"
SLACK_APP = "xapp-1-A012BCD34EF-5678901234-0a1b2c3d4e5f"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
DISCORD = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
API_KEY = "shop-key-correct-horse-battery"


@pytest.fixture
def secret_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_BOT)
    monkeypatch.setenv("SLACK_APP_TOKEN", SLACK_APP)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
    monkeypatch.setenv("DISCORD_TOKEN", DISCORD)
    monkeypatch.setenv("CHATCANVAS_API_KEYS", f"{API_KEY},another-key-4242x")
    monkeypatch.setenv("CHATCANVAS_DATA_DIR", str(tmp_path / "data"))
    return load_settings()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler on the root logger, the way the CLI's logging.basicConfig sets one up."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level, old_disable = root.level, logging.root.manager.disable
    ours = logging.getLogger("chatcanvas")
    ours_level = ours.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.INFO)  # whatever an earlier test in this process configured
    logging.disable(logging.NOTSET)
    try:
        yield out
    finally:
        uninstall_redaction()
        root.removeHandler(handler)
        ours.setLevel(ours_level)
        logging.disable(old_disable)
        root.setLevel(old_level)


ALL = (OPENAI, SLACK_BOT, SLACK_APP, SIGNING, DISCORD, API_KEY, "another-key-4242x")


def test_log_records_are_redacted_everywhere(secret_settings: Settings, captured: io.StringIO) -> None:
    install_redaction(secret_settings)
    log = logging.getLogger("chatcanvas.somewhere")
    log.info("calling Slack with %s and %s", SLACK_BOT, {"token": SLACK_APP})
    log.warning(f"Discord login failed for {DISCORD}")
    log.info("headers: Authorization: Bearer %s", API_KEY)
    try:
        raise RuntimeError(f"401 from OpenAI: Incorrect API key provided: {OPENAI}")
    except RuntimeError:
        log.exception("image request failed (signing secret %s)", SIGNING)
    text = captured.getvalue()
    for secret in ALL[:-1]:
        assert secret not in text
    assert "[redacted SLACK_BOT_TOKEN]" in text and "[redacted OPENAI_API_KEY]" in text
    assert "RuntimeError: 401 from OpenAI" in text and "Traceback" in text  # the rest is kept


def test_loggers_with_their_own_handlers_are_redacted(secret_settings: Settings, captured: io.StringIO) -> None:
    install_redaction(secret_settings)
    own = io.StringIO()
    server_log = logging.getLogger("uvicorn.fake-access")
    server_log.propagate = False
    handler = logging.StreamHandler(own)
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    try:
        server_log.info('"GET /images?key=%s HTTP/1.1" 200', API_KEY)
    finally:
        server_log.removeHandler(handler)
    assert API_KEY not in own.getvalue() and "[redacted CHATCANVAS_API_KEYS]" in own.getvalue()


def test_tokens_shaped_like_credentials_go_even_when_not_configured(cfg: Settings) -> None:
    text = (
        "key sk-abcdefghijklmnopqrstuvwx1234 token xoxp-1234567890-abcdefghij "
        "auth Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"
    )
    out = scrub(text, cfg)
    assert "sk-abcdefghijklmnop" not in out and "xoxp-1234567890" not in out and "eyJhbGciOi" not in out
    plain = "a canvas tote in navy; image 3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c; 1024x1024, seed 42"
    assert scrub(plain, cfg) == plain


def test_scrub_error_strings(secret_settings: Settings) -> None:
    err = f"POST https://slack.com/api/chat.postMessage failed: invalid_auth ({SLACK_BOT})"
    assert SLACK_BOT not in scrub(err, secret_settings)
    assert scrub(err, secret_settings).startswith("POST https://slack.com/api/chat.postMessage failed")


def test_signing_key_is_redacted_once_it_exists(cfg: Settings) -> None:
    from chatcanvas.safety.signing import existing_key_hex, signing_key

    signing_key(cfg)
    key = existing_key_hex(cfg)
    assert key and key not in scrub(f"key={key}", cfg)


def test_cli_installs_redaction_at_start(
    secret_settings: Settings, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatcanvas import cli

    assert cli.main(["audit"]) == 0
    logging.getLogger("chatcanvas.adapters.slack").error("auth.test said invalid_auth for %s", SLACK_BOT)
    assert SLACK_BOT not in captured.getvalue() and "[redacted SLACK_BOT_TOKEN]" in captured.getvalue()
