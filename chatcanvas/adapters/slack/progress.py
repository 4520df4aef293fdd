"""The progress message: posted once in the thread, then edited (``chat.update``) as jobs move.

Edits are throttled to one per ``interval`` seconds per message (Slack allows about one write per
second per channel, and ``chat.update`` is a Tier 3 method); in between, only the latest text is
kept. A ``ratelimited`` answer (HTTP 429) pauses the message for the ``Retry-After`` seconds Slack
asks for, after which the newest text goes out. :meth:`StatusMessage.close` delivers the final
text, waiting out the throttle and rate limits, before it returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

MAX_WAIT_S = 60.0


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asks us to wait, when ``exc`` is a rate limit; ``None`` for other errors."""
    resp = exc.response
    status = getattr(resp, "status_code", None)
    error = resp.get("error") if hasattr(resp, "get") else None
    if status != 429 and error != "ratelimited":
        return None
    headers: Any = getattr(resp, "headers", None) or {}
    value = None
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if hasattr(headers, "get") else None
        if value is not None:
            break
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return min(MAX_WAIT_S, max(0.0, float(value))) if value is not None else 1.0
    except ValueError:
        return 1.0


def install_retries(client: AsyncWebClient, attempts: int = 3) -> AsyncWebClient:
    """Let the client sleep out ``ratelimited`` answers itself (slack_sdk's own retry handler, which
    honours Retry-After), once per client."""
    from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=attempts))
    return client


class StatusMessage:
    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None, interval: float) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.interval = interval
        self.ts: str | None = None
        self.updates = 0  # chat.update calls that went through
        self._text = ""
        self._sent = ""
        self._next_at = 0.0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def set(self, text: str) -> None:
        """Show ``text``: posts the message the first time, later edits are throttled."""
        self._text = text
        if self.ts is None:
            resp = await self.client.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, text=text
                )
            self.ts = str(resp["ts"])
            self._sent = text
            self._next_at = self._now() + self.interval
            self._task = asyncio.create_task(self._flusher(), name=f"slack-status-{self.ts}")
            return
        self._wake.set()

    async def close(self, text: str | None = None, give_up_after: float = 120) -> None:
        """Deliver the last text (or ``text``) and stop."""
        if text is not None:
            if self.ts is None:
                await self.set(text)
            self._text = text
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), give_up_after)
        except TimeoutError:
            log.warning("gave up updating the status message %s", self.ts)
            self._task.cancel()

    async def _flusher(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            delay = self._next_at - self._now()
            if delay > 0:
                await asyncio.sleep(delay)
            text = self._text
            if text != self._sent and self.ts is not None:
                try:
                    await self.client.chat_update(channel=self.channel, ts=self.ts, text=text)
                    self._sent = text
                    self.updates += 1
                    self._next_at = self._now() + self.interval
                    failures = 0
                except SlackApiError as exc:
                    wait = retry_after(exc)
                    failures += 1
                    if wait is None or failures > 5:
                        log.warning("chat.update failed: %s", exc.response.get("error"))
                        self._sent = text  # drop this text; a newer one may still go out
                    else:
                        self._next_at = self._now() + wait
                    self._wake.set()
                    continue
            if self._closing and self._text == self._sent:
                return
            if self._text != self._sent:
                self._wake.set()
