"""``chatcanvas admin ...`` and ``chatcanvas doctor``. Standard library only at import (``--help`` stays fast).

``admin`` works on the store of ``CHATCANVAS_DATA_DIR`` directly, so it reaches a running
``chatcanvas run`` in another process: bans and pauses are read by its policy on each request, a
paused backend's workers look again within a second, a cancelled queued job is skipped.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatcanvas.config import Settings

ADMIN_ACTIONS = ("queue", "cancel", "pause", "resume", "ban", "unban", "usage")


def add_parsers(sub: Any) -> None:
    ad = sub.add_parser(
        "admin",
        help="the operator's commands on the store: queue, cancel, pause/resume a backend, ban/unban, usage",
        description="queue | cancel JOB | pause BACKEND | resume BACKEND | ban USER | unban USER | usage [USER]. "
        "USER is platform:user (everywhere) or platform:server:user, e.g. discord:123456789012345678.",
    )
    ad.add_argument("action", choices=ADMIN_ACTIONS)
    ad.add_argument("target", nargs="?", help="a job id, a backend name or a user")
    ad.add_argument("--reason", default="", help="why (kept in the admin log)")

    doc = sub.add_parser("doctor", help="check the configuration, data folder, model and platforms (exit 0: ready)")
    doc.add_argument("--offline", action="store_true", help="no live calls to Slack, Discord or OpenAI")
    doc.add_argument("--skip-model", action="store_true", help="do not load the model and draw the test image")


def _actor() -> Any:
    from chatcanvas.types import UserRef

    try:
        name = getpass.getuser()
    except Exception:
        name = "cli"
    return UserRef(platform="cli", user=name)


async def run_admin(args: argparse.Namespace, settings: Settings) -> int:
    from chatcanvas.bot.admin import Admin, parse_user_key
    from chatcanvas.store import Store

    store = Store(settings.data_dir)
    admin = Admin(store, settings)
    actor = _actor()
    try:
        action, target = args.action, (args.target or "").strip()
        if action == "queue":
            print(admin.queue_text(actor, limit=200))
            return 0
        if action == "usage":
            print(admin.usage_text(actor, parse_user_key(target) if target else None))
            return 0
        if not target:
            what = {"cancel": "job id", "pause": "backend", "resume": "backend"}.get(action, "user")
            print(f"error: admin {action} needs a {what}", file=sys.stderr)
            return 2
        if action == "cancel":
            print(await admin.cancel(target, actor))
        elif action == "pause":
            print(admin.pause(target, actor, args.reason))
        elif action == "resume":
            print(admin.resume(target, actor))
        elif action == "ban":
            print(admin.ban(parse_user_key(target), actor, args.reason))
        else:
            print(admin.unban(parse_user_key(target), actor))
        return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


async def run_doctor(args: argparse.Namespace) -> int:
    from chatcanvas.ops.doctor import run_doctor as doctor

    return await doctor(sys.stdout, live=not args.offline, model=not args.skip_model)


def usage_tables(settings: Settings) -> str:
    """What ``chatcanvas usage`` prints: OpenAI spend by user, then every backend's usage by user and server."""
    from chatcanvas import messages as m
    from chatcanvas.bot.usage_report import format_usage, usage_rows
    from chatcanvas.generation.spending import usage_report
    from chatcanvas.store import Store

    store = Store(settings.data_dir)
    try:
        parts = [
            m.USAGE_HEAD_OPENAI,
            usage_report(store, settings),
            "",
            m.USAGE_HEAD_BY_USER,
            format_usage(usage_rows(store, by="user"), gpu_limit=settings.gpu_seconds_limit_user_daily),
            "",
            m.USAGE_HEAD_BY_SERVER,
            format_usage(usage_rows(store, by="server"), by="server"),
        ]
    finally:
        store.close()
    return "\n".join(parts)
