"""A fake Discord for tests: a real REST server on 127.0.0.1 plus the client-side wire that points at it.

The real discord.py client runs unchanged; only where its requests go is changed:

* :class:`WireHTTPClient` (a ``discord.http.HTTPClient``) and :class:`WireWebhookAdapter` (a
  ``discord.webhook.async_.AsyncWebhookAdapter``, the path of interaction responses, follow-ups and
  edits) rewrite ``https://discord.com/api/v10`` to the local server and note each route they send.
* :class:`FakeDiscord` is an aiohttp server speaking the REST routes the bot uses (login, application,
  command sync, interaction callbacks, webhook follow-ups and edits, channel messages, CDN downloads).
  It parses JSON and multipart bodies (``payload_json`` + ``files[n]``), records every request with its
  files, answers with realistic message JSON, and can answer 429 (with ``Via`` and ``retry_after`` as
  Discord does) to exercise rate-limit handling.
* Gateway side: :class:`Wire` logs a ``commands.Bot`` in against the server, feeds a real ``READY``
  payload, and pushes ``INTERACTION_CREATE`` / ``MESSAGE_CREATE`` payloads through the client's
  ``ConnectionState`` parsers, exactly where the websocket would deliver them.

Usage::

    async with Wire(bot) as wire:               # starts the server, logs the bot in, READY
        wire.slash("imagine", {"prompt": "a mug"})   # returns the interaction id
        await wire.wait_for(lambda r: r.is_original_edit(token) and r.files)
        wire.requests                            # list[Recorded]
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from discord.ext import commands
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

DISCORD_BASE = "https://discord.com/api/v10"
APP_ID = 900000000000000001
BOT_ID = 900000000000000001
GUILD_ID = 800000000000000001
CHANNEL_ID = 810000000000000001
NSFW_CHANNEL_ID = 810000000000000002
OTHER_CHANNEL_ID = 810000000000000003
THREAD_ID = 820000000000000001
DM_CHANNEL_ID = 830000000000000001
USER_ID = 700000000000000001
OTHER_USER_ID = 700000000000000002
MEMBER_PERMISSIONS = "2248473465835073"  # what an ordinary member may do here (no Manage Server)
MANAGE_GUILD = 1 << 5

_ids = itertools.count(1_000_000_000_000_000_000)


def snowflake() -> str:
    return str(next(_ids))


def iso_now() -> str:
    return "2025-01-01T00:00:00.000000+00:00"


# ---------------------------------------------------------------- recorded requests


@dataclass
class FilePart:
    name: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class Recorded:
    method: str
    path: str  # without /api/v10
    query: dict[str, str]
    json: Any
    files: list[FilePart]
    at: float  # time.monotonic() on arrival
    status: int = 200

    def is_callback(self, interaction_id: str | int) -> bool:
        return (
            self.method == "POST"
            and self.path.startswith(f"/interactions/{interaction_id}/")
            and self.path.endswith("/callback")
        )

    def is_original_edit(self, token: str) -> bool:
        return self.method == "PATCH" and self.path == f"/webhooks/{APP_ID}/{token}/messages/@original"

    def is_original_delete(self, token: str) -> bool:
        return self.method == "DELETE" and self.path == f"/webhooks/{APP_ID}/{token}/messages/@original"

    def is_followup(self, token: str) -> bool:
        return self.method == "POST" and self.path == f"/webhooks/{APP_ID}/{token}"

    def is_channel_send(self, channel_id: int | str) -> bool:
        return self.method == "POST" and self.path == f"/channels/{channel_id}/messages"

    def is_channel_edit(self, channel_id: int | str, message_id: str | None = None) -> bool:
        if self.method != "PATCH" or not self.path.startswith(f"/channels/{channel_id}/messages/"):
            return False
        return message_id is None or self.path.endswith(f"/{message_id}")

    @property
    def content(self) -> str:
        if isinstance(self.json, dict):
            data = self.json.get("data", self.json)
            if isinstance(data, dict):
                return str(data.get("content") or "")
        return ""

    @property
    def flags(self) -> int:
        if isinstance(self.json, dict):
            data = self.json.get("data", self.json)
            if isinstance(data, dict):
                return int(data.get("flags") or 0)
        return 0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    @property
    def components(self) -> list[dict[str, Any]]:
        if isinstance(self.json, dict):
            data = self.json.get("data", self.json)
            if isinstance(data, dict):
                return list(data.get("components") or [])
        return []

    def custom_ids(self) -> list[str]:
        out: list[str] = []
        for row in self.components:
            for c in row.get("components", []):
                if "custom_id" in c:
                    out.append(c["custom_id"])
        return out


@dataclass
class RateLimit:
    """Answer the next ``count`` requests matching ``method`` + ``path_re`` with 429."""

    method: str
    path_re: str
    retry_after: float = 0.2
    count: int = 1
    global_: bool = False
    hit: int = 0


# ---------------------------------------------------------------- the server


def _user(uid: int | str, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(uid),
        "username": name,
        "global_name": name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def message_payload(
    *,
    channel_id: int | str,
    content: str = "",
    author: dict[str, Any] | None = None,
    message_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    guild_id: int | str | None = GUILD_ID,
    mentions: list[dict[str, Any]] | None = None,
    flags: int = 0,
    interaction_metadata: dict[str, Any] | None = None,
    referenced: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message_id or snowflake(),
        "type": 0 if referenced is None else 19,
        "channel_id": str(channel_id),
        "author": author or _user(BOT_ID, "chatcanvas", bot=True),
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": mentions or [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": [],
        "pinned": False,
        "flags": flags,
        "components": components or [],
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if interaction_metadata is not None:
        data["interaction_metadata"] = interaction_metadata
    if referenced is not None:
        data["referenced_message"] = referenced
        data["message_reference"] = {"message_id": referenced["id"], "channel_id": str(channel_id)}
    return data


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py decodes JSON only when the content type is exactly "application/json", as Discord sends it
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


class FakeDiscord:
    """The REST side of Discord on 127.0.0.1 (aiohttp, in the test's event loop)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.rate_limits: list[RateLimit] = []
        self.cdn: dict[str, tuple[bytes, str]] = {}  # path -> (data, content type)
        self.messages: dict[str, dict[str, Any]] = {}  # message id -> last payload we answered
        self._originals: dict[str, str] = {}  # interaction token -> original message id
        self._interaction_channel: dict[str, str] = {}  # interaction id -> channel id
        self._tokens: dict[str, str] = {}  # interaction id -> token
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._changed = asyncio.Event()
        self.guild_id = GUILD_ID

    # -------------------------------------------------------- lifecycle

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.origin}/api/v10"

    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        app.router.add_get("/cdn/{tail:.*}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -------------------------------------------------------- helpers for tests

    def expect_interaction(self, interaction_id: str, token: str, channel_id: int | str) -> None:
        self._tokens[interaction_id] = token
        self._interaction_channel[interaction_id] = str(channel_id)

    def put_cdn(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        path = f"/cdn/attachments/{CHANNEL_ID}/{snowflake()}/{name}"
        self.cdn[path] = (data, content_type)
        return self.origin + path

    def original(self, token: str) -> dict[str, Any]:
        """The message an interaction's response created, as last edited (what a button press carries)."""
        return self.messages[self._originals[token]]

    def rate_limit(self, method: str, path_re: str, retry_after: float = 0.2, count: int = 1) -> RateLimit:
        rl = RateLimit(method, path_re, retry_after, count)
        self.rate_limits.append(rl)
        return rl

    def matching(self, pred: Callable[[Recorded], bool]) -> list[Recorded]:
        return [r for r in self.requests if pred(r)]

    async def wait_for(
        self, pred: Callable[[Recorded], bool], within: float = 60.0, n: int = 1
    ) -> list[Recorded]:
        """Wait until at least ``n`` recorded requests match ``pred``; returns all that match."""

        async def _loop() -> list[Recorded]:
            while True:
                found = self.matching(pred)
                if len(found) >= n:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_loop(), within)

    # -------------------------------------------------------- request handling

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        hit = self.cdn.get(request.path)
        if hit is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=hit[0], content_type=hit[1])

    async def _read_body(self, request: web.Request) -> tuple[Any, list[FilePart]]:
        files: list[FilePart] = []
        body: Any = None
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                assert isinstance(part, aiohttp.BodyPartReader)
                data = await part.read(decode=False)
                if part.name == "payload_json":
                    body = json.loads(data)
                else:
                    files.append(
                        FilePart(
                            str(part.name),
                            part.filename or "",
                            part.headers.get("Content-Type", ""),
                            bytes(data),
                        )
                    )
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                body = json.loads(raw)
        return body, files

    def _limited(self, method: str, path: str) -> RateLimit | None:
        for rl in self.rate_limits:
            if rl.hit < rl.count and rl.method == method and re.fullmatch(rl.path_re, path):
                rl.hit += 1
                return rl
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        rec = Recorded(request.method, path, dict(request.query), body, files, time.monotonic())
        rl = self._limited(request.method, path)
        if rl is not None:
            rec.status = 429
            self._record(rec)
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": rl.retry_after,
                    "global": rl.global_,
                },
                status=429,
                headers={
                    "Via": "1.1 google",
                    "Retry-After": str(rl.retry_after),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(rl.retry_after),
                    "X-RateLimit-Scope": "user",
                },
            )
        try:
            status, answer = self._answer(request.method, path, body, files)
        except KeyError as exc:
            status, answer = 404, {"message": f"Unknown route {request.method} {path}: {exc}", "code": 0}
        rec.status = status
        self._record(rec)
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1.0"}
        if status == 204:
            return web.Response(status=204, headers=headers)
        return _json(answer, status=status, headers=headers)

    def _record(self, rec: Recorded) -> None:
        self.requests.append(rec)
        self._changed.set()

    def _attachments(self, body: Any, files: list[FilePart], channel_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        declared = {}
        if isinstance(body, dict):
            for a in body.get("attachments") or []:
                declared[str(a.get("id"))] = a
        for i, f in enumerate(files):
            url = self.put_cdn(f.filename, f.data, f.content_type or "application/octet-stream")
            out.append(
                {
                    "id": snowflake(),
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": "image/png" if f.filename.endswith(".png") else f.content_type,
                    "description": declared.get(str(i), {}).get("description"),
                }
            )
        return out

    def _message_answer(
        self, channel_id: str, body: Any, files: list[FilePart], message_id: str | None = None
    ) -> dict[str, Any]:
        body = body if isinstance(body, dict) else {}
        prev = self.messages.get(message_id or "", {})
        attachments = self._attachments(body, files, channel_id)
        if not files and "attachments" in body and prev:
            keep = {str(a.get("id")) for a in body["attachments"]}
            attachments = [a for a in prev.get("attachments", []) if a["id"] in keep]
        elif not files and prev:
            attachments = prev.get("attachments", [])
        msg = message_payload(
            channel_id=channel_id,
            content=body.get("content", prev.get("content", "")) or "",
            message_id=message_id,
            attachments=attachments,
            components=body.get("components", prev.get("components", [])),
            flags=int(body.get("flags") or 0),
            guild_id=None if channel_id == str(DM_CHANNEL_ID) else self.guild_id,
        )
        self.messages[msg["id"]] = msg
        return msg

    def _answer(self, method: str, path: str, body: Any, files: list[FilePart]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/users/@me":
            return 200, {**_user(BOT_ID, "chatcanvas", bot=True), "verified": True, "mfa_enabled": False}
        if method == "GET" and path == "/oauth2/applications/@me":
            return 200, {
                "id": str(APP_ID),
                "name": "chatcanvas",
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": _user(USER_ID, "owner"),
                "summary": "",
                "verify_key": "00" * 32,
                "flags": 0,
                "team": None,
            }
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return 200, [
                # as Discord answers: context menus come back with an empty description
                {"description": "", **c, "id": snowflake(), "application_id": str(APP_ID), "version": snowflake()}
                for c in (body or [])
            ]
        if method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            iid, token = parts[1], parts[2]
            channel = self._interaction_channel.get(iid, str(CHANNEL_ID))
            kind = int(body["type"]) if isinstance(body, dict) else 0
            data = body.get("data") if isinstance(body, dict) else None
            resp: dict[str, Any] = {
                "interaction": {
                    "id": iid,
                    "type": 2,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool((data or {}).get("flags", 0) & 64),
                }
            }
            if kind in (4, 5, 7):
                msg = self._message_answer(channel, data or {}, files)
                msg["interaction_metadata"] = {"id": iid, "type": 2, "user": _user(USER_ID, "user")}
                self._originals[token] = msg["id"]
                resp["interaction"]["response_message_id"] = msg["id"]
                resp["resource"] = {"type": kind, "message": msg}
            return 200, resp
        if parts[0] == "webhooks" and len(parts) >= 3:
            token = parts[2]
            channel = str(CHANNEL_ID)
            for iid, tok in self._tokens.items():
                if tok == token:
                    channel = self._interaction_channel[iid]
            if method == "POST" and len(parts) == 3:  # follow-up
                return 200, self._message_answer(channel, body, files)
            if len(parts) == 5 and parts[3] == "messages":
                mid = self._originals[token] if parts[4] == "@original" else parts[4]
                if method == "PATCH":
                    return 200, self._message_answer(channel, body, files, message_id=mid)
                if method == "GET":
                    return 200, self.messages[mid]
                if method == "DELETE":
                    self.messages.pop(mid, None)
                    return 204, None
        if parts[0] == "channels" and len(parts) >= 3:
            channel = parts[1]
            if method == "POST" and parts[2] == "typing":
                return 204, None
            if parts[2] == "messages":
                if method == "POST" and len(parts) == 3:
                    return 200, self._message_answer(channel, body, files)
                if method == "PATCH" and len(parts) == 4:
                    return 200, self._message_answer(channel, body, files, message_id=parts[3])
                if method == "DELETE" and len(parts) == 4:
                    self.messages.pop(parts[3], None)
                    return 204, None
        raise KeyError("not implemented by the fake")


# ---------------------------------------------------------------- client-side wire


class WireHTTPClient(HTTPClient):
    """discord.py's HTTP client, sending to the fake server instead of discord.com."""

    def __init__(self, base: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.base = base
        self.sent: list[tuple[str, str]] = []

    async def request(self, route: Route, **kwargs: Any) -> Any:
        self.sent.append((route.method, route.path))
        route.url = route.url.replace(DISCORD_BASE, self.base, 1)
        return await super().request(route, **kwargs)


class WireWebhookAdapter(AsyncWebhookAdapter):
    """The webhook adapter (interaction responses, follow-ups, edits), sending to the fake server."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.sent: list[tuple[str, str]] = []

    async def request(self, route: Route, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        self.sent.append((route.method, route.path))
        route.url = route.url.replace(DISCORD_BASE, self.base, 1)
        return await super().request(route, session, **kwargs)


# ---------------------------------------------------------------- gateway payloads


def channel_payload(
    channel_id: int, name: str, *, nsfw: bool = False, kind: int = 0, parent: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(channel_id),
        "type": kind,
        "guild_id": str(GUILD_ID),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": nsfw,
        "parent_id": str(parent) if parent else None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }
    if kind == 11:
        data["owner_id"] = str(BOT_ID)
        data["thread_metadata"] = {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": iso_now(),
            "locked": False,
        }
        data["message_count"] = 0
        data["member_count"] = 2
    return data


def member_payload(uid: int, name: str) -> dict[str, Any]:
    return {
        "user": _user(uid, name),
        "roles": [],
        "joined_at": iso_now(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "avatar": None,
    }


def guild_payload() -> dict[str, Any]:
    return {
        "id": str(GUILD_ID),
        "name": "Shop",
        "icon": None,
        "owner_id": str(USER_ID),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [
            {
                "id": str(GUILD_ID),
                "name": "@everyone",
                "color": 0,
                "hoist": False,
                "position": 0,
                "permissions": "2248473465835073",
                "managed": False,
                "mentionable": False,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "unavailable": False,
        "member_count": 3,
        "large": False,
        "joined_at": iso_now(),
        "members": [
            member_payload(BOT_ID, "chatcanvas"),
            member_payload(USER_ID, "alice"),
            member_payload(OTHER_USER_ID, "bob"),
        ],
        "channels": [
            channel_payload(CHANNEL_ID, "general"),
            channel_payload(NSFW_CHANNEL_ID, "after-dark", nsfw=True),
            channel_payload(OTHER_CHANNEL_ID, "random"),
        ],
        "threads": [channel_payload(THREAD_ID, "a mug", kind=11, parent=CHANNEL_ID)],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def ready_payload() -> dict[str, Any]:
    return {
        "v": 10,
        "user": {**_user(BOT_ID, "chatcanvas", bot=True), "verified": True, "mfa_enabled": False},
        "guilds": [guild_payload()],
        "session_id": "fake-session",
        "resume_gateway_url": "wss://127.0.0.1",
        "application": {"id": str(APP_ID), "flags": 0},
        "private_channels": [],
        "relationships": [],
    }


APP_CMD_OPTION_TYPES = {str: 3, int: 4, bool: 5, float: 10}


def _option(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and "attachment" in value:
        return {"name": name, "type": 11, "value": value["attachment"]}
    if isinstance(value, dict) and "user" in value:
        return {"name": name, "type": 6, "value": str(value["user"])}
    return {"name": name, "type": APP_CMD_OPTION_TYPES[type(value)], "value": value}


# ---------------------------------------------------------------- the harness


class Wire:
    """A logged-in bot wired to a :class:`FakeDiscord`, with helpers to feed gateway events."""

    def __init__(self, bot: commands.Bot, fake: FakeDiscord | None = None) -> None:
        self.bot = bot
        self.fake = fake or FakeDiscord()
        self.http: WireHTTPClient | None = None
        self.adapter: WireWebhookAdapter | None = None
        self._token: contextvars.Token[AsyncWebhookAdapter] | None = None
        self.command_ids: dict[str, str] = {}

    async def __aenter__(self) -> Wire:
        await self.fake.start()
        loop = asyncio.get_running_loop()
        self.http = WireHTTPClient(self.fake.api_base, loop)
        self.bot.http = self.http
        self.bot._connection.http = self.http
        self.bot.tree._http = self.http  # command sync goes through the tree's own reference
        self.adapter = WireWebhookAdapter(self.fake.api_base)
        self._token = async_context.set(self.adapter)
        try:
            await self.bot.login("fake-token")
            self.bot._connection.parse_ready(ready_payload())  # type: ignore[arg-type]
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.bot.close()
        await self.fake.stop()
        if self._token is not None:
            async_context.reset(self._token)

    @property
    def requests(self) -> list[Recorded]:
        return self.fake.requests

    async def wait_for(
        self, pred: Callable[[Recorded], bool], within: float = 60.0, n: int = 1
    ) -> list[Recorded]:
        return await self.fake.wait_for(pred, within, n)

    # -------------------------------------------------------- INTERACTION_CREATE

    def _interaction_base(
        self, kind: int, *, user_id: int, channel_id: int, guild: bool = True, permissions: str | None = None
    ) -> tuple[dict[str, Any], str, str]:
        iid = snowflake()
        token = f"tok-{iid}"
        self.fake.expect_interaction(iid, token, channel_id if guild else DM_CHANNEL_ID)
        data: dict[str, Any] = {
            "id": iid,
            "application_id": str(APP_ID),
            "type": kind,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": "2248473465835073",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)} if guild else {"1": str(user_id)},
            "attachment_size_limit": 26214400,
        }
        name = "alice" if user_id == USER_ID else "bob"
        if guild:
            data["guild_id"] = str(GUILD_ID)
            data["guild_locale"] = "en-US"
            data["channel_id"] = str(channel_id)
            chan = next(
                (
                    c
                    for c in guild_payload()["channels"] + guild_payload()["threads"]
                    if c["id"] == str(channel_id)
                ),
                channel_payload(channel_id, "x"),
            )
            data["channel"] = chan
            data["member"] = {**member_payload(user_id, name), "permissions": permissions or MEMBER_PERMISSIONS}
            data["context"] = 0
        else:
            data["channel_id"] = str(DM_CHANNEL_ID)
            data["channel"] = {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [_user(user_id, name)]}
            data["user"] = _user(user_id, name)
            data["context"] = 1
        return data, iid, token

    def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
        guild: bool = True,
        attachments: dict[str, dict[str, Any]] | None = None,
        subcommand: str | None = None,
        permissions: str | None = None,
        users: dict[int, str] | None = None,
    ) -> tuple[str, str]:
        """Feed a slash command; returns (interaction id, token).

        ``subcommand``: a command of the group ``name``. ``permissions``: the member's resolved permission
        bits (default: no Manage Server). ``users``: id -> name of users named in options as ``{"user": id}``.
        """
        data, iid, token = self._interaction_base(
            2, user_id=user_id, channel_id=channel_id, guild=guild, permissions=permissions
        )
        opts = [_option(k, v) for k, v in (options or {}).items()]
        if subcommand is not None:
            opts = [{"name": subcommand, "type": 1, "options": opts}]
        cmd: dict[str, Any] = {
            "id": self.command_ids.get(name, snowflake()),
            "name": name,
            "type": 1,
            "options": opts,
        }
        resolved: dict[str, Any] = {}
        if attachments:
            resolved["attachments"] = attachments
        if users:
            resolved["users"] = {str(uid): _user(uid, uname) for uid, uname in users.items()}
        if resolved:
            cmd["resolved"] = resolved
        data["data"] = cmd
        self.bot._connection.parse_interaction_create(data)  # type: ignore[arg-type]
        return iid, token

    def button(
        self,
        custom_id: str,
        *,
        message: dict[str, Any],
        user_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
    ) -> tuple[str, str]:
        """Feed a button press on ``message`` (the bot's message JSON, as the server answered it)."""
        data, iid, token = self._interaction_base(3, user_id=user_id, channel_id=channel_id)
        data["data"] = {"custom_id": custom_id, "component_type": 2}
        data["message"] = message
        self.bot._connection.parse_interaction_create(data)  # type: ignore[arg-type]
        return iid, token

    def attachment(self, filename: str, data: bytes, content_type: str = "image/png") -> dict[str, Any]:
        """An attachment object (as in ``resolved.attachments``) whose URL serves ``data``."""
        url = self.fake.put_cdn(filename, data, content_type)
        return {
            "id": snowflake(),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    # -------------------------------------------------------- MESSAGE_CREATE

    def message(
        self,
        content: str,
        *,
        user_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
        guild: bool = True,
        mention_bot: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        name = "alice" if user_id == USER_ID else "bob"
        mentions = [_user(BOT_ID, "chatcanvas", bot=True)] if mention_bot else []
        if mention_bot:
            content = f"<@{BOT_ID}> {content}"
        data = message_payload(
            channel_id=channel_id if guild else DM_CHANNEL_ID,
            content=content,
            author=_user(user_id, name),
            guild_id=GUILD_ID if guild else None,
            mentions=mentions,
            attachments=attachments,
            referenced=reply_to,
        )
        if guild:
            data["member"] = {k: v for k, v in member_payload(user_id, name).items() if k != "user"}
        self.bot._connection.parse_message_create(data)  # type: ignore[arg-type]
        return data


def iter_png_files(rec: Recorded) -> Iterator[FilePart]:
    for f in rec.files:
        if f.data[:8] == b"\x89PNG\r\n\x1a\n":
            yield f
