"""The threads the bot takes part in (so plain replies there continue the conversation), and the last
image a user shared in each, with its mask if one came along (for "variations" asked after the upload)."""

from __future__ import annotations

import asyncio
import time

from chatcanvas.adapters.slack.tables import MIGRATIONS
from chatcanvas.store import Store


class Threads:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate(MIGRATIONS)

    def _join(self, channel: str, thread_ts: str) -> None:
        self.store.execute(
            "INSERT INTO slack_threads (channel, thread_ts, at) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, thread_ts) DO UPDATE SET at = excluded.at",
            (channel, thread_ts, time.time()),
        )

    async def join(self, channel: str, thread_ts: str) -> None:
        if thread_ts:
            await asyncio.to_thread(self._join, channel, thread_ts)

    async def leave(self, channel: str, thread_ts: str) -> None:
        await asyncio.to_thread(
            self.store.execute, "DELETE FROM slack_threads WHERE channel = ? AND thread_ts = ?", (channel, thread_ts)
        )

    async def is_ours(self, channel: str, thread_ts: str) -> bool:
        rows = await asyncio.to_thread(
            self.store.execute,
            "SELECT 1 FROM slack_threads WHERE channel = ? AND thread_ts = ?",
            (channel, thread_ts),
        )
        return bool(rows)

    async def remember_file(self, channel: str, thread_ts: str, file_id: str, mask_id: str | None = None) -> None:
        """The photo (and mask) shared in a thread, or in a DM answered in place (``thread_ts`` "")."""
        await asyncio.to_thread(
            self.store.execute,
            "INSERT INTO slack_threads (channel, thread_ts, at, last_file, last_mask) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, thread_ts) DO UPDATE SET at = excluded.at, last_file = excluded.last_file,"
            " last_mask = excluded.last_mask",
            (channel, thread_ts, time.time(), file_id, mask_id),
        )

    async def last_file(self, channel: str, thread_ts: str) -> tuple[str, str | None] | None:
        """The last photo shared in the thread and its mask (file ids), if any."""
        rows = await asyncio.to_thread(
            self.store.execute,
            "SELECT last_file, last_mask FROM slack_threads WHERE channel = ? AND thread_ts = ?",
            (channel, thread_ts),
        )
        return (str(rows[0][0]), rows[0][1]) if rows and rows[0][0] else None
