"""The bot's connection to the Ray cluster, kept in a child process of its own.

A Ray driver exits when the cluster it joined goes away (about a minute after the cluster's GCS
stops answering), and a chat bot must not. So the bot never joins the cluster itself:
:class:`Link` starts this module as a child process (``python -m chatcanvas.generation.ray_link``)
and talks to it over a socket pair, one pickled dict per message. The child joins the cluster,
calls the Serve application through a ``DeploymentHandle`` and streams each request's messages
back. When the cluster goes away the child says so and exits; the next request starts a new one.

Bot -> child: ``{"op": "generate" | "info" | "cancel" | "close", "id": n, "request": {...}}``.
Child -> bot: ``{"kind": "connected" | "down", ...}`` about the link, and per request ``{"id": n,
"kind": "started" | "step" | "done" | "info" | "error", ...}``; an error's ``error`` is
``unavailable`` (no workers: wait and try again), ``lost`` (the replica died mid-request: try
another) or ``failed`` (the request itself failed: ``type`` and ``message`` say how).

This module imports Ray only in the child.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Message = dict[str, Any]
Sink = Callable[[Message], None]

GCS_CHECK_EVERY_S = 1.0
GCS_MISSES = 3  # the cluster is gone after this many failed checks in a row
RETRY_AFTER_S = 2.0  # a link that went down is started again no sooner than this


def use_token_auth() -> None:
    """Send this machine's Ray token when joining a cluster by address, as Ray does for ``auto``.

    Ray turns token authentication on by itself only for a cluster it finds on this machine; one named
    by address needs ``RAY_AUTH_MODE=token``. Set here when a token is at hand and the mode is unset
    (``RAY_AUTH_MODE=disabled`` opts out).
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or (
        Path.home() / ".ray" / "auth_token"
    ).is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


# ---------------------------------------------------------------- the bot's side


class Link:
    """One child process per (cluster address, application), shared by every backend of a process."""

    def __init__(self, address: str, app: str, log_file: Path | None = None) -> None:
        self.address, self.app, self.log_file = address, app, log_file
        self.state = "idle"  # idle | starting | connected | down
        self.detail = ""  # why it is down
        self.cluster = ""  # the GCS address the child joined
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._settled = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._sinks: dict[int, Sink] = {}
        self._ids = itertools.count(1)
        self._next_try = 0.0
        self.users = 0

    # -- process

    def _spawn(self) -> None:
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0"}
        out: Any = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "chatcanvas.generation.ray_link", str(child.fileno()), self.address, self.app],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                start_new_session=True,  # the terminal's Ctrl-C is the bot's to handle, not the child's
            )
        finally:
            child.close()
            if out is not subprocess.DEVNULL:
                out.close()
        self._conn = Connection(parent.detach())
        self.state, self.detail = "starting", ""
        self._settled.clear()
        threading.Thread(target=self._read, args=(self._conn, self._proc), name="ray-link", daemon=True).start()

    def _read(self, conn: Connection, proc: subprocess.Popen[bytes]) -> None:
        while True:
            try:
                msg: Message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that does not unpickle: the link is broken
                log.exception("bad message from the Ray link")
                break
            rid = msg.get("id")
            if rid is None:
                with self._lock:
                    if msg.get("kind") == "connected":
                        self.state, self.cluster = "connected", str(msg.get("address", ""))
                    elif msg.get("kind") == "down":
                        self.detail = str(msg.get("message", ""))
                self._settled.set()
                continue
            with self._lock:
                sink = self._sinks.get(rid)
                if msg.get("kind") in ("done", "error", "info"):
                    self._sinks.pop(rid, None)
            if sink is not None:
                sink(msg)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        with self._lock:
            if self._conn is conn:
                self._conn, self._proc = None, None
                self.state = "down"
                self.detail = self.detail or f"the link process ended (exit code {proc.returncode})"
                self._next_try = time.monotonic() + RETRY_AFTER_S
            sinks, self._sinks = self._sinks, {}
        self._settled.set()
        for sink in sinks.values():
            sink({"kind": "error", "error": "unavailable", "message": self.detail})
        conn.close()

    def connect(self, timeout: float) -> bool:
        """Start the child if needed and wait (blocking) until it joined the cluster or gave up."""
        with self._lock:
            if self.state == "connected":
                return True
            if self._proc is None:
                if time.monotonic() < self._next_try:
                    return False
                self._spawn()
        if not self._settled.wait(timeout):
            with self._lock:
                self.detail = f"no answer from the cluster within {timeout:.0f} s"
            self._stop_child()
            return False
        return self.state == "connected"

    async def aconnect(self, wait_s: float) -> bool:
        if self.state == "connected":
            return True
        return await asyncio.to_thread(self.connect, wait_s)

    # -- requests

    def submit(self, op: str, request: Message | None, sink: Sink) -> int:
        """Send a request; its messages go to ``sink`` (from the reader thread)."""
        rid = next(self._ids)
        with self._lock:
            conn = self._conn
            if conn is None or self.state != "connected":
                conn = None
            else:
                self._sinks[rid] = sink
        if conn is None:
            sink({"kind": "error", "error": "unavailable", "message": self.detail or "not connected"})
            return rid
        try:
            self._send({"op": op, "id": rid, "request": request}, conn)
        except OSError as exc:
            with self._lock:
                self._sinks.pop(rid, None)
            sink({"kind": "error", "error": "unavailable", "message": str(exc)})
        return rid

    def cancel(self, rid: int) -> None:
        with self._lock:
            self._sinks.pop(rid, None)
            conn = self._conn
        if conn is not None:
            try:
                self._send({"op": "cancel", "id": rid}, conn)
            except OSError:
                pass

    def _send(self, msg: Message, conn: Connection) -> None:
        with self._send_lock:
            conn.send(msg)

    # -- shutdown

    def _stop_child(self) -> None:
        with self._lock:
            conn, proc = self._conn, self._proc
        if conn is not None:
            try:
                self._send({"op": "close"}, conn)
            except OSError:
                pass
        if proc is not None:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._stop_child()
        with self._lock:
            self.state = "idle"


_LINKS: dict[tuple[str, str], Link] = {}
_LINKS_LOCK = threading.Lock()


def shared_link(address: str, app: str, log_file: Path | None = None) -> Link:
    """The process's link to ``app`` on the cluster at ``address`` (one child per pair)."""
    with _LINKS_LOCK:
        link = _LINKS.get((address, app))
        if link is None:
            link = _LINKS[(address, app)] = Link(address, app, log_file)
        link.users += 1
        return link


def release_link(link: Link) -> None:
    with _LINKS_LOCK:
        link.users -= 1
        if link.users > 0:
            return
        _LINKS.pop((link.address, link.app), None)
    link.close()


# ---------------------------------------------------------------- the child


class _Sender:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, msg: Message) -> None:
        with self.lock:
            try:
                self.conn.send(msg)
            except OSError:  # the bot is gone
                os._exit(0)


def _watch_gcs(address: str, sender: _Sender) -> None:
    """Exit soon after the cluster's GCS stops answering (Ray itself would only after a minute)."""
    host, _, port = address.rpartition(":")
    misses = 0
    while True:
        time.sleep(GCS_CHECK_EVERY_S)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            misses = 0
        except OSError:
            misses += 1
            if misses >= GCS_MISSES:
                sender.send({"kind": "down", "message": f"the Ray cluster at {address} stopped answering"})
                os._exit(3)


def _classify(exc: BaseException) -> Message:
    """A handle's exception as the bot's error kinds."""
    from ray import exceptions as rx
    from ray.serve import exceptions as sx

    name = type(exc).__name__
    lost = tuple(
        t for t in (getattr(rx, n, None) for n in ("ActorDiedError", "RayActorError", "ActorUnavailableError")) if t
    )
    if isinstance(exc, lost):
        return {"kind": "error", "error": "lost", "message": f"{name}: {str(exc).splitlines()[0][:300]}"}
    unavailable = tuple(t for t in (getattr(sx, n, None) for n in ("DeploymentUnavailableError",)) if t)
    if isinstance(exc, unavailable) or (isinstance(exc, sx.RayServeException) and "does not exist" in str(exc)):
        return {"kind": "error", "error": "unavailable", "message": str(exc).splitlines()[0][:300]}
    return {"kind": "error", "error": "failed", "type": name, "message": ""}


class _Calls:
    def __init__(self, app: str, sender: _Sender) -> None:
        self.app, self.sender = app, sender
        self._handle: Any = None

    async def handle(self) -> Any:
        if self._handle is None:
            from ray import serve

            self._handle = await asyncio.to_thread(serve.get_app_handle, self.app)
        return self._handle

    async def run(self, msg: Message) -> None:
        rid = msg["id"]
        gen: Any = None
        try:
            handle = await self.handle()
            if msg["op"] == "info":
                info = await handle.info.remote()
                self.sender.send({"id": rid, "kind": "info", "info": info})
                return
            gen = handle.options(stream=True, method_name="generate").remote(msg["request"])
            async for out in gen:
                self.sender.send({"id": rid, **out})
        except asyncio.CancelledError:
            if gen is not None:
                gen.cancel()
            raise
        except Exception as exc:
            err = _classify(exc)
            if err["error"] == "unavailable":
                self._handle = None  # the application may come back under the same name
            elif err["error"] == "failed":
                logging.getLogger(__name__).exception("request %s failed", rid)
            self.sender.send({"id": rid, **err})


async def _serve(conn: Connection, sender: _Sender, app: str) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Message | None] = asyncio.Queue()

    def read() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(inbox.put_nowait, None)
                return
            loop.call_soon_threadsafe(inbox.put_nowait, msg)

    threading.Thread(target=read, daemon=True).start()
    calls = _Calls(app, sender)
    tasks: dict[int, asyncio.Task[None]] = {}
    while True:
        msg = await inbox.get()
        if msg is None or msg.get("op") == "close":
            break
        rid = msg["id"]
        if msg["op"] == "cancel":
            task = tasks.pop(rid, None)
            if task is not None:
                task.cancel()
            continue
        task = tasks[rid] = asyncio.create_task(calls.run(msg))

        def forget(_task: asyncio.Task[None], rid: int = rid) -> None:
            tasks.pop(rid, None)

        task.add_done_callback(forget)
    for task in tasks.values():
        task.cancel()


def _exit_with_parent() -> None:
    """The bot may die without a word (SIGKILL): the child goes with it, even while joining the cluster."""
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fd, address, app = int(args[0]), args[1], args[2]
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    conn = Connection(fd)
    os.dup2(2, 1)  # anything printed goes to the log; the socket carries only messages
    sender = _Sender(conn)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, _, port = address.rpartition(":")
    if host and port.isdigit():  # Ray would retry an unreachable address for a minute or more
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            sender.send({"kind": "down", "message": f"nothing answers at {address} ({exc.strerror or exc})"})
            return 3
    try:
        if address != "auto":
            use_token_auth()  # before Ray reads its configuration, at import
        import ray

        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        gcs = str(ray.get_runtime_context().gcs_address)
    except Exception as exc:
        text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        sender.send({"kind": "down", "message": text})
        return 3
    sender.send({"kind": "connected", "address": gcs})
    threading.Thread(target=_watch_gcs, args=(gcs, sender), daemon=True).start()
    asyncio.run(_serve(conn, sender, app))
    return 0


if __name__ == "__main__":
    sys.exit(main())
