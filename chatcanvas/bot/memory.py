"""Conversation memory: the last specs (and image ids) per conversation, in SQLite.

The key is :attr:`chatcanvas.types.ChatTurn.conversation` (the thread or channel plus the user), so
"make it blue" edits what this person made here last, and a restart keeps it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from pydantic import TypeAdapter, ValidationError

from chatcanvas.store import Store
from chatcanvas.types import ImageSpec

_SPECS = TypeAdapter(list[ImageSpec])
KEEP_DAYS = 30.0


class ConversationMemory:
    def __init__(self, store: Store, keep_days: float = KEEP_DAYS) -> None:
        self.store = store
        self.keep_s = keep_days * 86400

    def last(self, conversation: str) -> list[ImageSpec] | None:
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT specs, updated FROM conversation_memory WHERE conversation = ?", (conversation,)
            ).fetchone()
        if row is None or time.time() - row[1] > self.keep_s:
            return None
        try:
            specs = _SPECS.validate_json(row[0])
        except ValidationError:  # written by an older version: forget it rather than fail the turn
            return None
        return specs or None

    def last_images(self, conversation: str) -> list[str]:
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT images FROM conversation_memory WHERE conversation = ?", (conversation,)
            ).fetchone()
        try:
            ids = json.loads(row[0]) if row else []
        except ValueError:
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    def remember(self, conversation: str, specs: Sequence[ImageSpec]) -> None:
        if not specs:
            return
        data = _SPECS.dump_json(list(specs)).decode()
        with self.store.lock:
            self.store.db.execute(
                "INSERT INTO conversation_memory (conversation, specs, images, updated) "
                "VALUES (?, ?, '[]', ?) "
                "ON CONFLICT(conversation) DO UPDATE SET specs = excluded.specs, images = '[]', "
                "updated = excluded.updated",
                (conversation, data, time.time()),
            )
            self._forget_old()

    def remember_images(self, conversation: str, image_ids: Sequence[str]) -> None:
        """Add image ids made in this conversation (the newest last; the last 16 are kept)."""
        if not image_ids:
            return
        ids = [*self.last_images(conversation), *image_ids][-16:]
        with self.store.lock:
            self.store.db.execute(
                "INSERT INTO conversation_memory (conversation, specs, images, updated) "
                "VALUES (?, '[]', ?, ?) ON CONFLICT(conversation) DO UPDATE SET "
                "images = excluded.images, updated = excluded.updated",
                (conversation, json.dumps(ids), time.time()),
            )

    def forget(self, conversation: str) -> None:
        with self.store.lock:
            self.store.db.execute("DELETE FROM conversation_memory WHERE conversation = ?", (conversation,))

    def _forget_old(self) -> None:
        self.store.db.execute(
            "DELETE FROM conversation_memory WHERE updated < ?", (time.time() - self.keep_s,)
        )
