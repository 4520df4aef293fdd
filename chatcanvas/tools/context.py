"""What the image tools are bound to: who asks, where, the limits, and the service that makes images.

A :class:`ToolContext` lives for one chat turn (or one external agent session). With a ``service``
(the :class:`chatcanvas.bot.assistant.Assistant`) the tools submit real jobs, stream their events to
``sink`` and return the images as artifacts; without one they only *plan* (record the specs), which
``chatcanvas ask --dry-run`` and the benchmark use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chatcanvas.prompts import Family
from chatcanvas.types import Attachment, Event, GeneratedImage, ImageSpec, Limits, Place, Refused, UserRef

EventSink = Callable[[Event], Awaitable[None]]
TokenCounter = Callable[[str], "int | None"]


class ImageService(Protocol):
    """The part of the Assistant the tools use."""

    def generate(
        self, spec: ImageSpec, who: UserRef, where: Place, prompt_in: str = ""
    ) -> AsyncIterator[Event]: ...

    def vary_product(
        self,
        image: bytes,
        variations: Sequence[str],
        who: UserRef,
        where: Place,
        mask: bytes | None = None,
        subject: str = "",
    ) -> AsyncIterator[Event]: ...

    def upscale(self, image_id: str, who: UserRef, where: Place, factor: int = 2) -> AsyncIterator[Event]: ...

    def refusal(self, exc: Exception, who: UserRef, where: Place, text: str = "") -> Refused: ...


async def _drop(ev: Event) -> None:
    return None


@dataclass
class ToolContext:
    limits: Limits
    who: UserRef = field(default_factory=lambda: UserRef(platform="langchain", user="agent"))
    where: Place = field(default_factory=lambda: Place(platform="langchain", channel="agent"))
    family: Family = "sd"
    service: ImageService | None = None  # None: plan only
    sink: EventSink = _drop
    count_tokens: TokenCounter | None = None
    image_bytes: Callable[[str], bytes] | None = None  # an image id -> its PNG (the store)
    describe: Callable[[], str] | None = None  # text for describe_settings
    backend: str | None = None
    native_size: int | None = None  # the model's square side; aspect sizes keep about that many pixels
    attachments: tuple[Attachment, ...] = ()
    recent_images: list[str] = field(default_factory=list)  # image ids, newest last
    prompt_in: str = ""  # what the user wrote, for the job log
    per_turn: bool = True  # the image budget (limits.max_count) counts per turn
    # what happened (read by the agent runner after the turn)
    specs: list[ImageSpec] = field(default_factory=list)  # planned or submitted
    images: list[GeneratedImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tool_calls: int = 0
    too_long: int = 0  # prompts rejected for the token window this turn
    _used: int = 0

    def native_side(self) -> int:
        return self.native_size or (1024 if self.family == "dalle" else 512)

    @property
    def images_left(self) -> int:
        return self.limits.max_count - self._used if self.per_turn else self.limits.max_count

    def spend(self, n: int) -> None:
        self._used += n
