"""chatcanvas for Discord (discord.py 2.x): an extension for your bot, or a bot of its own.

In an existing bot::

    await bot.load_extension("chatcanvas.adapters.discord")     # finds or builds the app context
    # or, with a context you built:  await bot.add_cog(ChatcanvasCog(bot, ctx))
    await bot.tree.sync()                                         # when you sync your commands

The extension uses ``bot.chatcanvas`` (an :class:`~chatcanvas.app.AppContext`) when the host set
one, and otherwise builds one from the environment (and closes it when unloaded).

On its own: ``chatcanvas run --adapters discord`` with ``DISCORD_TOKEN`` set calls :func:`serve`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatcanvas.adapters.discord.cog import ChatcanvasCog
from chatcanvas.adapters.discord.views import ImageButton, result_view

if TYPE_CHECKING:
    import discord
    from discord.ext import commands

    from chatcanvas.app import AppContext

__all__ = ["ChatcanvasCog", "ImageButton", "make_bot", "result_view", "serve", "setup", "teardown"]

log = logging.getLogger(__name__)


async def setup(bot: commands.Bot) -> None:
    """discord.py extension entry point (``bot.load_extension("chatcanvas.adapters.discord")``)."""
    ctx: AppContext | None = getattr(bot, "chatcanvas", None)
    owns = ctx is None
    if ctx is None:
        from chatcanvas.app import build_app
        from chatcanvas.config import load_settings

        ctx = await build_app(load_settings())
    ctx.assistant.begin_warm_up()  # the model loads in a thread while the bot connects (a host's context too)
    await bot.add_cog(ChatcanvasCog(bot, ctx, owns_ctx=owns))


async def teardown(bot: commands.Bot) -> None:
    """Called on ``unload_extension``; the cog's own unload closes a context it built."""


def make_bot(ctx: AppContext, *, intents: discord.Intents | None = None) -> commands.Bot:
    """A plain ``commands.Bot`` that answers mentions and DMs, with the cog's hooks attached."""
    import discord
    from discord.ext import commands

    if intents is None:
        intents = discord.Intents.default()
        intents.message_content = ctx.settings.discord_message_content
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=intents,
        help_command=None,
        allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False),
    )
    bot.chatcanvas = ctx  # type: ignore[attr-defined]
    return bot


async def sync_commands(bot: commands.Bot, guild_ids: list[str]) -> None:
    """Register the slash commands: per guild (instant) when an allow-list is set, else globally."""
    import discord

    if guild_ids:
        for gid in guild_ids:
            guild = discord.Object(id=int(gid))
            bot.tree.copy_global_to(guild=guild)
            await bot.tree.sync(guild=guild)
    else:
        await bot.tree.sync()


async def serve(ctx: AppContext) -> None:
    """Run chatcanvas as its own Discord bot until cancelled (``chatcanvas run``)."""
    from chatcanvas import messages as m
    from chatcanvas.errors import ConfigError

    token = ctx.settings.discord_token
    if not token:
        raise ConfigError(m.DISCORD_NO_TOKEN)
    bot = make_bot(ctx)
    await bot.add_cog(ChatcanvasCog(bot, ctx, owns_ctx=False))

    async def _setup_hook() -> None:
        await sync_commands(bot, ctx.settings.discord_guilds)

    bot.setup_hook = _setup_hook  # type: ignore[method-assign]
    try:
        async with bot:
            await bot.start(token)
    finally:
        if not bot.is_closed():
            await bot.close()
