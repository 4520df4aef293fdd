"""Who may ask where: guild and channel allow-lists, DMs on/off, the NSFW-channel rule, a per-user cooldown.

Pure and in memory, so a refusal goes out (ephemeral) before anything else happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import discord

from chatcanvas import messages as m
from chatcanvas.config import Settings


@dataclass(frozen=True)
class Where:
    """The Discord facts the gate needs, from an interaction or a message."""

    guild_id: int | None
    channel_id: int
    parent_id: int | None  # the parent channel of a thread
    nsfw: bool

    @classmethod
    def of(cls, channel: object, guild_id: int | None) -> Where:
        channel_id = int(getattr(channel, "id", 0) or 0)
        parent_id = getattr(channel, "parent_id", None)
        nsfw = False
        if isinstance(channel, discord.Thread):
            parent = channel.parent
            nsfw = bool(parent is not None and getattr(parent, "nsfw", False))
        else:
            nsfw_attr = getattr(channel, "nsfw", False)
            nsfw = bool(nsfw_attr() if callable(nsfw_attr) else nsfw_attr)
        return cls(guild_id=guild_id, channel_id=channel_id, parent_id=parent_id, nsfw=nsfw)


@dataclass
class Gate:
    settings: Settings
    clock: Callable[[], float] = time.monotonic
    _last: dict[int, float] = field(default_factory=dict)

    def where_refusal(self, where: Where) -> str | None:
        s = self.settings
        if where.guild_id is None:
            return None if s.discord_allow_dms else m.DISCORD_NO_DMS
        if s.discord_guilds and str(where.guild_id) not in s.discord_guilds:
            return m.DISCORD_NOT_HERE_GUILD
        if s.discord_channels:
            ids = {str(where.channel_id), str(where.parent_id or "")}
            if not ids & set(s.discord_channels):
                return m.DISCORD_NOT_HERE_CHANNEL.format(
                    channels=", ".join(f"<#{c}>" for c in s.discord_channels)
                )
        if s.discord_nsfw_only and not where.nsfw:
            return m.DISCORD_NSFW_ONLY
        return None

    def cooldown_left(self, user_id: int) -> float:
        cd = self.settings.discord_cooldown_s
        if cd <= 0:
            return 0.0
        last = self._last.get(user_id)
        return 0.0 if last is None else max(0.0, last + cd - self.clock())

    def refusal(self, where: Where, user_id: int) -> str | None:
        """Why this user may not start a generation here now, or ``None``; passing counts as a use."""
        why = self.where_refusal(where)
        if why:
            return why
        left = self.cooldown_left(user_id)
        if left > 0:
            return m.DISCORD_COOLDOWN.format(wait=max(1.0, left))
        if self.settings.discord_cooldown_s > 0:
            self._last[user_id] = self.clock()
        return None
