"""Exactly-once handling of Slack deliveries, across restarts.

Slack retries an event it thinks we missed (``X-Slack-Retry-Num``), and a slow network can deliver
an interaction twice. Every delivery carries an id (``event_id`` for the Events API, ``trigger_id``
for commands and buttons); the first time we see one we record it in SQLite *before* acknowledging,
so a retry, even one reaching a restarted process, is recognised and does nothing.
"""

from __future__ import annotations

import asyncio
import time

from chatcanvas.adapters.slack.tables import MIGRATIONS
from chatcanvas.store import Store

KEEP_S = 24 * 3600  # Slack retries for minutes; a day is plenty


class Seen:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate(MIGRATIONS)
        self._last_prune = 0.0

    def first_time_sync(self, key: str) -> bool:
        now = time.time()
        with self.store.lock:
            cur = self.store.db.execute(
                "INSERT OR IGNORE INTO slack_seen (key, at) VALUES (?, ?)", (key, now)
            )
            fresh = cur.rowcount == 1
            if now - self._last_prune > 3600:
                self._last_prune = now
                self.store.db.execute("DELETE FROM slack_seen WHERE at < ?", (now - KEEP_S,))
        return fresh

    async def first_time(self, key: str) -> bool:
        """True the first time ``key`` is offered, False for every repeat (this process or an earlier one)."""
        return await asyncio.to_thread(self.first_time_sync, key)
