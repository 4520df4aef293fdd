"""The cog: /imagine, /vary, /settings, /history, the result buttons, and natural chat (mentions, DMs).

It also registers the ``/chatcanvas-admin`` group (admin.py) on the bot's command tree.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from chatcanvas import messages as m
from chatcanvas.adapters.discord.admin import ADMIN_GROUP, AdminCommands
from chatcanvas.adapters.discord.prefs import AspectName, Prefs, UserPrefs
from chatcanvas.adapters.discord.render import (
    ChannelSurface,
    InteractionSurface,
    MessageSurface,
    Renderer,
    Surface,
    clip,
)
from chatcanvas.adapters.discord.views import COG_NAME, OUTPAINT, ImageButton
from chatcanvas.errors import ChatcanvasError
from chatcanvas.types import MAX_SEED, Aspect, Attachment, ChatTurn, Event, ImageSpec, Place, UserRef

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatcanvas.app import AppContext

log = logging.getLogger(__name__)

BackendName = Literal["local", "openai"]
PLATFORM = "discord"


def who_of(
    user: discord.abc.User, guild_id: int | None, permissions: discord.Permissions | None = None
) -> UserRef:
    """The user; members with Manage Server are admins for the policy (every configured backend).

    ``permissions``: an interaction's resolved permissions of the member in that channel, which
    Discord sends with it (cached roles may not know them); else the member's guild permissions.
    """
    perms = permissions if permissions is not None else getattr(user, "guild_permissions", None)
    admin = bool(guild_id and perms is not None and perms.manage_guild)
    return UserRef(platform=PLATFORM, user=str(user.id), server=str(guild_id or ""), admin=admin)


def place_of(channel: object) -> Place:
    """The place, with the facts the policy needs: a DM, an age-restricted (NSFW) channel."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        nsfw = bool(parent is not None and getattr(parent, "nsfw", False))
        return Place(platform=PLATFORM, channel=str(channel.parent_id), thread=str(channel.id), nsfw=nsfw)
    dm = isinstance(channel, discord.DMChannel | discord.GroupChannel) or getattr(channel, "guild", 1) is None
    nsfw_attr = getattr(channel, "nsfw", False)
    nsfw = bool(nsfw_attr() if callable(nsfw_attr) else nsfw_attr)
    return Place(platform=PLATFORM, channel=str(getattr(channel, "id", "") or ""), dm=dm, nsfw=nsfw)


class ChatcanvasCog(commands.Cog, name=COG_NAME):
    """chatcanvas in a discord.py bot. ``owns_ctx``: close the app context when the cog unloads."""

    def __init__(self, bot: commands.Bot, ctx: AppContext, *, owns_ctx: bool = False) -> None:
        self.bot = bot
        self.ctx = ctx
        self.owns_ctx = owns_ctx
        self.settings = ctx.settings
        self.assistant = ctx.assistant
        self.prefs = Prefs(ctx.store)
        self.edit_interval = 1.0  # seconds between edits of one message (Discord: ~5 per 5 s)
        self._following: set[asyncio.Task[None]] = set()  # owed jobs still running after a restart
        self._following_ids: set[str] = set()

    # ------------------------------------------------------------ lifecycle

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ImageButton)
        # "Check image" on any message: what its images say about where they came from (ephemeral)
        self._check_menu = app_commands.ContextMenu(name="Check image", callback=self.check_image)
        self.bot.tree.add_command(self._check_menu, override=True)
        self.bot.tree.add_command(AdminCommands(self.assistant), override=True)  # /chatcanvas-admin

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await self.deliver_pending()

    async def deliver_pending(self) -> int:
        """Post what the bot owes since it was down (interaction tokens have expired: plain messages).

        Finished jobs are posted now; jobs still running or back in the queue are followed and posted
        when they finish. Returns how many were posted now.
        """
        sent = 0
        for rec in await asyncio.to_thread(self.assistant.owed, PLATFORM):
            target = rec.where.thread or rec.where.channel
            if not target.isdigit() or rec.id in self._following_ids:
                continue
            try:
                channel = self.bot.get_channel(int(target)) or await self.bot.fetch_channel(int(target))
            except discord.HTTPException:
                log.warning("could not find channel %s for job %s", target, rec.id, exc_info=True)
                continue
            if not isinstance(channel, discord.abc.Messageable):
                continue
            surface = ChannelSurface(channel, mention=f"<@{rec.who.user}> ")
            task = self.bot.loop.create_task(self._renderer(surface).run(self.assistant.follow([rec.id])))
            if rec.status.finished:
                await task
                sent += 1
            else:  # on_ready comes again after a reconnect: follow each job once
                self._following.add(task)
                self._following_ids.add(rec.id)
                task.add_done_callback(self._following.discard)
        return sent
    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ImageButton)
        self.bot.tree.remove_command(self._check_menu.name, type=self._check_menu.type)
        self.bot.tree.remove_command(ADMIN_GROUP)
        for task in list(self._following):
            task.cancel()
        if self.owns_ctx:
            await self.ctx.aclose()

    # ------------------------------------------------------------ helpers

    def _refusal(self, interaction: discord.Interaction[Any]) -> str | None:
        """The policy's who/where rules, before anything is acknowledged (so the answer is ephemeral)."""
        who = who_of(interaction.user, interaction.guild_id, interaction.permissions)
        refused = self.assistant.precheck(who, place_of(interaction.channel))
        return refused.reason if refused is not None else None

    async def _refuse_now(self, interaction: discord.Interaction[Any], reason: str) -> None:
        await InteractionSurface(interaction).refuse(reason, delivered=False)

    def _renderer(self, surface: Surface) -> Renderer:
        return Renderer(surface, on_delivered=self._delivered, interval=self.edit_interval)

    def _delivered(self, job_id: str) -> None:
        try:
            self.assistant.mark_delivered(job_id)
        except Exception:  # bookkeeping only; the result is on screen
            log.debug("mark_delivered failed for %s", job_id, exc_info=True)

    async def _run(self, interaction: discord.Interaction[Any], events: AsyncIterator[Event]) -> None:
        await self._renderer(InteractionSurface(interaction)).run(events)

    def _spec(
        self,
        prompt: str,
        prefs: UserPrefs,
        *,
        negative: str | None,
        aspect: str | None,
        count: int | None,
        seed: int | None,
        style: str | None,
        backend: str | None,
        sampler: str | None = None,
    ) -> ImageSpec:
        from chatcanvas.prompts import family_of
        from chatcanvas.prompts import style as find_style

        backend = backend or prefs.backend
        negative = negative if negative is not None else prefs.negative
        style_name = style or prefs.style
        preset = find_style(style_name)
        if style_name and preset is None:
            from chatcanvas.prompts import styles

            raise ChatcanvasError(f"Unknown style {style_name!r}; try one of: {', '.join(sorted(styles()))}.")
        family = family_of(backend or self.settings.backend)
        if preset is not None:
            prompt = preset.apply(prompt, family)
            if family == "sd" and preset.negative:
                negative = ", ".join(p for p in (negative, preset.negative) if p)
        width = height = None
        chosen = aspect or (prefs.aspect.value if prefs.aspect else None)
        if chosen:
            width, height = Aspect(chosen).size(self.assistant.native_size())
        try:
            return ImageSpec(
                prompt=prompt,
                negative_prompt=negative or "",
                width=width,
                height=height,
                count=count or prefs.count or 1,
                seed=seed,
                style=preset.name if preset else None,
                backend=backend,
                sampler=sampler,
            )
        except ValueError as exc:
            raise ChatcanvasError(str(exc).splitlines()[-1]) from None

    # ------------------------------------------------------------ /imagine

    @app_commands.command(name="imagine", description="Make images from a description.")
    @app_commands.describe(
        prompt="What to draw",
        negative="What to keep out of the picture",
        aspect="Shape of the image",
        count="How many images",
        seed="Seed, to make the same image again",
        style="A style preset, e.g. watercolor, studio, film",
        backend="Which image backend to use",
        sampler="A sampler by its AUTOMATIC1111 name, e.g. Euler a, DPM++ 2M Karras",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, 1000],
        negative: str | None = None,
        aspect: AspectName | None = None,
        count: app_commands.Range[int, 1, 10] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        style: str | None = None,
        backend: BackendName | None = None,
        sampler: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        why = self._refusal(interaction)
        if why:
            await self._refuse_now(interaction, why)
            return
        await interaction.response.defer(thinking=True)
        who = who_of(interaction.user, interaction.guild_id, interaction.permissions)
        try:
            prefs = await asyncio.to_thread(self.prefs.get, who.user)
            spec = self._spec(
                prompt,
                prefs,
                negative=negative,
                aspect=aspect,
                count=count,
                seed=seed,
                style=style,
                backend=backend,
                sampler=sampler,
            )
        except ChatcanvasError as exc:
            await InteractionSurface(interaction).refuse(str(exc), delivered=False)
            return
        await self._run(
            interaction, self.assistant.generate(spec, who, place_of(interaction.channel), prompt_in=prompt)
        )

    @imagine.autocomplete("style")
    async def _style_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        from chatcanvas.prompts import styles

        cur = current.lower()
        return [
            app_commands.Choice(name=p.label, value=name)
            for name, p in sorted(styles().items())
            if cur in name or cur in p.label.lower()
        ][:25]

    @imagine.autocomplete("sampler")
    async def _sampler_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        cur = current.lower()
        known = self.assistant.samplers()
        # A1111's combined names too: "DPM++ 2M Karras" is DPM++ 2M with the Karras schedule
        names = [n for n in (*known, *(f"{k} Karras" for k in known)) if cur in n.lower()]
        return [app_commands.Choice(name=n, value=n) for n in names][:25]

    @imagine.autocomplete("prompt")
    async def _lora_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """While a ``<lora:`` tag is being typed, the LoRA names (CHATCANVAS_LORA_DIR)."""
        head, sep, tail = current.rpartition("<lora:")
        if not sep or ">" in tail:
            return [app_commands.Choice(name=current[:100], value=current[:1000])] if current else []
        names = [n for n in await asyncio.to_thread(self.assistant.loras) if n.lower().startswith(tail.lower())]
        return [
            app_commands.Choice(name=f"<lora:{n}:1>"[:100], value=f"{head}<lora:{n}:1>"[:1000]) for n in names
        ][:25]

    # ------------------------------------------------------------ /vary

    @app_commands.command(name="vary", description="Product variations from a photo (colours, materials).")
    @app_commands.describe(
        image="A product photo (PNG, JPEG or WebP)",
        variations="Comma-separated, e.g. navy, forest green",
        mask="Optional: the product area painted white on black, the photo's size",
    )
    async def vary(
        self,
        interaction: discord.Interaction[Any],
        image: discord.Attachment,
        variations: app_commands.Range[str, 1, 500],
        mask: discord.Attachment | None = None,
    ) -> None:
        why = self._refusal(interaction)
        if why is None and not variations.strip():
            why = m.DISCORD_NO_VARIATIONS
        if why is None and image.size > self.settings.max_upload_bytes:
            why = m.DISCORD_UPLOAD_TOO_BIG.format(size=image.size, limit=self.settings.max_upload_bytes)
        for a in (image, mask):
            if why is None and a is not None and a.size > self.settings.max_upload_bytes:
                why = m.DISCORD_UPLOAD_TOO_BIG.format(size=a.size, limit=self.settings.max_upload_bytes)
            if why is None and a is not None and a.content_type and not a.content_type.startswith("image/"):
                why = m.DISCORD_NOT_AN_ATTACHMENT
        if why:
            await self._refuse_now(interaction, why)
            return
        await interaction.response.defer(thinking=True)
        try:
            data = await image.read()
            mask_data = await mask.read() if mask is not None else None
            from chatcanvas.images import load_upload

            await asyncio.to_thread(load_upload, data, self.settings)
        except ChatcanvasError as exc:
            await InteractionSurface(interaction).refuse(str(exc), delivered=False)
            return
        except discord.HTTPException as exc:
            await InteractionSurface(interaction).refuse(
                m.BACKEND_UNAVAILABLE.format(detail=exc), delivered=False
            )
            return
        who = who_of(interaction.user, interaction.guild_id, interaction.permissions)
        events = self.assistant.vary_product(data, variations, who, place_of(interaction.channel), mask=mask_data)
        await self._run(interaction, events)

    async def check_image(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The message context menu "Check image": the provenance report of each image, to the asker only."""
        images = [a for a in message.attachments if (a.content_type or "image/").startswith("image/")]
        if not images:
            await interaction.response.send_message(m.DISCORD_CHECK_NO_IMAGE, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        reports = []
        for a in images[:4]:
            limit = self.settings.max_upload_bytes
            if a.size > limit:
                reports.append(f"{a.filename}: " + m.DISCORD_UPLOAD_TOO_BIG.format(size=a.size, limit=limit))
                continue
            data = await a.read()
            reports.append(await asyncio.to_thread(self.assistant.check_image, data, a.filename))
        await interaction.followup.send(clip("```\n" + "\n\n".join(reports) + "\n```"), ephemeral=True)

    # ------------------------------------------------------------ /settings, /history

    @app_commands.command(name="settings", description="Your defaults for /imagine (only you see this).")
    @app_commands.describe(
        aspect="Default shape",
        count="Default number of images",
        style="Default style preset",
        negative="Default negative prompt",
        backend="Default backend",
        reset="Forget all your defaults",
    )
    async def settings_cmd(
        self,
        interaction: discord.Interaction[Any],
        aspect: AspectName | None = None,
        count: app_commands.Range[int, 1, 10] | None = None,
        style: str | None = None,
        negative: app_commands.Range[str, 0, 1000] | None = None,
        backend: BackendName | None = None,
        reset: bool = False,
    ) -> None:
        uid = str(interaction.user.id)
        try:
            if reset:
                await asyncio.to_thread(self.prefs.clear, uid)
                await interaction.response.send_message(m.DISCORD_SETTINGS_CLEARED, ephemeral=True)
                return
            if style:
                from chatcanvas.prompts import style as find_style

                preset = find_style(style)
                if preset is None:
                    raise ChatcanvasError(f"Unknown style {style!r}.")
                style = preset.name
            changes = {
                "aspect": aspect,
                "count": count,
                "style": style,
                "negative": negative,
                "backend": backend,
            }
            if any(v is not None for v in changes.values()):
                prefs = await asyncio.to_thread(lambda: self.prefs.update(uid, **changes))
                text = m.DISCORD_SETTINGS_SAVED.format(lines="\n".join(prefs.lines()))
            else:
                prefs = await asyncio.to_thread(self.prefs.get, uid)
                text = (
                    m.DISCORD_SETTINGS_NONE
                    if prefs.empty
                    else m.DISCORD_SETTINGS_SHOW.format(lines="\n".join(prefs.lines()))
                )
        except (ChatcanvasError, ValueError) as exc:
            await self._refuse_now(interaction, str(exc))
            return
        await interaction.response.send_message(clip(text), ephemeral=True)

    settings_cmd.autocomplete("style")(_style_autocomplete)

    @app_commands.command(
        name="history", description="Your recent images and their recipes (only you see this)."
    )
    async def history(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        items = await asyncio.to_thread(self.prefs.history, str(interaction.user.id), 10)
        if not items:
            await interaction.followup.send(m.DISCORD_HISTORY_NONE, ephemeral=True)
            return
        lines = [m.DISCORD_HISTORY_HEAD]
        for n, it in enumerate(items, 1):
            r = it.recipe
            prompt = (r.revised_prompt or r.prompt).replace("`", "'")
            lines.append(
                f"**{n}.** {clip(prompt, 160)}\n"
                f"-# `{it.image_id[:12]}` · seed {r.seed} · {r.width}x{r.height} · {r.steps} steps · "
                f"{r.backend} · {r.mode.value}"
            )
        await interaction.followup.send(clip("\n".join(lines)), ephemeral=True)

    # ------------------------------------------------------------ buttons

    async def on_image_button(
        self, interaction: discord.Interaction[Any], action: str, image_id: str
    ) -> None:
        if action == "i":
            text = await asyncio.to_thread(self.assistant.recipe, image_id)
            await interaction.response.send_message(clip(f"```\n{text}\n```"), ephemeral=True)
            return
        why = self._refusal(interaction)
        if why:
            await self._refuse_now(interaction, why)
            return
        await interaction.response.defer(thinking=True)
        who = who_of(interaction.user, interaction.guild_id, interaction.permissions)
        where = place_of(interaction.channel)
        if action == "r":
            events = self.assistant.reroll(image_id, who, where)
        elif action == "v":
            events = self.assistant.vary(image_id, who, where)
        elif action in OUTPAINT:
            events = self.assistant.outpaint(image_id, OUTPAINT[action], who, where)
        else:
            events = self.assistant.upscale(image_id, who, where)
        await self._run(interaction, events)

    # ------------------------------------------------------------ natural chat

    def _addressed(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot:
            return False
        if message.guild is None:
            return True
        if me in message.mentions:
            return True
        ref = message.reference.resolved if message.reference else None
        if isinstance(ref, discord.Message) and ref.author.id == me.id:
            return True
        # with the message-content intent, every message in a thread the bot started continues it
        channel = message.channel
        return (
            self.settings.discord_message_content
            and isinstance(channel, discord.Thread)
            and channel.owner_id == me.id
        )

    def _strip_mention(self, text: str) -> str:
        me = self.bot.user
        if me is None:
            return text.strip()
        return re.sub(rf"<@!?{me.id}>", "", text).strip()

    async def _attachments(self, message: discord.Message) -> tuple[Attachment, ...]:
        out = []
        for a in message.attachments:
            if a.content_type and not a.content_type.startswith("image/"):
                continue
            if a.size > self.settings.max_upload_bytes:
                raise ChatcanvasError(
                    m.DISCORD_UPLOAD_TOO_BIG.format(size=a.size, limit=self.settings.max_upload_bytes)
                )
            data = await a.read()
            out.append(Attachment(filename=a.filename, content_type=a.content_type or "image/png", data=data))
        return tuple(out)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self._addressed(message):
            return
        surface = MessageSurface(message)
        guild_id = message.guild.id if message.guild else None
        early = self.assistant.precheck(who_of(message.author, guild_id), place_of(message.channel))
        if early is not None:
            await surface.refuse(early.reason, delivered=False)
            return
        text = self._strip_mention(message.content)
        try:
            attachments = await self._attachments(message)
        except (ChatcanvasError, discord.HTTPException) as exc:
            await surface.refuse(str(exc), delivered=False)
            return
        if not text and not attachments:
            name = self.bot.user.display_name if self.bot.user else "me"
            await surface.refuse(m.DISCORD_EMPTY_MENTION.format(name=name), delivered=False)
            return
        turn = ChatTurn(
            who=who_of(message.author, guild_id),
            where=place_of(message.channel),
            text=text,
            attachments=attachments,
        )
        await self._renderer(surface).run(self.assistant.handle(turn))
