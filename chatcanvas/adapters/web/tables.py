"""The web adapter's own tables: which engine jobs each API request started (status is derived from the job records)."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "web_0001_api",
        """
        CREATE TABLE IF NOT EXISTS web_api_usage (
            key_id TEXT NOT NULL,            -- adapters/web/auth.py key_id(): a hash, never the key
            day TEXT NOT NULL,               -- UTC date, YYYY-MM-DD
            images INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, day)
        );
        CREATE TABLE IF NOT EXISTS web_jobs (
            id TEXT PRIMARY KEY,             -- the API's job id (one request: one or more engine jobs)
            key_id TEXT NOT NULL DEFAULT '',
            user_key TEXT NOT NULL,          -- UserRef.key of who asked
            kind TEXT NOT NULL,              -- generation | variations | reroll | vary
            data TEXT NOT NULL,              -- the job's JSON snapshot (engine job ids, prompts, texts, images)
            created REAL NOT NULL,
            finished REAL
        );
        """,
    ),
    (
        "web_0002_requests",
        """
        DROP TABLE IF EXISTS web_jobs;
        CREATE TABLE IF NOT EXISTS web_requests (
            id TEXT PRIMARY KEY,             -- the API's job id (one request: one or more engine jobs)
            key_id TEXT NOT NULL DEFAULT '',
            user_key TEXT NOT NULL,          -- UserRef.key of who asked
            kind TEXT NOT NULL,              -- generation | variations | reroll | vary
            job_ids TEXT NOT NULL DEFAULT '[]', -- JSON list of the engine jobs it started
            texts TEXT NOT NULL DEFAULT '[]',   -- JSON list of the assistant's texts
            errors TEXT NOT NULL DEFAULT '[]',  -- JSON list of refusals and failures before any job
            created REAL NOT NULL
        );
        """,
    ),
]
