"""Per-user defaults for /imagine (``discord_prefs`` table) and the /history query."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatcanvas.adapters.discord.tables import MIGRATIONS
from chatcanvas.store import Store
from chatcanvas.types import MAX_PROMPT_CHARS, Aspect, Recipe

AspectName = Literal["square", "landscape", "portrait", "wide", "tall"]


class UserPrefs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    aspect: Aspect | None = None
    count: int | None = Field(default=None, ge=1, le=64)
    style: str | None = None
    negative: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    backend: str | None = None

    def lines(self) -> list[str]:
        return [f"• **{k}**: {v}" for k, v in self.model_dump(mode="json", exclude_none=True).items()]

    @property
    def empty(self) -> bool:
        return not self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class HistoryItem:
    image_id: str
    job_id: str
    recipe: Recipe
    created: float


class Prefs:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate(MIGRATIONS)

    def get(self, user_id: str) -> UserPrefs:
        rows = self.store.execute("SELECT prefs FROM discord_prefs WHERE user_id = ?", (user_id,))
        if not rows:
            return UserPrefs()
        return UserPrefs.model_validate(json.loads(rows[0][0]))

    def update(self, user_id: str, **changes: object) -> UserPrefs:
        current = self.get(user_id).model_dump()
        current.update({k: v for k, v in changes.items() if v is not None})
        prefs = UserPrefs.model_validate(current)
        self.store.execute(
            "INSERT INTO discord_prefs (user_id, prefs, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET prefs = excluded.prefs, updated = excluded.updated",
            (user_id, prefs.model_dump_json(exclude_none=True), time.time()),
        )
        return prefs

    def clear(self, user_id: str) -> None:
        self.store.execute("DELETE FROM discord_prefs WHERE user_id = ?", (user_id,))

    def history(self, user_id: str, limit: int = 10) -> list[HistoryItem]:
        """This user's most recent images on Discord, newest first (from the engine's job log)."""
        rows = self.store.execute(
            "SELECT images.id, images.job_id, images.recipe, images.created FROM images "
            "JOIN jobs ON jobs.id = images.job_id "
            "WHERE jobs.platform = 'discord' AND jobs.user_id = ? "
            "ORDER BY images.created DESC, images.idx ASC LIMIT ?",
            (user_id, limit),
        )
        return [HistoryItem(r[0], r[1], Recipe.model_validate_json(r[2]), float(r[3])) for r in rows]
