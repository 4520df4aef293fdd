"""Render the assistant's event stream onto a Discord surface (an interaction reply or a chat message).

One status message per request: queue position, then progress (percentage, and a small preview now
and then), then the images with their buttons. Edits go through an :class:`EditThrottle`. Refusals
and failures go out ephemeral where Discord allows it (interactions), as a reply otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from chatcanvas import messages as m
from chatcanvas.adapters.discord.grid import grid_png
from chatcanvas.adapters.discord.throttle import EditThrottle
from chatcanvas.adapters.discord.views import result_view
from chatcanvas.bot.view import TurnView
from chatcanvas.errors import ChatcanvasError
from chatcanvas.types import (
    Accepted,
    Cancelled,
    Event,
    Failed,
    GeneratedImage,
    Images,
    Progress,
    Queued,
    Refused,
    Started,
    Text,
)

log = logging.getLogger(__name__)

MAX_CONTENT = 2000
MAX_FILES = 10
PREVIEW_EVERY_S = 3.0  # a preview upload at most this often
BAR = 12

FileSpec = tuple[str, bytes]  # (filename, data): discord.File objects are made per attempt


def files_of(specs: Sequence[FileSpec]) -> list[discord.File]:
    import io

    return [discord.File(io.BytesIO(data), filename=name) for name, data in specs]


def image_filename(img: GeneratedImage) -> str:
    return f"chatcanvas-{img.id}.png"


def result_files(images: Sequence[GeneratedImage]) -> list[FileSpec]:
    """One PNG, or a grid plus the individual PNGs (each keeps its ``parameters`` metadata)."""
    own = [(image_filename(i), i.png) for i in images]
    if len(images) <= 1:
        return own
    grid = ("grid.png", grid_png([i.png for i in images]))
    return [grid, *own[: MAX_FILES - 1]]


def progress_bar(percent: int) -> str:
    filled = round(BAR * percent / 100)
    return "▰" * filled + "▱" * (BAR - filled)


def clip(text: str, limit: int = MAX_CONTENT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_content(ev: Images, notes: Sequence[str] = ()) -> str:
    first = ev.images[0].recipe
    prompt = ev.revised_prompts[0] if ev.images else ""
    seeds = ", ".join(str(i.recipe.seed) for i in ev.images)
    line = m.DISCORD_RECIPE_LINE.format(
        seed=seeds, width=first.width, height=first.height, steps=first.steps, backend=first.backend
    )
    head = m.DISCORD_DONE_ONE.format(prompt=clip(prompt.replace("*", "\\*"), 1500))
    parts = [*notes, head, line]
    return clip("\n".join(p for p in parts if p))


class Surface:
    """Where one request's answer goes."""

    async def edit(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        raise NotImplementedError

    async def send(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        """A further message (a second result of one chat turn)."""
        raise NotImplementedError

    async def refuse(self, reason: str, *, delivered: bool) -> None:
        """Say why not: ephemeral where possible; drop the status message if nothing was delivered."""
        raise NotImplementedError


class InteractionSurface(Surface):
    """The reply to a deferred (thinking) interaction: edits the original response, follow-ups after."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction

    async def edit(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"content": content}
        if files is not None:
            kwargs["attachments"] = files_of(files)
        if view is not None:
            kwargs["view"] = view
        await self.interaction.edit_original_response(**kwargs)

    async def send(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"content": content}
        if files:
            kwargs["files"] = files_of(files)
        if view is not None:
            kwargs["view"] = view
        await self.interaction.followup.send(**kwargs)

    async def refuse(self, reason: str, *, delivered: bool) -> None:
        text = clip("⚠️ " + reason)
        if not self.interaction.response.is_done():
            await self.interaction.response.send_message(text, ephemeral=True)
            return
        if not delivered:
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the deferred response", exc_info=True)
        await self.interaction.followup.send(text, ephemeral=True)


class MessageSurface(Surface):
    """A reply to a chat message (mention, DM, thread), edited as the work goes on."""

    def __init__(self, origin: discord.Message) -> None:
        self.origin = origin
        self.status: discord.Message | None = None

    async def edit(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        if self.status is None:
            kwargs: dict[str, Any] = {"content": content, "mention_author": False}
            if files:
                kwargs["files"] = files_of(files)
            if view is not None:
                kwargs["view"] = view
            self.status = await self.origin.reply(**kwargs)
            return
        edit: dict[str, Any] = {"content": content}
        if files is not None:
            edit["attachments"] = files_of(files)
        if view is not None:
            edit["view"] = view
        await self.status.edit(**edit)

    async def send(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"content": content, "mention_author": False}
        if files:
            kwargs["files"] = files_of(files)
        if view is not None:
            kwargs["view"] = view
        await self.origin.reply(**kwargs)

    async def refuse(self, reason: str, *, delivered: bool) -> None:
        text = clip("⚠️ " + reason)
        if self.status is not None and not delivered:
            await self.status.edit(content=text, attachments=[], view=None)
        else:
            await self.origin.reply(text, mention_author=False)


class ChannelSurface(Surface):
    """A fresh message in a channel (results owed after a restart), with a mention of who asked."""

    def __init__(self, channel: discord.abc.Messageable, mention: str = "") -> None:
        self.channel = channel
        self.mention = mention
        self.status: discord.Message | None = None

    async def edit(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        if self.status is None:
            kwargs: dict[str, Any] = {"content": clip(self.mention + content)}
            if files:
                kwargs["files"] = files_of(files)
            if view is not None:
                kwargs["view"] = view
            self.status = await self.channel.send(**kwargs)
            return
        edit: dict[str, Any] = {"content": clip(self.mention + content)}
        if files is not None:
            edit["attachments"] = files_of(files)
        if view is not None:
            edit["view"] = view
        await self.status.edit(**edit)

    async def send(
        self, content: str, files: Sequence[FileSpec] | None = None, view: discord.ui.View | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"content": clip(content)}
        if files:
            kwargs["files"] = files_of(files)
        if view is not None:
            kwargs["view"] = view
        await self.channel.send(**kwargs)

    async def refuse(self, reason: str, *, delivered: bool) -> None:
        text = clip(self.mention + "⚠️ " + reason)
        if self.status is not None and not delivered:
            await self.status.edit(content=text, attachments=[], view=None)
        else:
            await self.channel.send(text)


@dataclass
class Renderer:
    """Turns one request's events into edits of one surface."""

    surface: Surface
    on_delivered: Callable[[str], None] | None = None  # a job's result (images or failure) was shown
    interval: float = 1.0
    view: TurnView = field(default_factory=TurnView)  # the turn so far (one reducer for every platform)
    delivered: int = 0
    refused: bool = False
    last_preview_at: float = 0.0

    def __post_init__(self) -> None:
        self.throttle = EditThrottle(self._edit, interval=self.interval)

    async def _edit(self, content: str, files: Sequence[FileSpec] | None = None, view: Any = None) -> None:
        await self.surface.edit(content, files, view)

    def _status(self) -> str:
        v = self.view
        lines = list(v.texts)
        if v.running:
            lines.append(m.DISCORD_PROGRESS.format(percent=v.percent, bar=progress_bar(v.percent)))
            lines.extend(dict.fromkeys(jv.note for jv in v.jobs.values() if jv.note and jv.state == "running"))
        elif v.position is not None:
            lines.append(m.DISCORD_QUEUED.format(position=v.position + 1) if v.position else m.DISCORD_STARTING)
        return clip("\n".join(lines) or m.DISCORD_STARTING)

    async def run(self, events: AsyncIterator[Event]) -> None:
        try:
            async for ev in events:
                await self.on_event(ev)
            if not self.delivered and not self.refused:
                # a chat turn that only talked back (no images): its text is the answer
                await self.throttle.finish(content=clip("\n".join(self.view.texts) or m.DISCORD_STARTING))
        except ChatcanvasError as exc:
            await self._refuse(str(exc))
        except discord.HTTPException:
            log.exception("Discord refused an edit")
        except Exception:
            log.exception("rendering failed")
            await self._refuse(m.INTERNAL_ERROR)
        finally:
            await self.throttle.close()

    async def _refuse(self, reason: str) -> None:
        self.refused = True
        await self.throttle.close()
        try:
            await self.surface.refuse(reason, delivered=self.delivered > 0)
        except discord.HTTPException:
            log.exception("could not send a refusal")

    def _show(self, files: Sequence[FileSpec] | None = None) -> None:
        """Progress goes to the status message only until it holds a result."""
        if self.delivered or self.refused:
            return
        if files is None:
            self.throttle.offer(content=self._status())
        else:
            self.throttle.offer(content=self._status(), files=files)

    async def on_event(self, ev: Event) -> None:
        self.view.apply(ev)
        if isinstance(ev, (Text, Accepted, Started)):
            self._show()
        elif isinstance(ev, Queued):
            if not self.view.running:
                self._show()
        elif isinstance(ev, Progress):
            now = time.monotonic()
            if ev.preview and now - self.last_preview_at >= PREVIEW_EVERY_S:
                self.last_preview_at = now
                self._show([("preview.png", ev.preview)])
            else:
                self._show()
        elif isinstance(ev, Images):
            await self._deliver(ev)
        elif isinstance(ev, Refused):
            await self._refuse(ev.reason)
        elif isinstance(ev, Failed):
            await self._refuse(ev.reason)
            if ev.job_id and self.on_delivered is not None:
                self.on_delivered(ev.job_id)  # the failure was told: not again after a restart
        elif isinstance(ev, Cancelled):
            await self._refuse(m.JOB_CANCELLED)

    async def _deliver(self, ev: Images) -> None:
        if not ev.images:
            return
        batches = await asyncio.to_thread(split_uploads, await asyncio.to_thread(result_files, ev.images))
        notes = list(self.view.texts) if not self.delivered else []
        if len(batches) > 1:
            notes.append(m.DISCORD_SPLIT_UPLOAD.format(n=len(batches), limit=UPLOAD_LIMIT // (1024 * 1024)))
        content = result_content(ev, notes)
        view = result_view([i.id for i in ev.images])
        first, rest = batches[0], batches[1:]
        if not self.delivered and not self.refused:
            await self.throttle.finish(content=content, files=first, view=view if not rest else None)
        else:
            await self.surface.send(content, first, view if not rest else None)
        for i, files in enumerate(rest, 2):
            last = i == len(batches)
            await self.surface.send(f"({i}/{len(batches)})", files, view if last else None)
        self.delivered += 1
        if self.on_delivered is not None:
            self.on_delivered(ev.job_id)


UPLOAD_LIMIT = 10 * 1024 * 1024  # what a bot may upload in one message (no server boost)
_MARGIN = 64 * 1024  # multipart overhead


def split_uploads(files: Sequence[FileSpec], limit: int = UPLOAD_LIMIT) -> list[list[FileSpec]]:
    """The files in as few messages as fit Discord's upload limit (10 files, ``limit`` bytes each).

    A file too big on its own is downscaled until it fits; the individual PNGs keep their recipe.
    """
    budget = limit - _MARGIN
    batches: list[list[FileSpec]] = [[]]
    used = 0
    for name, data in files:
        if len(data) > budget:
            data = _shrink(data, budget)
        if batches[-1] and (used + len(data) > budget or len(batches[-1]) >= MAX_FILES):
            batches.append([])
            used = 0
        batches[-1].append((name, data))
        used += len(data)
    return batches


def _shrink(png: bytes, budget: int) -> bytes:
    """A smaller copy that fits ``budget``: its recipe text kept, credentials naming the original."""
    import io

    from PIL import Image

    from chatcanvas.provenance import derived_png

    with Image.open(io.BytesIO(png)) as im:
        im.load()
        text = {str(k): str(v) for k, v in getattr(im, "text", {}).items()}
        img: Image.Image = im.convert("RGB")
    while True:
        img = img.resize((max(8, img.width * 3 // 4), max(8, img.height * 3 // 4)), Image.Resampling.LANCZOS)
        out = derived_png(img, [png], action="c2pa.resized", text=text)
        if len(out) <= budget or max(img.size) <= 64:
            return out
