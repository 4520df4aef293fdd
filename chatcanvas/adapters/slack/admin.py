"""``/imagine admin queue|cancel|pause|resume|ban|unban|usage``: the operator's commands in Slack.

Who may: workspace admins and owners (``users.info``: ``is_admin`` / ``is_owner`` /
``is_primary_owner``), and the user ids in ``CHATCANVAS_SLACK_ADMINS``. Everyone else is told so and
nothing happens. The command is acknowledged at once; the answer goes to the command's
``response_url`` (ephemeral: only the admin sees it). The operations are the core's
(:class:`chatcanvas.bot.admin.Admin`), scoped to this workspace.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from chatcanvas import messages as m
from chatcanvas.bot.assistant import Assistant
from chatcanvas.config import Settings
from chatcanvas.types import UserRef

__all__ = ["SlackAdmin", "parse_user"]

log = logging.getLogger(__name__)

PLATFORM = "slack"
VERBS = ("queue", "cancel", "pause", "resume", "ban", "unban", "usage")
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]+)$")


def parse_user(word: str) -> str | None:
    """A user id from ``<@U123|name>``, ``<@U123>`` or ``U123``; None for anything else."""
    mt = _USER.match(word.strip())
    return (mt.group(1) or mt.group(2)) if mt else None


class SlackAdmin:
    def __init__(self, assistant: Assistant, settings: Settings) -> None:
        self.assistant = assistant
        self.settings = settings

    async def check(self, client: AsyncWebClient, user: str) -> str | None:
        """None when ``user`` is an admin here; else what to tell them."""
        if user in self.settings.slack_admins:
            return None
        try:
            resp = await client.users_info(user=user)
        except SlackApiError as exc:
            return m.OPS_SLACK_ADMIN_CHECK_FAILED.format(error=exc.response.get("error"))
        info: dict[str, Any] = resp.get("user") or {}
        if info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"):
            return None
        return m.OPS_NOT_ADMIN_SLACK.format(command=self.settings.slack_command)

    async def answer(self, client: AsyncWebClient, body: dict[str, Any], text: str) -> str:
        """Run ``text`` (what follows ``admin``) for the command's user; returns the answer."""
        user, team = str(body.get("user_id", "")), str(body.get("team_id") or "")
        problem = await self.check(client, user)
        if problem is not None:
            return problem
        actor = UserRef(platform=PLATFORM, user=user, server=team, admin=True)
        words = text.split()
        verb = words[0].lower() if words else ""
        args = words[1:]
        admin = self.assistant.admin
        command = self.settings.slack_command
        if verb not in VERBS:
            return m.OPS_SLACK_ADMIN_USAGE.format(command=command)
        if verb == "queue":
            return _code(await asyncio.to_thread(admin.queue_text, actor))
        if verb == "usage":
            target = parse_user(args[0]) if args else None
            who = UserRef(platform=PLATFORM, user=target, server=team) if target else None
            return _code(await asyncio.to_thread(admin.usage_text, actor, who))
        if not args:
            return m.OPS_SLACK_ADMIN_USAGE.format(command=command)
        if verb == "cancel":
            return await admin.cancel(args[0], actor)
        if verb == "pause":
            return await asyncio.to_thread(admin.pause, args[0], actor, " ".join(args[1:]))
        if verb == "resume":
            return await asyncio.to_thread(admin.resume, args[0], actor)
        target = parse_user(args[0])
        if target is None:
            return m.OPS_SLACK_NEEDS_USER.format(command=command, verb=verb)
        who = UserRef(platform=PLATFORM, user=target, server=team)
        if verb == "ban":
            return await asyncio.to_thread(admin.ban, who, actor, " ".join(args[1:]))
        return await asyncio.to_thread(admin.unban, who, actor)


def _code(text: str) -> str:
    return "```" + text.replace("```", "'''") + "```"
