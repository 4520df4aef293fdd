"""Requests as Slack sends them to an app: bodies (slash command form, Events API JSON, block_actions
payload) and the ``X-Slack-Signature`` / ``X-Slack-Request-Timestamp`` headers, signed the documented way:
``v0=`` + HMAC-SHA256(signing secret, ``v0:{timestamp}:{body}``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "S"


def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form_headers(body: str, **kw: Any) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", **sign(body, **kw)}


def json_headers(body: str, **kw: Any) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign(body, **kw)}


def slash_command(
    text: str,
    *,
    command: str = "/imagine",
    user: str = "U1",
    channel: str = "C1",
    team: str = TEAM_ID,
    trigger_id: str | None = None,
    response_url: str = "http://127.0.0.1:9/unused",
) -> dict[str, str]:
    """The fields of a slash command's form body."""
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "general",
        "user_id": user,
        "user_name": "someone",
        "command": command,
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id
        or f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
    }


def form_body(fields: dict[str, str]) -> str:
    return urlencode(fields)


def event_callback(
    event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM_ID
) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": "A1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": BOT_USER_ID, "is_bot": True}],
        "is_ext_shared_channel": False,
    }


def mention_event(
    text: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    ts: str = "1700000100.000100",
    thread_ts: str | None = None,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM_ID,
    }
    if thread_ts:
        ev["thread_ts"] = thread_ts
    return ev


def message_event(
    text: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    channel_type: str = "channel",
    ts: str = "1700000200.000100",
    thread_ts: str | None = None,
    files: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "channel_type": channel_type,
        "event_ts": ts,
        "team": TEAM_ID,
    }
    if thread_ts:
        ev["thread_ts"] = thread_ts
    if files:
        ev["subtype"] = "file_share"
        ev["files"] = files
    return ev


def block_actions(
    action_id: str,
    value: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    message_ts: str = "1700000000.000005",
    thread_ts: str | None = "1700000000.000001",
    trigger_id: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": "result", "user": BOT_USER_ID}
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM_ID},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": trigger_id or f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        "team": {"id": TEAM_ID, "domain": "test"},
        "channel": {"id": channel, "name": "general"},
        "message": message,
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "type": "button",
                "action_ts": str(time.time()),
            }
        ],
    }


def actions_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})
