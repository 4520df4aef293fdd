"""``/chatcanvas-admin``: queue, cancel, pause / resume a backend, ban / unban, usage. For Manage Server.

The group is registered with ``default_permissions(manage_guild=True)``, so Discord shows it only to
members with Manage Server (server admins can widen or narrow that under Integrations); every command
checks the permissions Discord resolved for this interaction again before it acts, since those
settings are the server's to change. The operations are the core's (:class:`chatcanvas.bot.admin.Admin`),
scoped to this server; answers are ephemeral.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord import app_commands

from chatcanvas import messages as m
from chatcanvas.adapters.discord.render import clip
from chatcanvas.bot.assistant import Assistant
from chatcanvas.types import UserRef

__all__ = ["ADMIN_GROUP", "AdminCommands"]

ADMIN_GROUP = "chatcanvas-admin"
PLATFORM = "discord"


def _block(text: str) -> str:
    inner = text.replace("```", "'''")
    return clip(f"```\n{inner}\n```")


class AdminCommands(app_commands.Group):
    def __init__(self, assistant: Assistant) -> None:
        super().__init__(
            name=ADMIN_GROUP,
            description="Run chatcanvas here: the queue, cancel, pause a backend, bans, usage.",
            default_permissions=discord.Permissions(manage_guild=True),
            guild_only=True,
        )
        self.assistant = assistant

    async def _actor(self, interaction: discord.Interaction[Any]) -> UserRef | None:
        """The admin acting, or None after telling a non-admin so (the run-time check)."""
        perms = interaction.permissions
        if interaction.guild_id is None or not (perms.manage_guild or perms.administrator):
            await interaction.response.send_message(m.OPS_NOT_ADMIN_DISCORD, ephemeral=True)
            return None
        return UserRef(platform=PLATFORM, user=str(interaction.user.id), server=str(interaction.guild_id), admin=True)

    async def _answer(self, interaction: discord.Interaction[Any], text: str, *, block: bool = False) -> None:
        await interaction.response.send_message(_block(text) if block else clip(text), ephemeral=True)

    def _target(self, user: discord.abc.Snowflake, actor: UserRef) -> UserRef:
        return UserRef(platform=PLATFORM, user=str(user.id), server=actor.server)

    @app_commands.command(name="queue", description="What is running and waiting in this server.")
    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            text = await asyncio.to_thread(self.assistant.admin.queue_text, actor)
            await self._answer(interaction, text, block=True)

    @app_commands.command(name="cancel", description="Cancel a job (its id from /chatcanvas-admin queue).")
    @app_commands.describe(job="The job id")
    async def cancel(self, interaction: discord.Interaction[Any], job: app_commands.Range[str, 1, 64]) -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            await self._answer(interaction, await self.assistant.admin.cancel(job, actor))

    @app_commands.command(name="pause", description="Stop a backend at once: nothing new runs on it (every server).")
    @app_commands.describe(backend="e.g. openai or local", reason="Why (kept in the admin log)")
    async def pause(
        self, interaction: discord.Interaction[Any], backend: app_commands.Range[str, 1, 40], reason: str = ""
    ) -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            text = await asyncio.to_thread(self.assistant.admin.pause, backend, actor, reason)
            await self._answer(interaction, text)

    @app_commands.command(name="resume", description="Let a paused backend run its queue again.")
    @app_commands.describe(backend="e.g. openai or local")
    async def resume(self, interaction: discord.Interaction[Any], backend: app_commands.Range[str, 1, 40]) -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            await self._answer(interaction, await asyncio.to_thread(self.assistant.admin.resume, backend, actor))

    @app_commands.command(name="ban", description="Refuse this member's requests in this server.")
    @app_commands.describe(user="Who", reason="Why (kept in the admin log)")
    async def ban(self, interaction: discord.Interaction[Any], user: discord.User, reason: str = "") -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            text = await asyncio.to_thread(self.assistant.admin.ban, self._target(user, actor), actor, reason)
            await self._answer(interaction, text)

    @app_commands.command(name="unban", description="Take back a ban in this server.")
    @app_commands.describe(user="Who")
    async def unban(self, interaction: discord.Interaction[Any], user: discord.User) -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            text = await asyncio.to_thread(self.assistant.admin.unban, self._target(user, actor), actor)
            await self._answer(interaction, text)

    @app_commands.command(name="usage", description="Images, GPU-seconds and OpenAI spend in this server (or one member's).")
    @app_commands.describe(user="Only this member")
    async def usage(self, interaction: discord.Interaction[Any], user: discord.User | None = None) -> None:
        actor = await self._actor(interaction)
        if actor is not None:
            target = self._target(user, actor) if user is not None else None
            text = await asyncio.to_thread(self.assistant.admin.usage_text, actor, target)
            await self._answer(interaction, text, block=True)
