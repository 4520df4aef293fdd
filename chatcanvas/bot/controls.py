"""What operators set and what the backends used, in the store: bans, paused backends, backend time.

Tables come from the ``ops_0001_admin`` migration. Everything here is a few SQL statements on the
shared :class:`~chatcanvas.store.Store`, so the policy (a request from a banned user, for a paused
backend, over a GPU-seconds cap), the :class:`~chatcanvas.bot.admin.Admin` facade and the
``chatcanvas admin`` command in another process all see the same state.

A ban names ``(platform, server, user)``; server ``""`` bans the user everywhere (the command line),
a server bans them there only (a Discord guild's or Slack workspace's admin). A pause names a backend
and holds for every server: nothing new is admitted for it and its queued jobs wait.

Backend time is the wall time of the backend call that made a batch, shared among the batch's jobs
by their image count ("GPU-seconds" for the local backend and any other that is not ``openai``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from chatcanvas import messages as m

if TYPE_CHECKING:
    from chatcanvas.store import Store
    from chatcanvas.types import UserRef

__all__ = ["Ban", "Controls", "Pause", "PAID_BACKENDS", "share_batch_seconds"]

PAID_BACKENDS = frozenset({"openai"})  # billed in dollars (spending.py), not in backend time


class Ban(BaseModel):
    model_config = ConfigDict(frozen=True)

    platform: str
    server: str  # "" everywhere
    user: str
    reason: str = ""
    by: str = ""  # UserRef.key of who banned
    at: float = 0.0


class Pause(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: str
    reason: str = ""
    by: str = ""
    at: float = 0.0


def share_batch_seconds(seconds: float, counts: Sequence[int]) -> list[float]:
    """One backend call's seconds shared among its jobs in proportion to their image counts."""
    total = sum(max(0, c) for c in counts)
    if total <= 0:
        return [seconds / len(counts) if counts else 0.0 for _ in counts]
    return [seconds * max(0, c) / total for c in counts]


class Controls:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------ bans

    def ban(self, platform: str, server: str, user: str, *, by: str = "", reason: str = "") -> bool:
        """Ban ``user`` (in ``server``; "" everywhere). False when that ban was already there."""
        with self.store.lock:
            cur = self.store.db.execute(
                "INSERT OR IGNORE INTO bans (platform, server_id, user_id, reason, by, at) VALUES (?, ?, ?, ?, ?, ?)",
                (platform, server, user, reason, by, time.time()),
            )
            return cur.rowcount > 0

    def unban(self, platform: str, server: str, user: str) -> bool:
        """Lift the ban on ``user`` in ``server`` ("" lifts the everywhere ban). False if there was none."""
        with self.store.lock:
            cur = self.store.db.execute(
                "DELETE FROM bans WHERE platform = ? AND server_id = ? AND user_id = ?", (platform, server, user)
            )
            return cur.rowcount > 0

    def banned(self, who: UserRef) -> Ban | None:
        """The ban that stops ``who`` where they are asking (this server's, or an everywhere ban)."""
        rows = self.store.execute(
            "SELECT platform, server_id, user_id, reason, by, at FROM bans"
            " WHERE platform = ? AND user_id = ? AND server_id IN ('', ?) ORDER BY server_id LIMIT 1",
            (who.platform, who.user, who.server),
        )
        return _ban(rows[0]) if rows else None

    def bans(self, server: str | None = None) -> list[Ban]:
        """Every ban (``server``: that server's and the everywhere ones), newest first."""
        sql = "SELECT platform, server_id, user_id, reason, by, at FROM bans"
        params: tuple[object, ...] = ()
        if server is not None:
            sql += " WHERE server_id IN ('', ?)"
            params = (server,)
        return [_ban(r) for r in self.store.execute(sql + " ORDER BY at DESC", params)]

    # ------------------------------------------------------------ pauses

    def pause(self, backend: str, *, by: str = "", reason: str = "") -> bool:
        with self.store.lock:
            cur = self.store.db.execute(
                "INSERT OR IGNORE INTO paused_backends (backend, reason, by, at) VALUES (?, ?, ?, ?)",
                (backend, reason, by, time.time()),
            )
            return cur.rowcount > 0

    def resume(self, backend: str) -> bool:
        with self.store.lock:
            cur = self.store.db.execute("DELETE FROM paused_backends WHERE backend = ?", (backend,))
            return cur.rowcount > 0

    def paused(self) -> dict[str, Pause]:
        rows = self.store.execute("SELECT backend, reason, by, at FROM paused_backends ORDER BY backend")
        return {r[0]: Pause(backend=r[0], reason=r[1], by=r[2], at=r[3]) for r in rows}

    def is_paused(self, backend: str) -> bool:
        return bool(self.store.execute("SELECT 1 FROM paused_backends WHERE backend = ?", (backend,)))

    # ------------------------------------------------------------ backend time

    def record_seconds(
        self, job_id: str, who: UserRef, backend: str, images: int, seconds: float, *, at: float | None = None
    ) -> None:
        self.store.execute(
            "INSERT INTO backend_usage (at, platform, user_id, server_id, job_id, backend, images, seconds)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (time.time() if at is None else at, who.platform, who.user, who.server, job_id, backend, images, seconds),
        )

    def gpu_seconds(self, who: UserRef, since: float) -> float:
        """Backend time of ``who`` (a person across servers: platform + user) on unpaid backends since then."""
        rows = self.store.execute(
            "SELECT COALESCE(SUM(seconds), 0) FROM backend_usage WHERE platform = ? AND user_id = ? AND at >= ?"
            f" AND backend NOT IN ({', '.join('?' for _ in PAID_BACKENDS)})",
            (who.platform, who.user, since, *sorted(PAID_BACKENDS)),
        )
        return float(rows[0][0])

    # ------------------------------------------------------------ admin log, health

    def log_action(self, actor: str, action: str, target: str) -> None:
        """Keep what an operator did (who, what, to what) next to the state it changed."""
        self.store.execute(
            "INSERT INTO admin_actions (at, actor, action, target) VALUES (?, ?, ?, ?)",
            (time.time(), actor, action, target),
        )

    def writable(self) -> tuple[bool, str]:
        """Whether the store takes writes (the database and the images folder), and why not."""
        try:
            self.store.execute(
                "INSERT INTO ops_heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (time.time(),),
            )
        except sqlite3.Error as exc:
            return False, m.NOT_READY_STORE.format(path=self.store.path, detail=exc)
        probe = self.store.images_dir / f".ready-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return False, m.NOT_READY_STORE.format(path=self.store.images_dir, detail=exc.strerror or exc)
        return True, ""


def _ban(r: sqlite3.Row) -> Ban:
    return Ban(platform=r[0], server=r[1], user=r[2], reason=r[3], by=r[4], at=r[5])
