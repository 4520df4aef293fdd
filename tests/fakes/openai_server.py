"""A real local OpenAI-compatible HTTP server for tests (stdlib ``http.server`` in a thread).

The real ``openai`` SDK and ``ChatOpenAI`` talk to it over a socket on 127.0.0.1 (port 0).
It answers from scripts, records every request, and injects faults.

Interface (kept stable; shared by the agent and the OpenAI-images tests)::

    with FakeOpenAI() as fake:                 # or: fake = FakeOpenAI().start(); ...; fake.stop()
        fake.base_url                           # "http://127.0.0.1:PORT/v1"  (OPENAI_BASE_URL)
        fake.chat_script.append(tool_call("generate_image", {"prompt": "a cat"}))
        fake.chat_script.append(text("Here you go."))
        fake.images_script.append(Reply(body={...}))      # /v1/images/generations and /v1/images/edits
        fake.faults.append(Fault(status=429, headers={"Retry-After": "0"}))
        fake.faults.append(Fault(delay=5.0, path="/v1/chat/completions"))
        fake.requests                           # list[Recorded], in arrival order
        fake.requests_to("/v1/chat/completions")
        fake.route("POST", "/v1/something", handler)   # handler(Recorded) -> Reply
        fake.moderation_flags["violence"] = ["axe"]     # /v1/moderations flags inputs holding "axe"
        fake.moderation_flag_images.append("sexual")    # ... and every image input, as "sexual"

Script items are consumed in order. Each is a ``Reply`` / chat step or a callable taking the
``Recorded`` request and returning one (to answer from what was asked). When the chat script is
empty the server answers a plain text "Done."; when the images script is empty it returns
``n`` tiny PNGs (b64_json, or url when ``response_format`` asks for it).

``/v1/moderations`` answers like ``omni-moderation-latest``: one result per input (a string, a list
of strings, or a list of text / image_url parts, which make one result). A text is flagged in a
category when it holds one of that category's words (case-insensitive, whole words); an input with
an image is flagged in every category of ``moderation_flag_images``.

A fault is taken by the first request whose path starts with ``fault.path``; it delays the answer
(``delay``), and/or replaces it with ``status`` + ``body`` + ``headers``. A fault with only a delay
still answers normally afterwards (use it to outrun a client timeout).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "ChatStep",
    "Fault",
    "FakeOpenAI",
    "Recorded",
    "Reply",
    "text",
    "tiny_png",
    "tool_call",
]


# ---------------------------------------------------------------- records and replies


@dataclass
class Recorded:
    """One request the server got."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None``."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def form(self) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
        """A multipart/form-data body as (fields, files {name: (filename, data)}); repeats get "#1", "#2"."""
        ctype = self.headers.get("content-type", "")
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body
        )
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            raw = part.get_payload(decode=True)
            payload = raw if isinstance(raw, bytes) else b""
            if not isinstance(name, str):
                continue
            if filename is not None:
                key, i = name, 1
                while key in files:
                    key, i = f"{name}#{i}", i + 1
                files[key] = (filename, payload)
            else:
                fields[name] = payload.decode("utf-8", "replace")
        return fields, files


@dataclass
class Reply:
    """A raw HTTP answer. ``body``: dict/list -> JSON, bytes/str -> as is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ChatStep:
    """One assistant message for /v1/chat/completions: text and/or tool calls.

    ``tool_calls`` items are (name, arguments) where arguments is a dict (sent as JSON) or a raw
    string (sent as is, e.g. invalid JSON to test malformed arguments).
    """

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    finish_reason: str | None = None


def tool_call(
    name: str, arguments: dict[str, Any] | str, *more: tuple[str, dict[str, Any] | str]
) -> ChatStep:
    """A chat step calling one tool (or several: pass more (name, arguments) pairs)."""
    return ChatStep(tool_calls=[(name, arguments), *more])


def text(content: str) -> ChatStep:
    return ChatStep(content=content)


@dataclass
class Fault:
    """Taken by the first request whose path starts with ``path``."""

    status: int | None = None  # None: answer normally (after the delay)
    delay: float = 0.0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/"


ScriptItem = Any  # ChatStep | Reply | Callable[[Recorded], ChatStep | Reply]
Handler = Callable[[Recorded], Reply]


def tiny_png(width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> Reply:
    return Reply(
        status=status, body={"error": {"message": message, "type": type_, "param": None, "code": code}}
    )


# ---------------------------------------------------------------- the server


class FakeOpenAI:
    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.chat_script: deque[ScriptItem] = deque()
        self.images_script: deque[ScriptItem] = deque()
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        self.moderation_flags: dict[str, list[str]] = {}
        self.moderation_flag_images: list[str] = []
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/moderations"): self._moderations,
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/images/generations"): self._images,
            ("POST", "/v1/images/edits"): self._images,
            ("POST", "/v1/images/variations"): self._images,
            ("GET", "/v1/models"): self._models,
        }
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAI:
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_DELETE = do_PUT = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------ helpers for tests

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat completion requests, parsed."""
        return [r.json for r in self.requests_to("/v1/chat/completions")]

    # ------------------------------------------------------------ dispatch

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path, _, query = h.path.partition("?")
        rec = Recorded(h.command, path, query, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append(rec)
            fault = next((f for f in self.faults if path.startswith(f.path)), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.status is not None:
            reply = Reply(fault.status, fault.body, dict(fault.headers))
            if reply.body is None:
                reply = Reply(
                    fault.status, _error(fault.status, f"injected fault {fault.status}").body, reply.headers
                )
        else:
            handler = self.routes.get((h.command, path))
            if handler is None and h.command == "GET" and path.startswith("/files/"):
                handler = self._file
            try:
                reply = handler(rec) if handler else _error(404, f"no route {h.command} {path}")
            except Exception as exc:  # a broken script must show in the test, not hang it
                reply = _error(500, f"fake server error: {type(exc).__name__}: {exc}", "server_error")
        if isinstance(reply, _Stream):
            self._send_stream(h, reply)
        else:
            self._send(h, reply)

    def _send(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, dict | list):
            data, ctype = json.dumps(reply.body).encode(), "application/json"
        elif isinstance(reply.body, str):
            data, ctype = reply.body.encode(), "text/plain"
        else:
            data, ctype = reply.body or b"", "application/octet-stream"
        try:
            h.send_response(reply.status)
            headers = {"Content-Type": ctype, **reply.headers, "Content-Length": str(len(data))}
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            pass

    def _send_stream(self, h: BaseHTTPRequestHandler, stream: _Stream) -> None:
        try:
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Connection", "close")
            h.end_headers()
            for chunk in stream.chunks:
                h.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            h.wfile.write(b"data: [DONE]\n\n")
            h.wfile.flush()
            h.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _next(self, script: deque[ScriptItem], rec: Recorded) -> Any:
        with self._lock:
            item = script.popleft() if script else None
        return item(rec) if callable(item) else item

    # ------------------------------------------------------------ routes

    def _models(self, rec: Recorded) -> Reply:
        return Reply(
            body={"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "fake"}]}
        )

    def _file(self, rec: Recorded) -> Reply:
        return Reply(body=tiny_png(), headers={"Content-Type": "image/png"})

    def _chat(self, rec: Recorded) -> Reply:
        req = rec.json
        if not isinstance(req, dict) or "messages" not in req:
            return _error(400, "expected a JSON body with messages")
        step = self._next(self.chat_script, rec)
        if isinstance(step, Reply):
            return step
        if step is None:
            step = text("Done.")
        calls = [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for name, args in step.tool_calls
        ]
        finish = step.finish_reason or ("tool_calls" if calls else "stop")
        message: dict[str, Any] = {"role": "assistant", "content": step.content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        model = req.get("model") or self.model
        created = int(time.time())
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if req.get("stream"):
            delta: dict[str, Any] = {"role": "assistant", "content": step.content or ""}
            if calls:
                delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(calls)]
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
            return _Stream(
                [
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                    {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage},
                ]
            )
        return Reply(
            body={
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            }
        )

    def _moderations(self, rec: Recorded) -> Reply:
        import re

        req = rec.json
        inputs = _moderation_inputs(req.get("input")) if isinstance(req, dict) else None
        if inputs is None:
            return _error(400, "input must be a string, a list of strings, or a list of text/image_url parts")
        results = []
        for text, has_image in inputs:
            hit = {
                cat
                for cat, words in self.moderation_flags.items()
                for w in words
                if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)
            }
            if has_image:
                hit |= set(self.moderation_flag_images)
            cats = {c: c in hit for c in (*MODERATION_CATEGORIES, *sorted(hit - set(MODERATION_CATEGORIES)))}
            results.append(
                {
                    "flagged": bool(hit),
                    "categories": cats,
                    "category_scores": {c: (0.97 if on else 0.001) for c, on in cats.items()},
                    "category_applied_input_types": {
                        c: ["text", "image"] if has_image else ["text"] for c in cats
                    },
                }
            )
        model = req.get("model") or "omni-moderation-latest"
        return Reply(body={"id": f"modr-{uuid.uuid4().hex[:12]}", "model": model, "results": results})

    def _images(self, rec: Recorded) -> Reply:
        item = self._next(self.images_script, rec)
        if isinstance(item, Reply):
            return item
        if rec.headers.get("content-type", "").startswith("multipart/"):
            fields, _ = rec.form()
            req: dict[str, Any] = dict(fields)
        else:
            req = rec.json if isinstance(rec.json, dict) else {}
        n = int(req.get("n") or 1)
        png = base64.b64encode(tiny_png()).decode()
        prompt = str(req.get("prompt", ""))
        if req.get("response_format") == "url":
            data = [
                {"url": f"http://127.0.0.1:{self.port}/files/{i}.png", "revised_prompt": prompt}
                for i in range(n)
            ]
        else:
            data = [{"b64_json": png, "revised_prompt": prompt} for _ in range(n)]
        return Reply(body={"created": int(time.time()), "data": data})


MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def _moderation_inputs(raw: Any) -> list[tuple[str, bool]] | None:
    """(text, has_image) per result the API would return, or None for a malformed input."""
    if isinstance(raw, str):
        return [(raw, False)]
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return [(x, False) for x in raw]
    if isinstance(raw, list) and all(isinstance(x, dict) for x in raw):
        texts = [str(x.get("text", "")) for x in raw if x.get("type") == "text"]
        images = [x for x in raw if x.get("type") == "image_url"]
        if len(texts) + len(images) != len(raw):
            return None
        return [(" ".join(texts), bool(images))]
    return None


class _Stream(Reply):
    """A server-sent-events answer (``"stream": true`` chat requests)."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        super().__init__()
        self.chunks = chunks
