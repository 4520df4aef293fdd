"""Render one stream of core events into a Slack thread: a throttled progress message, the images
uploaded inline with the rewritten prompt, buttons under them, refusals as ephemeral messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

import chatcanvas.adapters.slack.blocks as b
from chatcanvas import messages as m
from chatcanvas.adapters.slack.files import upload_images
from chatcanvas.adapters.slack.progress import StatusMessage
from chatcanvas.bot.assistant import Assistant
from chatcanvas.bot.view import TurnView
from chatcanvas.types import (
    Event,
    Failed,
    Images,
    Refused,
    Text,
)

log = logging.getLogger(__name__)


class ThreadRenderer:
    """Where to answer (channel, thread) and to whom ephemeral notes go (user)."""

    def __init__(
        self,
        client: AsyncWebClient,
        assistant: Assistant,
        channel: str,
        thread_ts: str | None,
        user: str,
        interval: float,
    ) -> None:
        self.client = client
        self.assistant = assistant
        self.channel = channel
        self.thread_ts = thread_ts or None
        self.user = user
        self.interval = interval

    async def post(self, text: str, blocks: list[dict[str, object]] | None = None) -> None:
        await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=text, blocks=blocks
            )

    async def ephemeral(self, text: str, blocks: list[dict[str, object]] | None = None) -> None:
        await self.client.chat_postEphemeral(
                channel=self.channel, user=self.user, thread_ts=self.thread_ts, text=text, blocks=blocks
            )

    async def render(self, events: AsyncIterator[Event]) -> None:
        """Consume ``events`` to the end; never raises (errors are logged and told in the thread)."""
        status = StatusMessage(self.client, self.channel, self.thread_ts, self.interval)
        view = TurnView()  # the turn so far: the status message is drawn from it

        async def show() -> None:
            if view.jobs:
                await status.set(b.status_text(status_lines(view), {j: v.prompt for j, v in view.jobs.items()}))

        try:
            async for ev in events:
                view.apply(ev)
                if isinstance(ev, Text):
                    await self.post(b.clip(ev.text, 3900))
                elif isinstance(ev, Refused):
                    await self.ephemeral(b.refusal(ev.reason, ev.retry_after))
                elif isinstance(ev, Images):
                    await self.deliver(ev)
                    await show()
                elif isinstance(ev, Failed) and not ev.job_id:
                    await self.post(m.SLACK_FAILED.format(reason=ev.reason))
                else:
                    await show()
                    if isinstance(ev, Failed) and ev.job_id:  # told in the thread: not again after a restart
                        await asyncio.to_thread(self.assistant.mark_delivered, ev.job_id)
        except asyncio.CancelledError:
            raise
        except SlackApiError as exc:
            log.warning(
                "Slack call failed while answering in %s: %s", self.channel, exc.response.get("error")
            )
        except Exception:
            log.exception("answering in Slack failed")
            try:
                await self.post(m.INTERNAL_ERROR)
            except Exception:
                log.exception("could not tell the thread either")
        finally:
            await status.close()

    async def deliver(self, ev: Images) -> None:
        """Upload the images (already on disk), then the buttons; mark the job delivered."""
        for note in ev.notes:
            await self.post(b.clip(note, 3900))
        if ev.images:
            await upload_images(self.client, self.channel, self.thread_ts, ev.images)
            await self.post(b.result_comment(ev.images), blocks=b.result_blocks(ev.images, self.assistant.outpaint_buttons))
        await asyncio.to_thread(self.assistant.mark_delivered, ev.job_id)


def status_lines(view: TurnView) -> dict[str, str]:
    """One line per job of the turn, from the one view of it."""
    out: dict[str, str] = {}
    for job_id, jv in view.jobs.items():
        if jv.state == "queued":
            out[job_id] = b.queued_line(jv.position or 0)
        elif jv.state == "running" and jv.note:
            out[job_id] = jv.note
        elif jv.state == "running":
            out[job_id] = b.progress_line(jv.step, jv.total) if jv.total else m.SLACK_STARTED
        elif jv.state == "done":
            out[job_id] = m.SLACK_DONE
        elif jv.state == "failed":
            out[job_id] = m.SLACK_FAILED.format(reason=jv.error or "")
        else:
            out[job_id] = m.SLACK_CANCELLED
    return out
