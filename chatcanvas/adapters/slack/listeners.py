"""The Bolt listeners: ``/imagine``, mentions, direct messages, replies in our threads, and buttons.

Every listener acknowledges first (Bolt answers Slack as soon as ``ack()`` runs, well inside the
3 s deadline) and hands the work to a background task this bridge keeps track of. Before
acknowledging, each delivery's id (``event_id`` / ``trigger_id``) is recorded in SQLite: a retry
(``X-Slack-Retry-Num``) or a duplicate, even after a restart, is acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

import chatcanvas.adapters.slack.blocks as b
from chatcanvas import messages as m
from chatcanvas.adapters.slack.admin import SlackAdmin
from chatcanvas.adapters.slack.dedupe import Seen
from chatcanvas.adapters.slack.files import download, is_image, photo_and_mask
from chatcanvas.adapters.slack.progress import install_retries
from chatcanvas.adapters.slack.render import ThreadRenderer
from chatcanvas.adapters.slack.threads import Threads
from chatcanvas.bot.assistant import Assistant
from chatcanvas.bot.variation_list import asks_variations as _asks_variations
from chatcanvas.config import Settings
from chatcanvas.errors import ChatcanvasError
from chatcanvas.types import ChatTurn, Event, Place, Refused, UserRef

log = logging.getLogger(__name__)

PLATFORM = "slack"
MESSAGE_SUBTYPES = (None, "file_share", "thread_broadcast")
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(\|[^>]*)?>")


def strip_mentions(text: str) -> str:
    return _MENTION.sub("", text or "").strip()


def asks_variations(text: str) -> bool:
    return _asks_variations(strip_mentions(text))


class SlackBridge:
    """Holds the assistant and the Slack-side state; ``register`` adds its listeners to a Bolt app."""

    def __init__(self, assistant: Assistant, settings: Settings) -> None:
        self.assistant = assistant
        self.settings = settings
        self.seen = Seen(assistant.store)
        self.threads = Threads(assistant.store)
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: Any = None  # the Web API client's aiohttp session, when the bridge made one (closed here)
        self.admin = SlackAdmin(assistant, settings)  # `/imagine admin ...`

    # ------------------------------------------------------------ wiring

    def register(self, app: AsyncApp) -> None:
        install_retries(app.client)  # Bolt's per-request clients copy the app client's retry handlers
        app.command(self.settings.slack_command)(self.on_command)
        app.event("app_mention")(self.on_mention)
        app.event("message", matchers=[self.wants_message])(self.on_message)
        app.action(re.compile(r"^chatcanvas_(reroll|vary|recipe|upscale|outpaint)$"))(self.on_action)
        app.shortcut(b.SHORTCUT_CHECK)(self.on_check_image)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, within: float | None = None) -> None:
        """Wait for the work in flight (tests; graceful shutdown)."""
        while self.tasks:
            await asyncio.wait(list(self.tasks), timeout=within)
            if within is not None:
                break

    async def aclose(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
            self.http = None

    # ------------------------------------------------------------ gates

    def place(self, channel: str, thread_ts: str = "", channel_type: str | None = None) -> Place:
        """A Slack place; direct-message channels (type ``im``, ids starting with D) are marked as such."""
        dm = channel_type in ("im", "directmessage") or channel.startswith("D")
        return Place(platform=PLATFORM, channel=channel, thread=thread_ts, dm=dm)

    def refusal_for(self, who: UserRef, where: Place) -> str | None:
        """Why this user may not ask here (the policy's who/where rules), or None."""
        refused = self.assistant.precheck(who, where)
        return refused.reason if refused is not None else None

    def renderer(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, user: str
    ) -> ThreadRenderer:
        return ThreadRenderer(
            client, self.assistant, channel, thread_ts, user, self.settings.slack_progress_interval_s
        )

    # ------------------------------------------------------------ slash command

    async def on_command(self, args: AsyncArgs) -> None:
        body: dict[str, Any] = args.body
        trigger = body.get("trigger_id") or ""
        if trigger and not await self.seen.first_time("trigger:" + trigger):
            await args.ack()
            return
        text = str(body.get("text") or "").strip()
        first, _, rest = text.partition(" ")
        if first.lower() == "admin":  # the operator's commands: answered ephemerally, after the ack
            await args.ack()
            self.spawn(self.run_admin(args.client, body, rest.strip()))
            return
        who = UserRef(platform=PLATFORM, user=str(body.get("user_id", "")), server=str(body.get("team_id") or ""))
        refusal = self.refusal_for(who, self.place(str(body.get("channel_id", "")), "", body.get("channel_name")))
        if refusal:
            await args.ack(text=refusal)
            return
        if not text:
            await args.ack(text=m.SLACK_USAGE.format(command=self.settings.slack_command))
            return
        await args.ack()
        self.spawn(self.run_command(args.client, body, text))

    async def run_admin(self, client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
        try:
            answer = await self.admin.answer(client, body, text)
        except Exception:
            log.exception("admin command failed")
            answer = m.INTERNAL_ERROR
        await self._respond(body, answer)

    async def run_command(self, client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
        channel, user = str(body["channel_id"]), str(body["user_id"])
        team = str(body.get("team_id") or "")
        try:
            root = await client.chat_postMessage(
                    channel=channel, text=m.SLACK_ASKED.format(user=user, text=b.escape(text))
                )
        except SlackApiError as exc:
            log.info("cannot post in %s: %s", channel, exc.response.get("error"))
            await self._respond(body, m.SLACK_NOT_IN_CHANNEL.format(bot="chatcanvas"))
            return
        thread_ts = str(root["ts"])
        await self.threads.join(channel, thread_ts)
        turn = ChatTurn(
            who=UserRef(platform=PLATFORM, user=user, server=team),
            where=self.place(channel, thread_ts),
            text=text,
        )
        out = self.renderer(client, channel, thread_ts, user)
        await out.render(self._unask_if_refused(client, out, self.assistant.handle(turn)))

    async def _unask_if_refused(
        self, client: AsyncWebClient, out: ThreadRenderer, events: AsyncIterator[Event]
    ) -> AsyncIterator[Event]:
        """A request refused before anything was made leaves no "asked:" line: it is deleted, the
        refusal goes to the user alone."""
        first = True
        async for ev in events:
            if first and isinstance(ev, Refused) and out.thread_ts:
                try:
                    await client.chat_delete(channel=out.channel, ts=str(out.thread_ts))
                    await self.threads.leave(out.channel, str(out.thread_ts))
                    out.thread_ts = None
                except SlackApiError as exc:
                    log.info("could not remove the asked line: %s", exc.response.get("error"))
            first = False
            yield ev

    async def _respond(self, body: dict[str, Any], text: str) -> None:
        url = body.get("response_url")
        if not url:
            return
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        try:
            await AsyncWebhookClient(str(url)).send(text=text, response_type="ephemeral")
        except Exception:
            log.warning("could not answer through response_url", exc_info=True)

    # ------------------------------------------------------------ events

    async def on_mention(self, args: AsyncArgs) -> None:
        body: dict[str, Any] = args.body
        event: dict[str, Any] = body.get("event") or {}
        if not await self._first_delivery(body, args):
            return
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
        who = UserRef(platform=PLATFORM, user=user, server=str(event.get("team") or body.get("team_id") or ""))
        refusal = self.refusal_for(who, self.place(channel, thread_ts, event.get("channel_type")))
        if refusal:
            self.spawn(self.renderer(args.client, channel, thread_ts, user).ephemeral(refusal))
            return
        self.spawn(self.run_turn(args.client, body, event, thread_ts))

    async def wants_message(self, args: AsyncArgs) -> bool:
        """Only the messages we answer: DMs, and replies in threads we're part of (not mentions: those
        arrive as app_mention too). Everything else stays free for the host app's own listeners."""
        event: dict[str, Any] = (args.body or {}).get("event") or {}
        if event.get("subtype") not in MESSAGE_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return False
        if event.get("channel_type") == "im":
            return True
        thread_ts = event.get("thread_ts")
        if not thread_ts:
            return False
        bot_user = args.context.bot_user_id
        if bot_user and f"<@{bot_user}" in str(event.get("text", "")):
            return False
        return await self.threads.is_ours(str(event.get("channel", "")), str(thread_ts))

    async def on_message(self, args: AsyncArgs) -> None:
        body: dict[str, Any] = args.body
        event: dict[str, Any] = body.get("event") or {}
        if not await self._first_delivery(body, args):
            return
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        thread_ts = str(event.get("thread_ts") or "")  # a DM answered in place, a thread in its thread
        who = UserRef(platform=PLATFORM, user=user, server=str(event.get("team") or body.get("team_id") or ""))
        refusal = self.refusal_for(who, self.place(channel, thread_ts, event.get("channel_type")))
        if refusal:
            self.spawn(self.renderer(args.client, channel, thread_ts, user).ephemeral(refusal))
            return
        self.spawn(self.run_turn(args.client, body, event, thread_ts))

    async def _first_delivery(self, body: dict[str, Any], args: AsyncArgs) -> bool:
        event_id = body.get("event_id")
        retry = args.request.headers.get("x-slack-retry-num")
        if not event_id:
            return True
        fresh = await self.seen.first_time("event:" + str(event_id))
        if not fresh:
            log.info("ignoring a repeated delivery of %s (retry %s)", event_id, retry[0] if retry else "-")
        return fresh

    async def run_turn(
        self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any], thread_ts: str
    ) -> None:
        channel, user = str(event["channel"]), str(event["user"])
        team = str(event.get("team") or body.get("team_id") or "")
        who = UserRef(platform=PLATFORM, user=user, server=team)
        where = self.place(channel, thread_ts, event.get("channel_type"))
        out = self.renderer(client, channel, thread_ts, user)
        text = strip_mentions(str(event.get("text", "")))
        await self.threads.join(channel, thread_ts)
        events: AsyncIterator[Event]
        try:
            shared = photo_and_mask(event.get("files") or [])
            in_dm = event.get("channel_type") == "im"  # answered in place: the DM is the conversation
            if shared:
                photo, mask = shared
                if thread_ts or in_dm:
                    await self.threads.remember_file(
                        channel, thread_ts, str(photo["id"]), str(mask["id"]) if mask else None
                    )
                if not text:
                    await out.ephemeral(m.NO_VARIATIONS)
                    return
                events = await self._vary(client, photo, mask, text, who, where)
            elif (
                (thread_ts or in_dm)
                and asks_variations(text)
                and (last := await self.threads.last_file(channel, thread_ts))
            ):
                fid, mid = last
                events = await self._vary(client, {"id": fid}, {"id": mid} if mid else None, text, who, where)
            else:
                events = self.assistant.handle(ChatTurn(who=who, where=where, text=text))
        except ChatcanvasError as exc:
            await out.ephemeral(b.refusal(str(exc)))
            return
        await out.render(events)

    async def _vary(
        self,
        client: AsyncWebClient,
        photo: dict[str, Any],
        mask: dict[str, Any] | None,
        text: str,
        who: UserRef,
        where: Place,
    ) -> AsyncIterator[Event]:
        """Download the shared photo (and its mask) with the bot token, and recolour it per variation."""
        cap = self.settings.max_upload_bytes
        data = await download(client, photo, cap)
        mask_data = await download(client, mask, cap) if mask else None
        return self.assistant.vary_product(data, strip_mentions(text), who, where, mask=mask_data)

    # ------------------------------------------------------------ buttons

    async def on_action(self, args: AsyncArgs) -> None:
        await args.ack()
        body: dict[str, Any] = args.body
        trigger = body.get("trigger_id") or ""
        if trigger and not await self.seen.first_time("trigger:" + trigger):
            return
        action = (body.get("actions") or [{}])[0]
        image_id = str(action.get("value") or "")
        outpaint = ""
        if action.get("action_id") == b.ACTION_OUTPAINT:  # the overflow menu: "<action>|<image id>"
            outpaint, _, image_id = str((action.get("selected_option") or {}).get("value") or "").partition("|")
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        user = str((body.get("user") or {}).get("id") or "")
        team = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")
        message = body.get("message") or {}
        container = body.get("container") or {}
        thread_ts = str(container.get("thread_ts") or message.get("thread_ts") or message.get("ts") or "")
        out = self.renderer(args.client, channel, thread_ts, user)
        who = UserRef(platform=PLATFORM, user=user, server=team)
        where = self.place(channel, thread_ts)
        refusal = self.refusal_for(who, where)
        if refusal:
            self.spawn(out.ephemeral(refusal))
            return
        kind = str(action.get("action_id"))
        if kind == b.ACTION_RECIPE:
            self.spawn(self.show_recipe(out, image_id))
        elif kind == b.ACTION_REROLL:
            self.spawn(out.render(self.assistant.reroll(image_id, who, where)))
        elif kind == b.ACTION_VARY:
            self.spawn(out.render(self.assistant.vary(image_id, who, where)))
        elif kind == b.ACTION_UPSCALE:
            self.spawn(out.render(self.assistant.upscale(image_id, who, where)))
        elif kind == b.ACTION_OUTPAINT:
            self.spawn(out.render(self.assistant.outpaint(image_id, outpaint, who, where)))

    async def on_check_image(self, args: AsyncArgs) -> None:
        """The message shortcut "Check image": the provenance report of the message's images, to the user only."""
        await args.ack()
        body: dict[str, Any] = args.body
        channel = str((body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        message = body.get("message") or {}
        thread_ts = str(message.get("thread_ts") or "") or None
        out = ThreadRenderer(args.client, self.assistant, channel, thread_ts, user, self.settings.slack_progress_interval_s)
        self.spawn(self.check_images(args.client, out, [f for f in message.get("files") or [] if is_image(f)]))

    async def check_images(self, client: AsyncWebClient, out: ThreadRenderer, files: list[dict[str, Any]]) -> None:
        if not files:
            await out.ephemeral(m.SLACK_CHECK_NO_IMAGE)
            return
        reports = []
        for f in files[:4]:
            try:
                data = await download(client, f, self.settings.max_upload_bytes)
            except ChatcanvasError as exc:
                reports.append(f"{f.get('name', 'image')}: {exc}")
                continue
            reports.append(await asyncio.to_thread(self.assistant.check_image, data, str(f.get("name") or "image")))
        text = b.clip("\n\n".join(reports), 2800)
        await out.ephemeral(text, blocks=b.recipe_blocks(text))

    async def show_recipe(self, out: ThreadRenderer, image_id: str) -> None:
        text = await asyncio.to_thread(self.assistant.recipe, image_id)
        await out.ephemeral(b.clip(text, 2900), blocks=b.recipe_blocks(text))


def register(app: AsyncApp, assistant: Assistant, settings: Settings | None = None) -> SlackBridge:
    """Add chatcanvas's listeners to an existing Bolt ``AsyncApp``; returns the bridge (drain, aclose).

    Bolt runs the first listener that matches an event, so call this before registering catch-all
    ``message`` / ``app_mention`` listeners of your own. Our ``message`` listener matches only DMs and
    replies in threads chatcanvas answered; the app's client must carry the bot token (files:read).
    """
    bridge = SlackBridge(assistant, settings or assistant.settings)
    bridge.register(app)
    assistant.begin_warm_up()  # load the model now, in a thread (at start when no loop runs yet)
    return bridge
