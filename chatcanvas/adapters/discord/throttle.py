"""Edits of one message, at most one per interval, newest state wins, 429s backed off.

Discord allows about five edits per five seconds per message; progress comes faster than that. A
:class:`EditThrottle` owns one message's edits: :meth:`offer` replaces whatever progress edit is
waiting (best effort: a failed progress edit is skipped), :meth:`finish` delivers the final state
(retried on 429 and server errors) and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord

log = logging.getLogger(__name__)

EditFn = Callable[..., Awaitable[Any]]


def retry_after_of(exc: BaseException, default: float = 1.0) -> float | None:
    """Seconds to wait if ``exc`` is a Discord rate limit, else ``None``."""
    if isinstance(exc, discord.RateLimited):
        return float(exc.retry_after)
    if isinstance(exc, discord.HTTPException) and exc.status == 429:
        header = exc.response.headers.get("Retry-After") if exc.response is not None else None
        try:
            return float(header) if header else default
        except ValueError:
            return default
    return None


class EditThrottle:
    def __init__(
        self,
        edit: EditFn,
        *,
        interval: float = 1.0,
        final_attempts: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._edit = edit
        self.interval = interval
        self.final_attempts = final_attempts
        self._clock = clock
        self._next_at = 0.0  # earliest time the next edit may go
        self._pending: dict[str, Any] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one edit in flight at a time
        self.sent = 0
        self.gone = False  # the message was deleted: stop editing

    def hold_off(self, seconds: float | None = None) -> None:
        """Count an edit (or the message's creation) made elsewhere against the interval."""
        self._next_at = max(self._next_at, self._clock() + (self.interval if seconds is None else seconds))

    def offer(self, **kwargs: Any) -> None:
        """Queue a best-effort edit; replaces one not yet sent."""
        if self.gone:
            return
        self._pending = kwargs
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _wait_turn(self) -> None:
        delay = self._next_at - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _run(self) -> None:
        while self._pending is not None and not self.gone:
            async with self._lock:
                await self._wait_turn()
                kwargs, self._pending = self._pending, None
                if kwargs is None:
                    break
                try:
                    await self._edit(**kwargs)
                    self.sent += 1
                    self.hold_off()
                except discord.NotFound:
                    self.gone = True
                except discord.HTTPException as exc:
                    wait = retry_after_of(exc)
                    if wait is None:
                        log.warning("progress edit failed: %s", exc)
                        self.hold_off()
                    else:
                        log.info("progress edit rate limited; waiting %.2f s", wait)
                        self.hold_off(max(wait, self.interval))
                except discord.RateLimited as exc:
                    self.hold_off(max(float(exc.retry_after), self.interval))
                except Exception:  # a progress edit is best effort; the final one reports
                    log.warning("progress edit failed", exc_info=True)
                    self.hold_off()

    async def finish(self, **kwargs: Any) -> None:
        """Deliver the final state: drops any pending progress, respects the interval, retries 429s."""
        self._pending = None
        async with self._lock:
            last: BaseException | None = None
            for _ in range(self.final_attempts):
                await self._wait_turn()
                try:
                    await self._edit(**kwargs)
                    self.sent += 1
                    self.hold_off()
                    return
                except (discord.HTTPException, discord.RateLimited) as exc:
                    wait = retry_after_of(exc)
                    if wait is None:
                        status = getattr(exc, "status", 0)
                        if status < 500:
                            raise
                        wait = self.interval
                    last = exc
                    self.hold_off(max(wait, self.interval))
            assert last is not None
            raise last

    async def close(self) -> None:
        self._pending = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
