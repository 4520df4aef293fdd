"""The metrics port (``CHATCANVAS_METRICS_PORT``): ``/metrics``, ``/healthz``, ``/readyz`` on their own.

For when the web adapter is off (a Discord- or Slack-only bot), or to let Prometheus scrape on an
internal interface without an API key. A small threaded WSGI server from the standard library, in a
thread of its own; the body of ``/metrics`` is prometheus-client's exposition of the app's registry.
``chatcanvas run`` starts it with the adapters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError

__all__ = ["OpsServer", "ops_wsgi_app", "serve_ops", "start_ops_server"]

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class _Readiness(Protocol):
    metrics: Any

    def ready(self) -> tuple[bool, str]: ...


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return


def _json(
    start: StartResponse, status: str, body: dict[str, Any], extra: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    data = json.dumps(body).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *extra])
    return [data]


def ops_wsgi_app(assistant: _Readiness) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start, "405 Method Not Allowed", {"status": "method not allowed"}, [("Allow", "GET")])
        if path == "/healthz":
            return _json(start, "200 OK", {"status": "ok"})
        if path == "/readyz":
            ok, why = assistant.ready()
            if ok:
                return _json(start, "200 OK", {"status": m.READY})
            return _json(start, "503 Service Unavailable", {"status": "not ready", "reason": why}, [("Retry-After", "5")])
        if path == "/metrics":
            export = assistant.metrics
            if export is None:
                return _json(start, "404 Not Found", {"status": m.OPS_METRICS_OFF})
            body, ctype = export.exposition()
            start("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
            return [body]
        return _json(start, "404 Not Found", {"status": "not found", "paths": ["/metrics", "/healthz", "/readyz"]})

    return app


class OpsServer:
    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_ops_server(assistant: _Readiness, host: str, port: int) -> OpsServer:
    """Listen on ``host:port`` (0: any free port) in a daemon thread; raises ConfigError if it can't."""
    try:
        server = make_server(
            host, port, ops_wsgi_app(assistant), server_class=_ThreadingServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise ConfigError(m.OPS_METRICS_PORT_BUSY.format(host=host, port=port, detail=exc.strerror or exc)) from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics", daemon=True)
    thread.start()
    return OpsServer(server, thread)


async def serve_ops(assistant: _Readiness, host: str, port: int) -> None:
    """Run the metrics port until cancelled (``chatcanvas run`` awaits this in a task)."""
    ops = start_ops_server(assistant, host, port)
    log.warning(m.OPS_METRICS_LISTENING.format(host=host, port=ops.port))
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(ops.close)
