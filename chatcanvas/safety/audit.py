"""The refusal audit log: every refused request, who / where / when / which rule, in the store.

The text that was refused is kept only with ``CHATCANVAS_AUDIT_TEXT=1`` (and with secrets
scrubbed); otherwise the log says who was refused under which rule, never what they wrote.
``chatcanvas audit [--limit N] [--rule R] [--json]`` shows it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from chatcanvas import messages as m
from chatcanvas.store.db import place_key

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.store import Store
    from chatcanvas.types import Place, UserRef

__all__ = ["RefusalRecord", "format_refusals", "record_refusal", "refusals"]

MAX_TEXT_CHARS = 4000


class RefusalRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    at: float  # unix time
    user_key: str  # UserRef.key
    platform: str
    place: str  # platform:channel:thread
    rule: str
    reason: str = ""
    retry_after: float | None = None
    text: str | None = None  # only with CHATCANVAS_AUDIT_TEXT=1

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def record_refusal(
    store: Store,
    who: UserRef,
    where: Place | None,
    rule: str,
    text: str | None,
    settings: Settings,
    *,
    reason: str = "",
    retry_after: float | None = None,
    at: float | None = None,
) -> int:
    """Record one refusal; returns its row id. ``text`` is stored only if ``settings.audit_text``."""
    kept: str | None = None
    if settings.audit_text and text:
        from chatcanvas.safety.redact import scrub

        kept = scrub(text, settings)[:MAX_TEXT_CHARS]
    with store.lock:
        cur = store.db.execute(
            "INSERT INTO refusals (at, user_key, platform, place, rule, reason, retry_after, text) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time() if at is None else at,
                who.key,
                who.platform,
                place_key(where) if where is not None else "",
                rule,
                reason,
                retry_after,
                kept,
            ),
        )
        return int(cur.lastrowid or 0)


def refusals(
    store: Store, *, limit: int = 50, rule: str | None = None, user: str | None = None
) -> list[RefusalRecord]:
    """The latest refusals, newest first. ``rule`` matches the name or its family: ``moderation`` takes
    ``moderation:violence`` too, ``blocked_terms`` every ``blocked_terms#N``."""
    sql = "SELECT id, at, user_key, platform, place, rule, reason, retry_after, text FROM refusals"
    where: list[str] = []
    params: list[object] = []
    if rule:
        where.append("(rule = ? OR substr(rule, 1, ?) IN (?, ?))")
        params += [rule, len(rule) + 1, rule + ":", rule + "#"]
    if user:
        where.append("user_key = ?")
        params.append(user)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY at DESC, id DESC LIMIT ?"
    params.append(max(0, limit))
    return [RefusalRecord(**dict(r)) for r in store.execute(sql, tuple(params))]


def format_refusals(records: list[RefusalRecord], *, as_json: bool = False) -> str:
    """For ``chatcanvas audit``: one line per refusal, or JSON lines."""
    if as_json:
        return "\n".join(json.dumps(r.model_dump(), ensure_ascii=False) for r in records)
    if not records:
        return m.AUDIT_EMPTY
    lines = []
    for r in records:
        line = f"{r.when}  {r.rule:<24}  {r.user_key}  {r.place or '-'}"
        if r.retry_after is not None:
            line += f"  retry after {r.retry_after:.0f} s"
        if r.text is not None:
            line += f"  {json.dumps(r.text, ensure_ascii=False)}"
        lines.append(line)
    return "\n".join(lines)
