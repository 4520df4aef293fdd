"""A fake Slack Web API (and Socket Mode server) on 127.0.0.1, for the real slack_sdk / slack_bolt clients.

It speaks the wire protocol the SDK uses: ``POST /api/<method>`` with the token in
``Authorization: Bearer``, arguments as query string, form body or JSON; the upload URLs that
``files.getUploadURLExternal`` hands out (``POST /upload/v1/<file_id>`` with the raw bytes);
private file downloads (``GET /files-pri/...``, bot token required, as on Slack); and a Socket
Mode websocket (``apps.connections.open`` -> ``ws://.../link``) that sends envelopes and
collects the app's acknowledgements.

Every call is recorded (:attr:`FakeSlackAPI.calls`); tests wait on them with :meth:`wait_for`.
:meth:`rate_limit` makes the next calls of a method answer ``429`` + ``Retry-After``, the way
Slack does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)
    status: int = 200


@dataclass
class SharedFile:
    id: str
    name: str
    mimetype: str
    data: bytes = field(repr=False)

    def info(self, base: str) -> dict[str, Any]:
        url = f"{base}files-pri/{TEAM_ID}-{self.id}/{self.name}"
        return {
            "id": self.id,
            "name": self.name,
            "title": self.name,
            "mimetype": self.mimetype,
            "filetype": self.name.rsplit(".", 1)[-1],
            "size": len(self.data),
            "url_private": url,
            "url_private_download": url + "?download=1",
        }


class FakeSlackAPI:
    def __init__(self, *, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.calls: list[Call] = []
        self.uploaded: dict[str, bytes] = {}  # file_id -> bytes received at the upload URL
        self.pending_uploads: dict[str, dict[str, Any]] = {}  # file_id -> getUploadURLExternal args
        self.files: dict[str, SharedFile] = {}  # files users "shared", downloadable with the bot token
        self.downloads: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.completed: list[dict[str, Any]] = []  # files.completeUploadExternal params, files decoded
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self.messages: dict[tuple[str, str], str] = {}  # (channel, ts) -> text of the messages still there
        # users.info: user id -> its fields (is_admin, is_owner, ...); anyone else is a plain member
        self.users: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []  # what apps POSTed to the response_url of a command
        self._rate_limits: dict[str, list[float]] = {}
        self._changed = asyncio.Condition()
        self._ts = itertools.count(1)
        self._ws: list[web.WebSocketResponse] = []
        self._ws_connected = asyncio.Event()
        self._acked: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------ lifecycle

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` is set to."""
        return self.root + "api/"

    async def start(self) -> FakeSlackAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/files-pri/{key}/{name}", self._download)
        app.router.add_get("/link/", self._socket)
        app.router.add_post("/response/{key}", self._response_url)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        for ws in list(self._ws):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlackAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ test controls

    def rate_limit(self, method: str, retry_after: float = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``Retry-After: retry_after``."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def add_file(self, data: bytes, name: str = "product.png", mimetype: str = "image/png") -> dict[str, Any]:
        """A file a user shared; returns the file object as it appears in a message event."""
        f = SharedFile(id="F" + uuid.uuid4().hex[:10].upper(), name=name, mimetype=mimetype, data=data)
        self.files[f.id] = f
        return f.info(self.root)

    def response_url(self, key: str = "cmd") -> str:
        """A slash command's ``response_url`` (Slack's is on hooks.slack.com); posts land in ``responses``."""
        return f"{self.root}response/{key}"

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.status == 200]

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    async def wait_for(
        self, method: str, count: int = 1, *, where: Callable[[Call], bool] | None = None, within: float = 60
    ) -> list[Call]:
        """Wait until ``method`` was answered successfully ``count`` times (matching ``where``)."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if where is None or where(c)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), within)
        return matching()

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ Web API

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                params.update(await request.json())
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.pop("token", None)
        queue = self._rate_limits.get(method)
        if queue:
            retry_after = queue.pop(0)
            await self._record(Call(method, params, token, status=429))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": f"{retry_after:g}"}
            )
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            await self._record(Call(method, params, token, status=401))
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            await self._record(Call(method, params, token, status=404))
            return web.json_response({"ok": False, "error": "unknown_method"})
        try:
            body = handler(params)
        except _ApiError as exc:
            await self._record(Call(method, params, token, status=400))
            return web.json_response({"ok": False, "error": str(exc)})
        await self._record(Call(method, params, token))
        return web.json_response({"ok": True, **body})

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://test.slack.com/",
            "team": "Test",
            "user": "chatcanvas",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel"):
            raise _ApiError("channel_not_found")
        if not (p.get("text") or p.get("blocks")):
            raise _ApiError("no_text")
        ts = self._next_ts()
        self.messages[(str(p["channel"]), ts)] = str(p.get("text", ""))
        return {"channel": p["channel"], "ts": ts, "message": {"text": p.get("text", ""), "ts": ts}}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("ts"):
            raise _ApiError("message_not_found")
        self.messages[(str(p["channel"]), str(p["ts"]))] = str(p.get("text", ""))
        return {"channel": p["channel"], "ts": p["ts"], "text": p.get("text", "")}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (str(p.get("channel", "")), str(p.get("ts", "")))
        if key not in self.messages:
            raise _ApiError("message_not_found")
        del self.messages[key]
        return {"channel": key[0], "ts": key[1]}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("user"):
            raise _ApiError("user_not_in_channel")
        return {"message_ts": self._next_ts()}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            raise _ApiError("invalid_arguments")
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self.pending_uploads[file_id] = p
        return {"upload_url": f"{self.root}upload/v1/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(p.get("files", "[]"))
        out = []
        for f in files:
            fid = f.get("id")
            if fid not in self.uploaded:
                raise _ApiError("file_not_found")
            expected = int(self.pending_uploads[fid]["length"])
            if len(self.uploaded[fid]) != expected:
                raise _ApiError("file_upload_size_mismatch")
            out.append({"id": fid, "title": f.get("title", "")})
        self.completed.append({**p, "files": files})
        return {"files": out}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(p.get("file", ""))
        if f is None:
            raise _ApiError("file_not_found")
        return {"file": f.info(self.root)}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = str(p.get("user", ""))
        if not uid.startswith(("U", "W")):
            raise _ApiError("user_not_found")
        fields = {"is_admin": False, "is_owner": False, "is_primary_owner": False, **self.users.get(uid, {})}
        return {
            "user": {
                "id": uid,
                "team_id": TEAM_ID,
                "name": uid.lower(),
                "deleted": False,
                "is_bot": uid == BOT_USER_ID,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "profile": {"real_name": uid.lower(), "display_name": uid.lower()},
                **fields,
            }
        }

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}"}

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append(body)
        await self._record(Call("response_url", {"key": request.match_info["key"], **body}, None))
        return web.Response(text="ok")

    # ------------------------------------------------------------ uploads and downloads

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.pending_uploads:
            return web.Response(status=404, text="not found")
        data = await request.read()
        self.uploaded[file_id] = data
        await self._record(Call("upload", {"file_id": file_id, "bytes": len(data)}, None))
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.downloads.append((request.path, auth))
        await self._record(Call("download", {"path": request.path}, auth))
        key = request.match_info["key"]
        f = self.files.get(key.split("-", 1)[-1])
        if f is None:
            return web.Response(status=404, text="not found")
        if auth != f"Bearer {self.bot_token}":
            # Slack answers an unauthenticated file request with its HTML sign-in page.
            return web.Response(text="<html><body>Sign in to Slack</body></html>", content_type="text/html")
        return web.Response(body=f.data, content_type=f.mimetype)

    # ------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        self._ws_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                envelope_id = data.get("envelope_id")
                if envelope_id:
                    self.socket_acks[envelope_id] = data
                    fut = self._acked.get(envelope_id)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
        finally:
            self._ws.remove(ws)
        return ws

    async def socket_connected(self, within: float = 30) -> None:
        await asyncio.wait_for(self._ws_connected.wait(), within)

    async def socket_send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        within: float = 3.0,
    ) -> dict[str, Any]:
        """Send one envelope (``events_api``, ``slash_commands``, ``interactive``) and wait for its ack."""
        await self.socket_connected()
        envelope_id = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acked[envelope_id] = fut
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        await self._ws[-1].send_json(envelope)
        return await asyncio.wait_for(fut, within)


class _ApiError(Exception):
    pass
