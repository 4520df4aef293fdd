"""Core types shared by every part of chatcanvas: specs, images, chat turns and events.

Limits are enforced here, once: :class:`ImageSpec` holds the hard bounds that no configuration
can lift, and :class:`Limits` (built from :class:`chatcanvas.config.Settings`) checks or clamps a
spec against the configured ones.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Hard bounds: no setting may go past these.
MAX_SIDE = 4096
MAX_COUNT = 64
MAX_STEPS = 500
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**32 - 1


class Mode(StrEnum):
    TEXT2IMG = "text2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"


class Aspect(StrEnum):
    SQUARE = "square"
    LANDSCAPE = "landscape"  # 3:2
    PORTRAIT = "portrait"  # 2:3
    WIDE = "wide"  # 16:9
    TALL = "tall"  # 9:16

    @property
    def ratio(self) -> float:
        return {"square": 1.0, "landscape": 1.5, "portrait": 2 / 3, "wide": 16 / 9, "tall": 9 / 16}[
            self.value
        ]

    def size(self, base: int) -> tuple[int, int]:
        """Width and height for this aspect with about ``base * base`` pixels, multiples of 8.

        At ``base`` 1024 (SDXL's native side) the nearest of the sizes SDXL was trained on.
        """
        if base == SDXL_BASE:
            return sdxl_bucket(self.ratio)
        r = self.ratio
        w = round(base * r**0.5 / 8) * 8
        h = round(base / r**0.5 / 8) * 8
        return max(8, w), max(8, h)


SDXL_BASE = 1024
# The sizes SDXL was trained on (its "buckets"), landscape first; each also taken transposed.
SDXL_BUCKETS = ((1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640))


def sdxl_bucket(ratio: float) -> tuple[int, int]:
    """The SDXL training size whose width/height ratio is nearest to ``ratio`` (log scale)."""
    import math

    sizes = [*SDXL_BUCKETS, *((h, w) for w, h in SDXL_BUCKETS[1:])]
    return min(sizes, key=lambda s: abs(math.log(s[0] / s[1]) - math.log(max(ratio, 1e-6))))


def hires_size(w: int, h: int, scale: float) -> tuple[int, int]:
    """The size a hires fix of ``scale`` makes from ``w`` x ``h`` (as A1111: int(side * scale), then /8)."""
    return max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Margins(_Frozen):
    """Pixels to add on each side of an image (outpainting)."""

    left: Annotated[int, Field(ge=0, le=MAX_SIDE)] = 0
    right: Annotated[int, Field(ge=0, le=MAX_SIDE)] = 0
    up: Annotated[int, Field(ge=0, le=MAX_SIDE)] = 0
    down: Annotated[int, Field(ge=0, le=MAX_SIDE)] = 0

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.model_dump().items() if v)


class Colourway(_Frozen):
    """A product recoloured (generation/colourway.py): the colour as asked, the sRGB used, a material."""

    colour: Annotated[str, Field(min_length=1, max_length=60)]  # as asked: "forest green", "#e07b39"
    hex: Annotated[str, Field(pattern=r"^#[0-9a-f]{6}$")]
    material: Annotated[str, Field(max_length=60)] | None = None  # "leather", "with a floral print"


class ImageSpec(_Frozen):
    """What to draw. ``None`` fields take the backend's or the settings' defaults."""

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    negative_prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] = ""
    width: Annotated[int, Field(ge=8, le=MAX_SIDE, multiple_of=8)] | None = None
    height: Annotated[int, Field(ge=8, le=MAX_SIDE, multiple_of=8)] | None = None
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    guidance: Annotated[float, Field(ge=0.0, le=50.0)] | None = None
    style: str | None = None
    init_image: str | None = None  # image id in the store, or a file path
    mask_image: str | None = None
    strength: Annotated[float, Field(ge=0.0, le=1.0)] = 0.75
    backend: str | None = None
    model: str | None = None
    # A1111-style sampling (local backend): names from chatcanvas.generation.samplers.SAMPLERS
    sampler: str | None = None  # e.g. "Euler a", "DPM++ 2M"; None: the model's own scheduler
    schedule: str | None = None  # Karras, Exponential, SGM Uniform; None: the scheduler's own spacing
    hires_scale: Annotated[float, Field(ge=1.0, le=4.0)] | None = None  # hires fix: upscale by this
    hires_steps: Annotated[int, Field(ge=0, le=MAX_STEPS)] | None = None  # 0/None: as many as steps
    hires_denoise: Annotated[float, Field(gt=0.0, le=1.0)] | None = None  # None: 0.7, as A1111
    # A1111 prompt features, enlarging and outpainting (generation/prompt_weighting.py, lora.py,
    # upscale.py, outpaint.py): LoRA tags and weights live in the prompt itself
    clip_skip: Annotated[int, Field(ge=1, le=4)] | None = None  # A1111 "Clip skip"; 1/None: last layer
    upscale_by: Literal[2, 4] | None = None  # enlarge init_image by this factor (no new composition)
    outpaint: Margins | None = None  # extend init_image by these many pixels on each side
    # Product colourways: init_image's product (mask_image, else found) recoloured exactly, at the
    # photo's own size; with a material, then a light inpainting pass (local backend)
    colourway: Colourway | None = None

    @model_validator(mode="after")
    def _enlarging_needs_image(self) -> ImageSpec:
        if (self.upscale_by or self.outpaint) and not self.init_image:
            raise ValueError("upscaling and outpainting need an init image")
        if self.upscale_by and self.outpaint:
            raise ValueError("upscale and outpaint are separate requests")
        return self

    @model_validator(mode="after")
    def _colourway_needs_image(self) -> ImageSpec:
        if self.colourway and not self.init_image:
            raise ValueError("a colourway needs the product photo as init image")
        return self

    @model_validator(mode="before")
    @classmethod
    def _sampler_names(cls, data: object) -> object:
        """``"DPM++ 2M Karras"`` -> sampler + schedule; any spelling -> the A1111 name."""
        if isinstance(data, dict) and (data.get("sampler") or data.get("schedule")):
            from chatcanvas.generation.samplers import canonical

            try:
                sampler, schedule = canonical(data.get("sampler"), data.get("schedule"))
            except (ValueError, AttributeError):
                return data  # the field validators below say what is wrong
            data = {**data, "sampler": sampler, "schedule": schedule}
        return data

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, v: str | None) -> str | None:
        from chatcanvas.generation.samplers import canonical

        return canonical(v, None)[0] if v else None

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, v: str | None) -> str | None:
        from chatcanvas.generation.samplers import canonical

        return canonical(None, v)[1] if v else None

    @model_validator(mode="after")
    def _sampler_takes_schedule(self) -> ImageSpec:
        from chatcanvas import messages as m
        from chatcanvas.generation.samplers import canonical

        if self.sampler and self.schedule:
            canonical(self.sampler, self.schedule)
        if self.hires_scale and self.init_image:
            raise ValueError(m.HIRES_TEXT_ONLY)
        return self

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the prompt is empty")
        return v.strip()

    @model_validator(mode="after")
    def _mask_needs_image(self) -> ImageSpec:
        if self.mask_image and not self.init_image:
            raise ValueError("a mask needs an init image to paint into")
        return self

    @property
    def mode(self) -> Mode:
        if self.mask_image:
            return Mode.INPAINT
        if self.init_image:
            return Mode.IMG2IMG
        return Mode.TEXT2IMG


class Limits(_Frozen):
    """Configured limits (from Settings). ``check`` refuses, ``clamp`` bends and says how."""

    max_side: int = 1024
    max_pixels: int = 1024 * 1024
    max_count: int = 4
    max_steps: int = 50
    max_prompt_chars: int = 1000
    max_guidance: float = 20.0

    def fit_size(self, w: int, h: int) -> tuple[int, int]:
        """``w`` x ``h`` scaled down (same aspect, multiples of 8) to fit ``max_side`` and ``max_pixels``."""
        w, h = max(8, w), max(8, h)
        scale = min(1.0, self.max_side / max(w, h), (self.max_pixels / (w * h)) ** 0.5)
        return max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)

    def size_for(
        self,
        aspect: Aspect | None,
        ratio: float | None,
        size: tuple[int, int] | None,
        base: int,
        *,
        sdxl_buckets: bool = False,
    ) -> tuple[int | None, int | None]:
        """Width and height within the limits for an exact size, a ratio or an aspect; square: (None, None).

        ``sdxl_buckets``: a Stable Diffusion model of ``base`` 1024 gets the nearest SDXL training size.
        """
        if size:
            return self.fit_size(size[0], size[1])
        if ratio is None:
            if aspect is None or aspect is Aspect.SQUARE:
                return None, None
            ratio = aspect.ratio
        if sdxl_buckets and base == SDXL_BASE:
            return self.fit_size(*sdxl_bucket(ratio))
        return self.fit_size(int(base * ratio**0.5), int(base / ratio**0.5))

    def problems(self, spec: ImageSpec) -> list[str]:
        from chatcanvas import messages as m

        out = []
        if len(spec.prompt) > self.max_prompt_chars:
            out.append(m.PROMPT_TOO_LONG.format(n=len(spec.prompt), limit=self.max_prompt_chars))
        for name, v in (("width", spec.width), ("height", spec.height)):
            if v is not None and v > self.max_side:
                out.append(m.SIZE_TOO_BIG.format(name=name, n=v, limit=self.max_side))
        if spec.width and spec.height and spec.width * spec.height > self.max_pixels:
            out.append(m.TOO_MANY_PIXELS.format(w=spec.width, h=spec.height, limit=self.max_pixels))
        if spec.count > self.max_count:
            out.append(m.COUNT_TOO_BIG.format(n=spec.count, limit=self.max_count))
        if spec.steps is not None and spec.steps > self.max_steps:
            out.append(m.STEPS_TOO_BIG.format(n=spec.steps, limit=self.max_steps))
        if spec.guidance is not None and spec.guidance > self.max_guidance:
            out.append(m.GUIDANCE_TOO_BIG.format(n=spec.guidance, limit=self.max_guidance))
        if spec.hires_scale and spec.width and spec.height:  # the limits hold for the pixels that come out
            hw, hh = hires_size(spec.width, spec.height, spec.hires_scale)
            if max(hw, hh) > self.max_side or hw * hh > self.max_pixels:
                limit = f"{self.max_side}px a side and {self.max_pixels} pixels"
                out.append(m.HIRES_TOO_BIG.format(scale=spec.hires_scale, w=hw, h=hh, limit=limit))
        if spec.hires_steps is not None and spec.hires_steps > self.max_steps:
            out.append(m.STEPS_TOO_BIG.format(n=spec.hires_steps, limit=self.max_steps))
        return out

    def check(self, spec: ImageSpec) -> ImageSpec:
        from chatcanvas.errors import SpecError

        problems = self.problems(spec)
        if problems:
            raise SpecError(" ".join(problems))
        return spec

    def clamp(self, spec: ImageSpec) -> tuple[ImageSpec, list[str]]:
        """Bring ``spec`` within the limits; the notes say what changed, for the user."""
        from chatcanvas import messages as m

        notes: list[str] = []
        upd: dict[str, object] = {}
        if len(spec.prompt) > self.max_prompt_chars:
            upd["prompt"] = spec.prompt[: self.max_prompt_chars].rsplit(" ", 1)[0] or spec.prompt[:1]
            notes.append(m.CLAMPED_PROMPT.format(limit=self.max_prompt_chars))
        if spec.count > self.max_count:
            upd["count"] = self.max_count
            notes.append(m.CLAMPED_COUNT.format(n=spec.count, limit=self.max_count))
        if spec.steps is not None and spec.steps > self.max_steps:
            upd["steps"] = self.max_steps
            notes.append(m.CLAMPED_STEPS.format(n=spec.steps, limit=self.max_steps))
        if spec.guidance is not None and spec.guidance > self.max_guidance:
            upd["guidance"] = self.max_guidance
        w, h = spec.width, spec.height
        if w is not None and h is not None:
            scale = min(1.0, self.max_side / max(w, h), (self.max_pixels / (w * h)) ** 0.5)
            if scale < 1.0:
                nw, nh = max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)
                upd["width"], upd["height"] = nw, nh
                notes.append(m.CLAMPED_SIZE.format(w=w, h=h, nw=nw, nh=nh))
        else:
            for name, v in (("width", w), ("height", h)):
                if v is not None and v > self.max_side:
                    upd[name] = self.max_side // 8 * 8
                    notes.append(
                        m.CLAMPED_SIZE.format(w=w, h=h, nw=upd.get("width", w), nh=upd.get("height", h))
                    )
        hs, fw, fh = spec.hires_scale, upd.get("width", w), upd.get("height", h)
        if hs and isinstance(fw, int) and isinstance(fh, int):  # hires fix: fit the output, not the first pass
            scale = min(1.0, self.max_side / (max(fw, fh) * hs), (self.max_pixels / (fw * fh * hs * hs)) ** 0.5)
            if scale < 1.0:
                nw, nh = max(8, int(fw * scale) // 8 * 8), max(8, int(fh * scale) // 8 * 8)
                upd["width"], upd["height"] = nw, nh
                notes.append(m.HIRES_CLAMPED.format(scale=hs, w=fw, h=fh, nw=nw, nh=nh))
        if spec.hires_steps is not None and spec.hires_steps > self.max_steps:
            upd["hires_steps"] = self.max_steps
            notes.append(m.CLAMPED_STEPS.format(n=spec.hires_steps, limit=self.max_steps))
        return (spec.model_copy(update=upd) if upd else spec), notes


class Recipe(_Frozen):
    """Everything needed to make one image again: the resolved spec plus what the backend used."""

    prompt: str
    negative_prompt: str = ""
    width: int
    height: int
    seed: int
    steps: int
    guidance: float
    sampler: str
    model: str
    backend: str
    mode: Mode = Mode.TEXT2IMG
    strength: float | None = None
    init_image: str | None = None
    mask_image: str | None = None
    style: str | None = None
    revised_prompt: str | None = None
    cost_usd: float | None = None
    schedule: str | None = None  # the sampler's schedule type (Karras, ...), A1111's "Schedule type"
    hires_scale: float | None = None  # hires fix: first pass at first_pass_*, upscaled, refined
    hires_steps: int | None = None
    hires_denoise: float | None = None
    hires_upscaler: str | None = None
    first_pass_width: int | None = None
    first_pass_height: int | None = None
    clip_skip: int | None = None  # A1111 "Clip skip" (> 1 only)
    lora_hashes: str | None = None  # A1111 "Lora hashes": "name: hash, other: hash"
    upscale_by: int | None = None  # A1111 "Postprocess upscale by"
    upscaler: str | None = None  # A1111 "Postprocess upscaler": the ESRGAN file's name, or Lanczos
    outpaint: str | None = None  # "left 32, up 64": what was added around init_image
    watermark: str | None = None  # the invisible watermark: "dwtDct CCAI", "skipped, too small" or "off"
    colourway: Colourway | None = None  # the colour asked and the sRGB used (+ material)
    safety_blocked: bool | None = None  # the checkpoint's safety checker flagged it (never shown)
    colour_delta_e: float | None = None  # CIEDE2000 of the product's median colour to colourway.hex


class GeneratedImage(BaseModel):
    """One finished image: PNG bytes carrying its recipe as ``parameters`` text metadata."""

    model_config = ConfigDict(extra="forbid")

    png: bytes = Field(repr=False)
    recipe: Recipe
    seconds: float = 0.0
    path: str | None = None  # where the store wrote it

    @property
    def id(self) -> str:
        return hashlib.sha256(self.png).hexdigest()[:32]


class Attachment(_Frozen):
    filename: str
    content_type: str = "application/octet-stream"
    data: bytes = Field(repr=False)


class UserRef(_Frozen):
    """Who asked. Ids are opaque strings: the core never parses a platform's id.

    ``admin``: the platform says this user manages the server (Discord Manage Server, a Slack
    workspace admin); the policy lets admins use every configured backend.
    """

    platform: str
    user: str
    server: str = ""  # guild / workspace / API key; "" for DMs and the terminal
    admin: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.server}:{self.user}"


class Place(_Frozen):
    """Where to answer: a channel and optionally a thread in it (for a thread, ``channel`` is its parent).

    ``dm`` and ``nsfw`` are facts the adapter knows about the place (a direct message; a channel
    marked age-restricted), for the policy; the core never parses a platform's ids to find them.
    """

    platform: str
    channel: str = ""
    thread: str = ""
    dm: bool = False
    nsfw: bool = False


class ChatTurn(_Frozen):
    who: UserRef
    where: Place
    text: str = ""
    attachments: tuple[Attachment, ...] = ()

    @property
    def conversation(self) -> str:
        """Memory key: the thread (or channel) and the user."""
        return conversation_key(self.who, self.where)


def conversation_key(who: UserRef, where: Place) -> str:
    """Memory key of a conversation: the thread (or channel) and the user."""
    return f"{where.platform}:{where.channel}:{where.thread}:{who.user}"


# ---------------------------------------------------------------- events


class _Event(_Frozen):
    pass


class Accepted(_Event):
    kind: Literal["accepted"] = "accepted"
    job_ids: tuple[str, ...]
    position: int  # jobs ahead of the first of these
    prompts: tuple[str, ...] = ()  # the rewritten prompts, one per job


class Queued(_Event):
    kind: Literal["queued"] = "queued"
    job_id: str
    position: int


class Started(_Event):
    kind: Literal["started"] = "started"
    job_id: str


class Progress(_Event):
    kind: Literal["progress"] = "progress"
    job_id: str
    step: int
    total: int
    preview: bytes | None = Field(default=None, repr=False)  # a small PNG, when the backend has one
    note: str | None = None  # why it is not stepping (waiting for the image workers), for its user

    @property
    def percent(self) -> int:
        return int(100 * self.step / max(1, self.total))


class Images(_Event):
    kind: Literal["images"] = "images"
    job_id: str
    images: tuple[GeneratedImage, ...]
    notes: tuple[str, ...] = ()  # for the user, e.g. images the safety checker held back

    @property
    def revised_prompts(self) -> list[str]:
        return [i.recipe.revised_prompt or i.recipe.prompt for i in self.images]


class Text(_Event):
    kind: Literal["text"] = "text"
    text: str


class Refused(_Event):
    """A request turned down. ``reason`` is for the user and ends by naming ``rule``."""

    kind: Literal["refused"] = "refused"
    reason: str
    rule: str = "refused"
    retry_after: float | None = None


class Failed(_Event):
    kind: Literal["failed"] = "failed"
    reason: str
    job_id: str | None = None


class Cancelled(_Event):
    kind: Literal["cancelled"] = "cancelled"
    job_id: str


Event = Accepted | Queued | Started | Progress | Images | Text | Refused | Failed | Cancelled
JobEvent = Queued | Started | Progress | Images | Failed | Cancelled
TERMINAL = (Images, Failed, Cancelled)
