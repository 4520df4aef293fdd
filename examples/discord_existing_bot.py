"""Add chatcanvas to a discord.py bot you already have.

    pip install "chatcanvas[discord,local]"
    DISCORD_TOKEN=... python examples/discord_existing_bot.py

Your bot gains /imagine, /vary, /settings and /history, answers when mentioned or DMed, and its
result buttons (reroll, V1..Vn, U1..Un, recipe) keep working across restarts. Settings come from the
environment (CHATCANVAS_MODEL, DISCORD_CHANNELS, ...); see .env.example.
"""

from __future__ import annotations

import os

import discord
from discord.ext import commands


class MyBot(commands.Bot):
    async def setup_hook(self) -> None:
        # The one line that adds chatcanvas (it builds its app context from the environment).
        # To share a context you built yourself: `self.chatcanvas = await build_app(settings)` first.
        await self.load_extension("chatcanvas.adapters.discord")
        await self.tree.sync()  # or per guild: copy_global_to(guild=...) then sync(guild=...)


intents = discord.Intents.default()
bot = MyBot(command_prefix="!", intents=intents)


@bot.command()
async def ping(ctx: commands.Context[commands.Bot]) -> None:  # your existing commands stay as they are
    await ctx.send("pong")


if __name__ == "__main__":
    bot.run(os.environ["DISCORD_TOKEN"])
