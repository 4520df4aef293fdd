"""The Discord adapter's own table (members' /settings), as a named migration of the store."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "discord_0001_prefs",
        """
        CREATE TABLE IF NOT EXISTS discord_prefs (
            user_id TEXT PRIMARY KEY,        -- the Discord user id
            prefs TEXT NOT NULL,             -- JSON: aspect, count, style, negative, backend
            updated REAL NOT NULL
        );
        """,
    ),
]
