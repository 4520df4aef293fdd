"""The Slack adapter's own tables (seen deliveries, threads), as named migrations of the store."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "slack_0001_seen",
        """
        CREATE TABLE IF NOT EXISTS slack_seen (
            key TEXT PRIMARY KEY,            -- "event:<event_id>" / "trigger:<trigger_id>"
            at REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS slack_seen_at ON slack_seen(at);
        CREATE TABLE IF NOT EXISTS slack_threads (
            channel TEXT NOT NULL,
            thread_ts TEXT NOT NULL,
            last_file TEXT,                  -- the last image file id shared in the thread
            at REAL NOT NULL,
            PRIMARY KEY (channel, thread_ts)
        );
        """,
    ),
    (
        "slack_0002_thread_mask",
        "ALTER TABLE slack_threads ADD COLUMN last_mask TEXT;  -- the mask file shared with it, if any",
    ),
]
