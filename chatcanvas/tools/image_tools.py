"""The LangChain tools: generate_image, vary_product, upscale, describe_settings.

Arguments are validated and clamped here, at the tool boundary: whatever the user or the LLM
writes (500 images, 8192x8192, a seed of -1), the configured limits hold, and the tool says what it
changed. Images come back as artifacts (``response_format="content_and_artifact"``): the LLM sees
only a short text, never image bytes or links.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatcanvas import messages as m
from chatcanvas import prompts
from chatcanvas.errors import ChatcanvasError
from chatcanvas.prompts import SD_TOKEN_LIMIT, rough_tokens
from chatcanvas.tools.context import ToolContext
from chatcanvas.types import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    Aspect,
    Event,
    Failed,
    GeneratedImage,
    Images,
    ImageSpec,
    Refused,
    Text,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from langchain_core.tools import BaseTool

log = logging.getLogger(__name__)

AspectName = Literal["square", "landscape", "portrait", "wide", "tall"]
Artifact = list[GeneratedImage]


class GenerateImageArgs(BaseModel):
    """The ``generate_image`` arguments (an ImageSpec's shape, loosely typed: limits are applied after)."""

    model_config = ConfigDict(extra="ignore")

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What to draw.")]
    negative_prompt: str = Field(
        default="", description="Things to keep out of the image (Stable Diffusion only)."
    )
    aspect: AspectName | None = Field(
        default=None, description="square (default), landscape 3:2, portrait 2:3, wide 16:9, tall 9:16."
    )
    width: int | None = Field(
        default=None, description="Exact width in pixels, only when the user names one."
    )
    height: int | None = Field(
        default=None, description="Exact height in pixels, only when the user names one."
    )
    count: int = Field(default=1, description="How many images of this prompt (different seeds).")
    seed: int | None = Field(
        default=None, description="A seed to repeat an image exactly; omit for a new one."
    )
    style: str | None = Field(
        default=None, description="A style preset name: " + ", ".join(prompts.styles()) + "."
    )
    sampler: str | None = Field(
        default=None,
        description="Only when the user names one: an AUTOMATIC1111 sampler (Stable Diffusion only), e.g. "
        "'Euler a', 'DPM++ 2M Karras', 'DPM++ SDE', 'UniPC'. Omit for the model's default.",
    )

    @field_validator("negative_prompt", mode="before")
    @classmethod
    def _none_is_empty(cls, v: object) -> object:
        return "" if v is None else v


class VaryProductArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    variations: Annotated[
        list[str], Field(min_length=1, description="One entry per image, e.g. ['red', 'navy', 'on a beach'].")
    ]
    image_id: str | None = Field(
        default=None, description="An earlier image's id; omit to use the photo the user attached."
    )
    subject: str = Field(default="", description="What the product is, e.g. 'canvas tote bag'.")


class UpscaleArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image_id: str | None = Field(default=None, description="The image to enlarge; omit for the latest one.")


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- building a spec within the limits


def spec_from_args(
    ctx: ToolContext, args: GenerateImageArgs
) -> tuple[ImageSpec | None, list[str], str | None]:
    """(spec, notes for the user, error for the LLM). Clamps count, size, seed; checks the token window."""
    lim = ctx.limits
    notes: list[str] = []
    prompt = " ".join(args.prompt.split())
    if not prompt:
        return None, notes, "The prompt is empty."
    if ctx.family == "sd":
        n = (ctx.count_tokens(prompt) if ctx.count_tokens else None) or rough_tokens(prompt)
        if n > SD_TOKEN_LIMIT:
            ctx.too_long += 1
            if ctx.too_long <= 2:
                return None, notes, m.TOOL_PROMPT_TOO_LONG.format(n=n, limit=SD_TOKEN_LIMIT)
            words = prompt.split()
            tail = " ".join(words[int(len(words) * SD_TOKEN_LIMIT / n) :][:4])
            notes.append(m.REWRITE_TOKENS_OVER.format(n=n, limit=SD_TOKEN_LIMIT, tail=tail))
    count = max(1, args.count)
    if count > ctx.images_left:
        notes.append(m.CLAMPED_COUNT.format(n=count, limit=max(ctx.images_left, 0)))
        count = ctx.images_left
    preset = prompts.style(args.style)
    width, height = args.width, args.height
    if width is not None or height is not None:
        w, h = max(8, width or height or 8), max(8, height or width or 8)
        nw, nh = lim.fit_size(w, h)
        if (nw, nh) != (w // 8 * 8, h // 8 * 8):
            notes.append(m.CLAMPED_SIZE.format(w=w, h=h, nw=nw, nh=nh))
        width, height = nw, nh
    elif args.aspect and args.aspect != "square":
        sdxl = ctx.family == "sd"  # an SDXL model (native 1024) gets its training sizes
        width, height = lim.size_for(Aspect(args.aspect), None, None, ctx.native_side(), sdxl_buckets=sdxl)
    seed = None if args.seed is None else min(max(0, args.seed), MAX_SEED)
    negative = args.negative_prompt.strip()
    if ctx.family == "dalle":
        negative = ""
    elif not negative and preset is not None:
        negative = preset.negative
    try:
        spec = ImageSpec(
            prompt=prompt,
            negative_prompt=negative[:MAX_PROMPT_CHARS],
            width=width,
            height=height,
            count=max(1, count),
            seed=seed,
            style=preset.name if preset else None,
            backend=ctx.backend,
            sampler=(args.sampler or None) if ctx.family == "sd" else None,  # "DPM++ 2M Karras" splits itself
        )
    except ValueError as exc:
        return None, notes, f"Invalid arguments: {exc}"
    spec, more = lim.clamp(spec)
    notes += [x for x in more if x not in notes]
    return spec, notes, None


async def _run(ctx: ToolContext, events: AsyncIterator[Event]) -> tuple[list[GeneratedImage], list[str]]:
    """Forward a job's events to the chat; collect the images and any failure."""
    images: list[GeneratedImage] = []
    problems: list[str] = []
    async for ev in events:
        await ctx.sink(ev)
        if isinstance(ev, Images):
            images.extend(ev.images)
            ctx.recent_images.extend(i.id for i in ev.images)
        elif isinstance(ev, Refused | Failed):
            problems.append(ev.reason)
    ctx.images.extend(images)
    return images, problems


def _summary(made: list[GeneratedImage], problems: list[str], notes: list[str], what: str) -> str:
    parts = []
    if made:
        parts.append(m.TOOL_MADE.format(n=len(made), prompt=what))
    if problems:
        parts.append("Failed: " + " ".join(dict.fromkeys(problems)))
    if notes:
        parts.append(m.TOOL_CLAMPED.format(notes=" ".join(notes)))
    return " ".join(parts) or m.TOOL_MADE.format(n=0, prompt=what)


# ---------------------------------------------------------------- the tools


def build_tools(ctx: ToolContext) -> list[BaseTool]:
    """The four image tools bound to ``ctx``."""
    from langchain_core.tools import StructuredTool

    async def generate_image(**kw: Any) -> tuple[str, Artifact]:
        ctx.tool_calls += 1
        args = GenerateImageArgs(**kw)
        if ctx.images_left <= 0:
            return m.TOOL_BUDGET_SPENT.format(limit=ctx.limits.max_count), []
        spec, notes, error = spec_from_args(ctx, args)
        if spec is None:
            return error or "Invalid arguments.", []
        ctx.spend(spec.count)
        ctx.specs.append(spec)
        ctx.notes += [n for n in notes if n not in ctx.notes]
        if notes:
            await ctx.sink(Text(text=m.TOOL_CLAMPED.format(notes=" ".join(notes))))
        if ctx.service is None:
            return m.TOOL_QUEUED.format(n=spec.count, prompt=spec.prompt) + _notes(notes), []
        made, problems = await _run(
            ctx, ctx.service.generate(spec, ctx.who, ctx.where, ctx.prompt_in or spec.prompt)
        )
        return _summary(made, problems, notes, spec.prompt), made

    async def vary_product(**kw: Any) -> tuple[str, Artifact]:
        ctx.tool_calls += 1
        args = VaryProductArgs(**kw)
        variations = [v.strip() for v in args.variations if v and v.strip()]
        notes: list[str] = []
        if len(variations) > ctx.images_left:
            notes.append(m.CLAMPED_COUNT.format(n=len(variations), limit=max(ctx.images_left, 0)))
            variations = variations[: max(ctx.images_left, 0)]
        if not variations:
            return m.TOOL_BUDGET_SPENT.format(limit=ctx.limits.max_count), []
        try:
            photo = _photo(ctx, args.image_id)
        except ChatcanvasError as exc:  # e.g. a path or someone else's image: refused, told to the user too
            if ctx.service is not None:
                await ctx.sink(ctx.service.refusal(exc, ctx.who, ctx.where))  # audited and counted like any
            return str(exc), []
        if photo is None:
            return m.TOOL_NO_IMAGE, []
        ctx.spend(len(variations))
        if notes:
            await ctx.sink(Text(text=m.TOOL_CLAMPED.format(notes=" ".join(notes))))
        subject = args.subject.strip() or "the product"
        if ctx.service is None:
            for v in variations:
                ctx.specs.append(
                    ImageSpec(prompt=f"{subject}, {v}", init_image=args.image_id or "attachment")
                )
            return m.TOOL_QUEUED.format(n=len(variations), prompt=", ".join(variations)) + _notes(notes), []
        events = ctx.service.vary_product(photo, variations, ctx.who, ctx.where, subject=args.subject.strip())
        made, problems = await _run(ctx, events)
        return _summary(made, problems, notes, f"{subject}: " + ", ".join(variations)), made

    async def upscale(**kw: Any) -> tuple[str, Artifact]:
        ctx.tool_calls += 1
        args = UpscaleArgs(**kw)
        image_id = args.image_id or (ctx.recent_images[-1] if ctx.recent_images else None)
        if not image_id:
            return m.TOOL_NO_IMAGE, []
        if ctx.images_left <= 0:
            return m.TOOL_BUDGET_SPENT.format(limit=ctx.limits.max_count), []
        ctx.spend(1)
        if ctx.service is None:
            return m.TOOL_QUEUED.format(n=1, prompt=f"upscale {image_id}"), []
        made, problems = await _run(ctx, ctx.service.upscale(image_id, ctx.who, ctx.where))
        return _summary(made, problems, [], f"upscale of {image_id}"), made

    async def describe_settings(**kw: Any) -> tuple[str, Artifact]:
        from chatcanvas.prompts import describe_limits

        ctx.tool_calls += 1
        text = ctx.describe() if ctx.describe else describe_limits(ctx.limits)
        return text, []

    def make(fn: Any, name: str, schema: type[BaseModel], description: str) -> BaseTool:
        return StructuredTool.from_function(
            coroutine=fn,
            name=name,
            description=description,
            args_schema=schema,
            response_format="content_and_artifact",
        )

    lim = ctx.limits
    return [
        make(
            generate_image,
            "generate_image",
            GenerateImageArgs,
            "Make images from a text prompt. Call once per distinct image idea or listed variation. "
            f"At most {lim.max_count} images per request and {lim.max_side}px per side; "
            "larger requests are reduced.",
        ),
        make(
            vary_product,
            "vary_product",
            VaryProductArgs,
            "Recolour or restage the product photo the user attached (or an earlier image): "
            "one image per variation, keeping the product's shape.",
        ),
        make(
            upscale, "upscale", UpscaleArgs, "Enlarge an earlier image (twice the size, within the limits)."
        ),
        make(
            describe_settings,
            "describe_settings",
            NoArgs,
            "The current limits, model and style presets, to answer questions about settings.",
        ),
    ]


def _notes(notes: list[str]) -> str:
    return (" " + m.TOOL_CLAMPED.format(notes=" ".join(notes))) if notes else ""


def _photo(ctx: ToolContext, image_id: str | None) -> bytes | None:
    if image_id:
        if ctx.image_bytes is None:
            return None
        return ctx.image_bytes(image_id)
    images = [
        a
        for a in ctx.attachments
        if a.content_type.startswith("image/")
        or a.filename.lower().endswith((".png", ".jpg", ".jpeg", ".webp"))
    ]
    return images[-1].data if images else None
