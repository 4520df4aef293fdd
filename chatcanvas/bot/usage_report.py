"""Usage for every backend, per user and per server: images made, backend seconds, OpenAI spend.

Images come from the ``images`` table (what was made and kept), backend seconds from
``backend_usage`` (the local backend and every other unpaid one: "GPU-seconds"), dollars from
``openai_spend`` (:mod:`chatcanvas.generation.spending`). Periods are UTC days and months.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from chatcanvas import messages as m
from chatcanvas.bot.controls import PAID_BACKENDS
from chatcanvas.generation.spending import period_bounds

if TYPE_CHECKING:
    from chatcanvas.store import Store
    from chatcanvas.types import UserRef

__all__ = ["UsageRow", "format_usage", "usage_rows"]

By = Literal["user", "server"]


@dataclass
class UsageRow:
    platform: str
    who: str  # a user id, or a server id (by server)
    images_today: int = 0
    images_month: int = 0
    gpu_today: float = 0.0
    gpu_month: float = 0.0
    spend_today: float = 0.0
    spend_month: float = 0.0

    def add(self, other: UsageRow) -> None:
        self.images_today += other.images_today
        self.images_month += other.images_month
        self.gpu_today += other.gpu_today
        self.gpu_month += other.gpu_month
        self.spend_today += other.spend_today
        self.spend_month += other.spend_month


def usage_rows(
    store: Store,
    *,
    by: By = "user",
    server: str | None = None,
    user: UserRef | None = None,
    now: Callable[[], float] = time.time,
) -> list[UsageRow]:
    """This month's usage, grouped by user (platform + user id) or by server, biggest first.

    ``server``: only jobs asked in that server; ``user``: only that person (platform + user id).
    """
    t = now()
    day, _ = period_bounds(t, "daily")
    month, _ = period_bounds(t, "monthly")
    key = "user_id" if by == "user" else "server_id"

    def cond(at: str, prefix: str = "") -> tuple[str, list[object]]:
        where: list[str] = [f"{at} >= ?"]
        params: list[object] = [month]
        if server is not None:
            where.append(f"{prefix}server_id = ?")
            params.append(server)
        if user is not None:
            where += [f"{prefix}platform = ?", f"{prefix}user_id = ?"]
            params += [user.platform, user.user]
        return " AND ".join(where), params

    rows: dict[tuple[str, str], UsageRow] = {}

    def row(platform: str, k: str) -> UsageRow:
        return rows.setdefault((platform, k), UsageRow(platform, k))

    where, params = cond("i.created", "j.")
    for r in store.execute(
        f"SELECT j.platform AS platform, j.{key} AS k, SUM(CASE WHEN i.created >= ? THEN 1 ELSE 0 END) AS today,"
        f" COUNT(*) AS month FROM images i JOIN jobs j ON j.id = i.job_id WHERE {where} GROUP BY j.platform, k",
        (day, *params),
    ):
        got = row(r["platform"], r["k"])
        got.images_today, got.images_month = int(r["today"]), int(r["month"])
    where, params = cond("at")
    paid = ", ".join("?" for _ in PAID_BACKENDS)
    for r in store.execute(
        f"SELECT platform, {key} AS k, SUM(CASE WHEN at >= ? THEN seconds ELSE 0 END) AS today,"
        f" SUM(seconds) AS month FROM backend_usage WHERE {where} AND backend NOT IN ({paid})"
        " GROUP BY platform, k",
        (day, *params, *sorted(PAID_BACKENDS)),
    ):
        got = row(r["platform"], r["k"])
        got.gpu_today, got.gpu_month = float(r["today"]), float(r["month"])
    for r in store.execute(
        f"SELECT platform, {key} AS k, SUM(CASE WHEN at >= ? THEN cost_usd ELSE 0 END) AS today,"
        f" SUM(cost_usd) AS month FROM openai_spend WHERE {where} GROUP BY platform, k",
        (day, *params),
    ):
        got = row(r["platform"], r["k"])
        got.spend_today, got.spend_month = float(r["today"]), float(r["month"])
    return sorted(rows.values(), key=lambda u: (-u.gpu_month, -u.spend_month, -u.images_month, u.platform, u.who))


def format_usage(rows: list[UsageRow], *, by: By = "user", gpu_limit: float | None = None) -> str:
    """A table: images, GPU-seconds and OpenAI spend, today and this month (UTC), with a totals line."""
    if not rows:
        return m.OPS_USAGE_EMPTY
    head = ("platform", by, "images today", "month", "GPU-s today", "month", "spend today", "month")
    body = [_cells(r) for r in rows]
    total = UsageRow("all", "everyone")
    for r in rows:
        total.add(r)
    table = [head, *body, _cells(total)]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    text = "\n".join(line(r) for r in table)
    if gpu_limit is not None:
        text += "\n" + m.OPS_USAGE_GPU_LIMIT.format(limit=gpu_limit)
    return text


def _cells(r: UsageRow) -> tuple[str, ...]:
    return (
        r.platform,
        r.who or "-",
        str(r.images_today),
        str(r.images_month),
        _seconds(r.gpu_today),
        _seconds(r.gpu_month),
        f"${r.spend_today:.3f}",
        f"${r.spend_month:.3f}",
    )


def _seconds(s: float) -> str:
    """Backend seconds to two decimals; a small model's short runs keep one significant digit, not "0.00"."""
    return f"{s:.2f}" if s == 0 or s >= 0.01 else f"{s:.1g}"
