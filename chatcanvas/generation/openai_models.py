"""What the OpenAI Images API accepts per model: sizes, ``n``, quality, style, response format, edits.

:func:`resolve_spec` maps a request onto what its model can do (nearest allowed size, refusal of what
it can't); :func:`split_count` and :func:`request_params` turn a resolved spec into API calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError, SpecError
from chatcanvas.types import ImageSpec, Mode

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = [
    "MODELS",
    "ModelRules",
    "check_quality",
    "nearest_size",
    "request_params",
    "resolve_spec",
    "split_count",
]

Size = tuple[int, int]


@dataclass(frozen=True)
class ModelRules:
    """What the Images API accepts for one model."""

    sizes: tuple[Size, ...]
    qualities: tuple[str, ...]  # empty: the model takes no quality parameter
    default_quality: str | None
    styles: bool  # takes style=vivid|natural
    max_n: int
    response_format: bool  # takes response_format (DALL-E); gpt-image models always answer b64_json
    max_prompt: int
    img2img: bool  # edits without a mask
    inpaint: bool  # edits with a mask
    edit_sizes: tuple[Size, ...] = ()


MODELS: dict[str, ModelRules] = {
    "dall-e-3": ModelRules(
        sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
        qualities=("standard", "hd"),
        default_quality="standard",
        styles=True,
        max_n=1,
        response_format=True,
        max_prompt=4000,
        img2img=False,
        inpaint=False,
    ),
    "dall-e-2": ModelRules(
        sizes=((256, 256), (512, 512), (1024, 1024)),
        qualities=(),
        default_quality=None,
        styles=False,
        max_n=10,
        response_format=True,
        max_prompt=1000,
        img2img=False,
        inpaint=True,
        edit_sizes=((256, 256), (512, 512), (1024, 1024)),
    ),
    "gpt-image-1": ModelRules(
        sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
        qualities=("low", "medium", "high", "auto"),
        default_quality="medium",
        styles=False,
        max_n=10,
        response_format=False,
        max_prompt=32000,
        img2img=True,
        inpaint=True,
        edit_sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
    ),
}


def nearest_size(width: int, height: int, allowed: tuple[Size, ...]) -> Size:
    """The allowed size closest in aspect ratio, then in area (both compared on a log scale)."""

    def distance(size: Size) -> tuple[float, float]:
        w, h = size
        return (
            round(abs(math.log((width / height) / (w / h))), 6),
            abs(math.log((width * height) / (w * h))),
        )

    return min(allowed, key=distance)


def check_quality(model: str, quality: str | None) -> str | None:
    """The quality to ask ``model`` for: the setting if the model takes it, else the model's default."""
    rules = MODELS[model]
    if quality is None or not rules.qualities:
        return rules.default_quality
    if quality not in rules.qualities:
        raise ConfigError(
            m.OPENAI_BAD_QUALITY.format(model=model, accepts=", ".join(rules.qualities), quality=quality)
        )
    return quality


def resolve_spec(spec: ImageSpec, settings: Settings) -> ImageSpec:
    """Pick the model, map the size to the nearest one it allows, refuse what it can't do."""
    model = spec.model if spec.model in MODELS else settings.openai_image_model
    rules = MODELS[model]
    if spec.mode is Mode.IMG2IMG and not rules.img2img:
        raise SpecError((m.OPENAI_NO_EDITS if not rules.inpaint else m.OPENAI_NEEDS_MASK).format(model=model))
    if spec.mode is Mode.INPAINT and not rules.inpaint:
        raise SpecError(m.OPENAI_NO_EDITS.format(model=model))
    if len(spec.prompt) > rules.max_prompt:
        raise SpecError(
            m.OPENAI_PROMPT_TOO_LONG.format(n=len(spec.prompt), model=model, limit=rules.max_prompt)
        )
    default = settings.size or (1024, 1024)
    w = spec.width or spec.height or default[0]
    h = spec.height or spec.width or default[1]
    allowed = rules.edit_sizes if spec.mode is not Mode.TEXT2IMG else rules.sizes
    w, h = nearest_size(w, h, allowed)
    return spec.model_copy(update={"model": model, "width": w, "height": h, "backend": "openai"})


def split_count(count: int, max_n: int) -> list[int]:
    """``count`` images as calls of at most ``max_n`` each: dall-e-3 (n=1) makes 3 images in 3 calls."""
    full, rest = divmod(count, max_n)
    return [max_n] * full + ([rest] if rest else [])


def prompt_with_negative(spec: ImageSpec) -> str:
    """The Images API takes no negative prompt: what to leave out is said in words, not dropped
    ("a lighthouse at dusk. Without people, boats."). The recipe keeps both as asked."""
    negative = spec.negative_prompt.strip().strip(",. ")
    if not negative:
        return spec.prompt
    return f"{spec.prompt.rstrip().rstrip('.')}. Without {negative}."


def request_params(spec: ImageSpec, n: int, settings: Settings) -> dict[str, Any]:
    """The Images API arguments for ``n`` images of a resolved ``spec`` (the image files aside)."""
    model = spec.model or settings.openai_image_model
    rules = MODELS[model]
    size = f"{spec.width}x{spec.height}"
    params: dict[str, Any] = {"model": model, "prompt": prompt_with_negative(spec), "n": n, "size": size}
    quality = check_quality(model, settings.openai_quality)
    if quality and rules.qualities:
        params["quality"] = quality
    if rules.response_format:
        params["response_format"] = settings.openai_response_format
    style = spec.style if spec.style in ("vivid", "natural") else settings.openai_style
    if spec.mode is Mode.TEXT2IMG and rules.styles and style:
        params["style"] = style
    return params
