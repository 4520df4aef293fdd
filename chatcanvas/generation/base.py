"""The backend seam: one abstract method, capabilities as class attributes.

Built-in backends register through the ``chatcanvas.backends`` entry point group, the same way a
third-party one would (see :func:`chatcanvas.generation.registry.load_backend`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from chatcanvas.types import GeneratedImage, ImageSpec, Mode


class StepInfo(BaseModel):
    """What a backend reports after each denoising step (modelled on ``callback_on_step_end``)."""

    model_config = ConfigDict(frozen=True)

    step: int  # 1-based, steps done so far
    total: int
    preview_png: bytes | None = None  # a small preview image, when cheap to make
    note: str | None = None  # why the job is not stepping, said to its user (e.g. waiting for workers)


# Called from the worker thread after every step. Raise ``JobCancelled`` to stop the generation.
StepCallback = Callable[[StepInfo], None]


class Backend(ABC):
    """An image generator. ``generate`` gets fully resolved specs (seed, size, steps set)."""

    name: ClassVar[str] = "base"
    supports_img2img: ClassVar[bool] = False
    supports_inpaint: ClassVar[bool] = False
    max_batch: ClassVar[int] = 1  # how many specs one ``generate`` call may take

    @abstractmethod
    async def generate(
        self, specs: list[ImageSpec], on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        """Make ``spec.count`` images per spec, in order; image ``i`` of a spec uses ``seed + i``."""

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        """Fill the defaults this backend knows (size, steps, guidance). Called before queueing."""
        return spec

    def batch_key(self, spec: ImageSpec) -> Hashable:
        """Specs with equal keys may share one ``generate`` call."""
        return (spec.model, spec.width, spec.height, spec.steps, spec.mode, spec.backend)

    @property
    def model_name(self) -> str:
        return self.name

    async def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load models now, off the event loop (the engine calls it once at start, before any job).

        Constructing a backend must stay cheap (no model loading): requests are resolved with it,
        and acknowledged, while this runs; their jobs wait in the queue until it returns.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class PipelineHost(Protocol):
    """What the local backend's helper passes (upscale, outpaint) use of it, so they need not import it."""

    name: ClassVar[str]
    settings: Any
    loras: Any

    @property
    def model_name(self) -> str: ...

    def device(self) -> str: ...

    def pipe_for(self, mode: Mode) -> Any: ...

    def native_size(self) -> int: ...
