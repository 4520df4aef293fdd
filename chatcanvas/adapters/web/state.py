"""What the routes share: the app context, API keys, live jobs. Built once per app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from chatcanvas.adapters.web.auth import ApiKeys
from chatcanvas.adapters.web.tracker import WebJobs

if TYPE_CHECKING:
    from chatcanvas.app import AppContext


@dataclass
class WebState:
    ctx: AppContext
    keys: ApiKeys
    jobs: WebJobs

    @classmethod
    def build(cls, ctx: AppContext) -> WebState:
        keys = ApiKeys(ctx.settings, ctx.store)
        sign = None
        if keys.enabled:  # image links carry a signature (HMAC over id + expiry): no key in any URL
            from chatcanvas.safety.signing import sign_image_url

            settings = ctx.settings

            def sign(path: str, image_id: str) -> str:
                return sign_image_url(path, image_id, settings)

        return cls(ctx=ctx, keys=keys, jobs=WebJobs(ctx.store, ctx.assistant, sign=sign))

    async def aclose(self) -> None:
        tasks = [j.task for j in self.jobs.live.values() if j.task is not None and not j.task.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class Holder:
    """The app's state, given at creation or built on first use (a mounted app gets no lifespan)."""

    def __init__(self, ctx: AppContext | None) -> None:
        self.state: WebState | None = WebState.build(ctx) if ctx is not None else None
        self.owns_ctx = ctx is None
        self._lock = asyncio.Lock()

    async def get(self) -> WebState:
        if self.state is None:
            async with self._lock:
                if self.state is None:
                    from chatcanvas.app import build_app
                    from chatcanvas.config import load_settings

                    self.state = WebState.build(await build_app(load_settings()))
        return self.state

    async def aclose(self) -> None:
        state, self.state = self.state, None
        if state is None:
            return
        await state.aclose()
        if self.owns_ctx:
            await state.ctx.aclose()
        else:
            self.state = state  # a context we were given stays usable: its owner closes it


async def web_state(request: Request) -> WebState:
    holder: Holder = request.app.state.chatcanvas
    return await holder.get()
