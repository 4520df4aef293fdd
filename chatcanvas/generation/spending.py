"""What the OpenAI images cost, who asked, and the spending limits checked before a request is sent.

Wiring (one line, after the engine is built): ``install(engine, store, settings)``. It adds

- an admission check (``engine.admission``): before an openai job is recorded, its estimated cost
  plus what the user (and their server) spent this UTC day / month plus the estimates of their
  openai jobs still queued or running must stay within the limits, else :class:`QuotaExceeded`
  and nothing reaches the provider;
- a done hook (``engine.on_done``): the job's cost (the sum of ``recipe.cost_usd``) is recorded
  with who asked.

Counting unfinished jobs from the ``jobs`` table (not an in-memory hold) means queueing many jobs at
once cannot slip past a limit, a failed or cancelled job frees its estimate by itself, and a
restart loses nothing.

User limits count a person across servers (``platform`` + ``user``); server limits count everyone
in one server (``platform`` + ``server``) and do not apply to DMs or the terminal (no server).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chatcanvas import messages as m
from chatcanvas.errors import QuotaExceeded
from chatcanvas.types import GeneratedImage, ImageSpec, UserRef

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.store import Store

__all__ = ["SpendLedger", "SpendRow", "format_report", "install", "period_bounds", "usage_report"]


def period_bounds(now: float, period: str) -> tuple[float, float]:
    """Start and end (unix time) of the UTC calendar ``"daily"`` / ``"monthly"`` period holding ``now``."""
    t = datetime.fromtimestamp(now, UTC)
    if period == "daily":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start.timestamp() + 86400
        return start.timestamp(), end
    start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.timestamp(), nxt.timestamp()


@dataclass(frozen=True)
class SpendRow:
    platform: str
    user: str
    images: int
    today: float
    month: float
    total: float


class SpendLedger:
    def __init__(self, store: Store, *, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self._now = now
        self._lock = threading.Lock()

    def install(self, engine: Any, settings: Settings) -> None:
        """Record each job's cost when it is done (the policy checks the limits before it is queued)."""

        def done(rec: Any, images: list[GeneratedImage]) -> None:
            self.record_images(rec.who, rec.id, images)

        engine.on_done.append(done)

    # ------------------------------------------------------------ before

    def check(self, who: UserRef, spec: ImageSpec | float, settings: Settings) -> float:
        """Raise :class:`QuotaExceeded` if ``spec`` (or a cost in USD) would go past a limit.

        Counts what was spent in the period plus the estimates of ``who``'s unfinished openai jobs.
        Returns the estimated cost of ``spec``.
        """
        from chatcanvas.generation.pricing import estimate_cost

        cost = estimate_cost(spec, settings) if isinstance(spec, ImageSpec) else float(spec)
        limits = (
            ("user", "daily", settings.spend_limit_user_daily),
            ("user", "monthly", settings.spend_limit_user_monthly),
            ("server", "daily", settings.spend_limit_server_daily),
            ("server", "monthly", settings.spend_limit_server_monthly),
        )
        with self._lock:
            now = self._now()
            pending: dict[str, float] = {}
            for scope, period, limit in limits:
                if limit is None or (scope == "server" and not who.server):
                    continue
                if scope not in pending:
                    pending[scope] = self._pending(who, scope, settings)
                start, end = period_bounds(now, period)
                spent = self._spent(who, scope, start) + pending[scope]
                if spent + cost > limit + 1e-9:
                    if scope == "server":
                        msg = m.SERVER_SPEND_LIMIT.format(period=period, limit=limit, spent=spent, cost=cost)
                    elif spent >= limit - 1e-9:
                        msg = m.SPEND_LIMIT.format(period=period, limit=limit, spent=spent)
                    else:
                        msg = m.SPEND_LIMIT_WOULD_EXCEED.format(
                            cost=cost, period=period, limit=limit, spent=spent
                        )
                    raise QuotaExceeded(msg, retry_after=max(0.0, end - now))
        return cost

    def _pending(self, who: UserRef, scope: str, settings: Settings) -> float:
        """Estimated cost of ``who``'s (or their server's) openai jobs still queued or running."""
        from chatcanvas.generation.pricing import estimate_cost

        column, key = ("server_id", who.server) if scope == "server" else ("user_id", who.user)
        rows = self.store.execute(
            f"SELECT spec FROM jobs WHERE status IN ('queued', 'running') AND platform = ? AND {column} = ?"
            " AND json_extract(spec, '$.backend') = 'openai'",
            (who.platform, key),
        )
        total = 0.0
        for row in rows:
            try:
                total += estimate_cost(ImageSpec.model_validate_json(row[0]), settings)
            except Exception:  # a job this configuration can't price: it will fail on its own
                continue
        return total

    # ------------------------------------------------------------ after

    def record(self, who: UserRef, job_id: str, cost: float, model: str, images: int = 1) -> None:
        with self._lock:
            self.store.execute(
                "INSERT INTO openai_spend (at, platform, user_id, server_id, job_id, model, images, cost_usd)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self._now(), who.platform, who.user, who.server, job_id, model, images, float(cost)),
            )

    def record_images(self, who: UserRef, job_id: str, images: Iterable[GeneratedImage]) -> float:
        """Record the cost of a finished job's openai images (others are free); returns the sum."""
        paid = [i for i in images if i.recipe.backend == "openai" and i.recipe.cost_usd is not None]
        if not paid:
            return 0.0
        total = sum(i.recipe.cost_usd or 0.0 for i in paid)
        self.record(who, job_id, total, paid[0].recipe.model, images=len(paid))
        return total

    # ------------------------------------------------------------ reading

    def spent(self, who: UserRef, period: str, scope: str = "user") -> float:
        start, _ = period_bounds(self._now(), period)
        return self._spent(who, scope, start)

    def _spent(self, who: UserRef, scope: str, since: float) -> float:
        column, key = ("server_id", who.server) if scope == "server" else ("user_id", who.user)
        sql = f"SELECT COALESCE(SUM(cost_usd), 0) FROM openai_spend WHERE platform=? AND {column}=? AND at>=?"
        return float(self.store.execute(sql, (who.platform, key, since))[0][0])

    def report(self) -> list[SpendRow]:
        """Spend by user, biggest spender first."""
        now = self._now()
        day, _ = period_bounds(now, "daily")
        month, _ = period_bounds(now, "monthly")
        rows = self.store.execute(
            "SELECT platform, user_id, SUM(images) AS images,"
            " SUM(CASE WHEN at >= ? THEN cost_usd ELSE 0 END) AS today,"
            " SUM(CASE WHEN at >= ? THEN cost_usd ELSE 0 END) AS month,"
            " SUM(cost_usd) AS total"
            " FROM openai_spend GROUP BY platform, user_id ORDER BY total DESC, platform, user_id",
            (day, month),
        )
        return [
            SpendRow(
                r["platform"],
                r["user_id"],
                int(r["images"]),
                float(r["today"]),
                float(r["month"]),
                float(r["total"]),
            )
            for r in rows
        ]


def format_report(rows: list[SpendRow]) -> str:
    if not rows:
        return m.USAGE_EMPTY
    head = ("platform", "user", "images", "today", "this month", "total")
    body = [
        (r.platform, r.user, str(r.images), f"${r.today:.3f}", f"${r.month:.3f}", f"${r.total:.3f}")
        for r in rows
    ]
    totals = (
        "",
        "all users",
        str(sum(r.images for r in rows)),
        f"${sum(r.today for r in rows):.3f}",
        f"${sum(r.month for r in rows):.3f}",
        f"${sum(r.total for r in rows):.3f}",
    )
    table = [head, *body, totals]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(head), *(line(r) for r in body), line(totals)])


def usage_report(store: Store, settings: Settings) -> str:
    """What ``chatcanvas usage`` prints: OpenAI image spend by user (UTC day and month), and the limits."""
    text = format_report(SpendLedger(store).report())
    limits = [
        (name, value)
        for name, value in (
            ("per user per day", settings.spend_limit_user_daily),
            ("per user per month", settings.spend_limit_user_monthly),
            ("per server per day", settings.spend_limit_server_daily),
            ("per server per month", settings.spend_limit_server_monthly),
        )
        if value is not None
    ]
    if limits:
        text += "\nLimits: " + ", ".join(f"${v:.2f} {n}" for n, v in limits)
    return text


def install(engine: Any, store: Store, settings: Settings) -> SpendLedger:
    """Record each openai job's cost when it is done; :meth:`SpendLedger.check` is the policy's spending rule."""
    ledger = SpendLedger(store)
    ledger.install(engine, settings)
    return ledger
