"""Named, re-runnable migrations. Append only; a name runs once per database."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "core_0001_jobs",
        """
        CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,            -- queued | running | done | failed | cancelled
            spec TEXT NOT NULL,              -- ImageSpec JSON, fully resolved (seed set)
            platform TEXT NOT NULL,
            user_id TEXT NOT NULL,
            server_id TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL DEFAULT '',
            thread TEXT NOT NULL DEFAULT '',
            prompt_in TEXT NOT NULL DEFAULT '', -- what the user wrote
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            delivered INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            started REAL,
            finished REAL
        );
        CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
        CREATE INDEX IF NOT EXISTS jobs_user ON jobs(platform, user_id, created);
        CREATE TABLE IF NOT EXISTS images (
            id TEXT NOT NULL,
            job_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            path TEXT NOT NULL,
            recipe TEXT NOT NULL,
            seconds REAL NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            PRIMARY KEY (job_id, idx)
        );
        CREATE INDEX IF NOT EXISTS images_id ON images(id);
        CREATE TABLE IF NOT EXISTS job_events (
            job_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (job_id, seq)
        );
        """,
    ),
    (
        "openai_0001_spend",
        """
        CREATE TABLE IF NOT EXISTS openai_spend (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,                -- unix time
            platform TEXT NOT NULL,
            user_id TEXT NOT NULL,
            server_id TEXT NOT NULL DEFAULT '',
            job_id TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL,
            images INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS openai_spend_user ON openai_spend(platform, user_id, at);
        CREATE INDEX IF NOT EXISTS openai_spend_server ON openai_spend(platform, server_id, at);
        """,
    ),
    (
        "rewriter_0001_memory",
        """
        CREATE TABLE IF NOT EXISTS conversation_memory (
            conversation TEXT PRIMARY KEY,   -- ChatTurn.conversation: platform:channel:thread:user
            specs TEXT NOT NULL,             -- JSON list of the last ImageSpecs made in it
            images TEXT NOT NULL DEFAULT '[]', -- JSON list of the last image ids made in it
            updated REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS conversation_memory_updated ON conversation_memory(updated);
        """,
    ),
    (
        "safety_0001_audit",
        """
        CREATE TABLE IF NOT EXISTS refusals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,                -- unix time
            user_key TEXT NOT NULL,          -- UserRef.key of who asked
            platform TEXT NOT NULL,
            place TEXT NOT NULL DEFAULT '',  -- platform:channel:thread (store.db.place_key)
            rule TEXT NOT NULL,              -- the rule that refused, e.g. blocked_terms#3, moderation:violence
            reason TEXT NOT NULL DEFAULT '', -- the refusal as the user saw it
            retry_after REAL,                -- seconds, when the rule knows
            text TEXT                        -- what was asked: only with CHATCANVAS_AUDIT_TEXT=1
        );
        CREATE INDEX IF NOT EXISTS refusals_at ON refusals(at);
        CREATE INDEX IF NOT EXISTS refusals_rule ON refusals(rule, at);
        CREATE INDEX IF NOT EXISTS refusals_user ON refusals(user_key, at);
        """,
    ),
    (
        "safety_0002_upload_owners",
        """
        CREATE TABLE IF NOT EXISTS uploads (
            id TEXT NOT NULL,                -- the store id of an uploaded image (u + 31 hex)
            owner TEXT NOT NULL DEFAULT '',  -- UserRef.key of who uploaded it ('' when not known)
            place TEXT NOT NULL DEFAULT '',  -- where it was uploaded: platform:channel:thread
            created REAL NOT NULL,
            PRIMARY KEY (id, owner, place)
        );
        CREATE INDEX IF NOT EXISTS uploads_owner ON uploads(owner, created);
        """,
    ),
    (
        "policy_0001_api_key_usage",
        """
        CREATE TABLE IF NOT EXISTS web_api_usage (
            key_id TEXT NOT NULL,            -- adapters/web/auth.py key_id(): a hash, never the key
            day TEXT NOT NULL,               -- UTC date, YYYY-MM-DD
            images INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, day)
        );
        """,
    ),
    (
        "ops_0001_admin",
        """
        CREATE TABLE IF NOT EXISTS bans (
            platform TEXT NOT NULL,
            server_id TEXT NOT NULL DEFAULT '', -- '' bans the user everywhere
            user_id TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            by TEXT NOT NULL DEFAULT '',     -- UserRef.key of the operator
            at REAL NOT NULL,
            PRIMARY KEY (platform, server_id, user_id)
        );
        CREATE TABLE IF NOT EXISTS paused_backends (
            backend TEXT PRIMARY KEY,
            reason TEXT NOT NULL DEFAULT '',
            by TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS backend_usage (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,                -- unix time the backend call ended
            platform TEXT NOT NULL,
            user_id TEXT NOT NULL,
            server_id TEXT NOT NULL DEFAULT '',
            job_id TEXT NOT NULL,
            backend TEXT NOT NULL,
            images INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL            -- the batch's backend time, this job's share by image count
        );
        CREATE INDEX IF NOT EXISTS backend_usage_user ON backend_usage(platform, user_id, at);
        CREATE INDEX IF NOT EXISTS backend_usage_server ON backend_usage(platform, server_id, at);
        CREATE TABLE IF NOT EXISTS admin_actions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            actor TEXT NOT NULL,             -- UserRef.key of the operator
            action TEXT NOT NULL,            -- cancel, pause, resume, ban, unban
            target TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS ops_heartbeat (
            id INTEGER PRIMARY KEY,          -- one row, rewritten by the readiness check
            at REAL NOT NULL
        );
        """,
    ),
]
