"""Outpainting: zoom out, pan, make a banner — new picture around an image, the image kept as it is.

The canvas is the image plus margins. The new area is first filled with the image's edge pixels
stretched outwards and blurred, so the model starts from the right colours; the inpainting pipeline
then repaints the new area (its mask reaches a few pixels into the image, so the model sees the
join and continues it). Afterwards the image's own pixels are put back exactly, and the new pixels
fade in from the image's edge over a short feathered seam that lies in the new area. Only the new
area changes.

If the canvas would pass ``CHATCANVAS_MAX_SIDE`` / ``CHATCANVAS_MAX_PIXELS``, the backend scales the
whole canvas (image and margins) down to fit; :func:`outpaint_spec` with ``fit=False`` refuses such
a request instead, naming the limit. For the engine an outpaint is an
:class:`~chatcanvas.types.ImageSpec` with ``init_image`` and ``outpaint`` margins;
:func:`outpaint_specs` runs it in the local backend's worker thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageFilter

from chatcanvas import messages as m
from chatcanvas.errors import SpecError
from chatcanvas.generation.base import PipelineHost, StepCallback, StepInfo
from chatcanvas.generation.lora import lora_hashes
from chatcanvas.generation.metadata import png_with_recipe
from chatcanvas.generation.upscale import load_source, run_image_pass, sampler_name
from chatcanvas.types import GeneratedImage, ImageSpec, Limits, Margins, Mode, Recipe

if TYPE_CHECKING:
    from chatcanvas.config import Settings

Direction = Literal["left", "right", "up", "down"]
ZOOMS = (1.5, 2.0)
PAN_FRACTION = 0.5  # a pan adds half the image's width (or height) on that side
BANNER_RATIO = 3.0
CONTEXT = 8  # the mask reaches this many pixels into the image
DEFAULT_STRENGTH = 0.9


# ---------------------------------------------------------------- margins


def _even8(n: float) -> int:
    return max(0, int(round(n / 8)) * 8)


def zoom_out_margins(w: int, h: int, factor: float) -> Margins:
    """Margins that make the canvas ``factor`` times wider and taller, the image in the middle."""
    if factor not in ZOOMS:
        raise SpecError(m.OUTPAINT_BAD_ZOOM.format(zoom=f"{factor:g}"))
    dx, dy = _even8(w * (factor - 1) / 2), _even8(h * (factor - 1) / 2)
    return Margins(left=dx, right=dx, up=dy, down=dy)


def pan_margins(w: int, h: int, direction: Direction, fraction: float = PAN_FRACTION) -> Margins:
    """Margins that extend the picture on one side by ``fraction`` of the image."""
    side = w if direction in ("left", "right") else h
    return Margins(**{direction: max(8, _even8(side * fraction))})


def banner_margins(w: int, h: int, ratio: float = BANNER_RATIO) -> Margins:
    """Margins that make a ``ratio``:1 banner: wider on both sides (or taller, if already wider)."""
    if w < h * ratio:
        add = math.ceil(h * ratio) - w
        return Margins(left=add // 2, right=add - add // 2)
    add = math.ceil(w / ratio) - h
    return Margins(up=add // 2, down=add - add // 2)


def fitted(w: int, h: int, margins: Margins, limits: Limits) -> tuple[float, int, int, Margins]:
    """(scale, image width, image height, margins) so that the canvas fits the limits."""
    cw, ch = w + margins.left + margins.right, h + margins.up + margins.down
    scale = min(1.0, limits.max_side / max(cw, ch), (limits.max_pixels / (cw * ch)) ** 0.5)
    if scale >= 1.0:
        return 1.0, w, h, margins
    nw, nh = max(8, round(w * scale)), max(8, round(h * scale))
    scaled = Margins(**{k: int(v * scale) for k, v in margins.model_dump().items()})
    return scale, nw, nh, scaled


def _gen_size(cw: int, ch: int) -> tuple[int, int]:
    return math.ceil(cw / 8) * 8, math.ceil(ch / 8) * 8


# ---------------------------------------------------------------- the request


def outpaint_spec(
    image_ref: str,
    size: tuple[int, int],
    margins: Margins,
    settings: Settings,
    recipe: Recipe | None = None,
    prompt: str | None = None,
    fit: bool = True,
    seed: int | None = None,
    strength: float = DEFAULT_STRENGTH,
    steps: int | None = None,
) -> ImageSpec:
    """The spec that extends ``image_ref`` (``size`` pixels) by ``margins``.

    ``recipe`` (the source's) gives the prompt and settings; ``prompt`` overrides it. ``fit=False``
    refuses (SpecError) a canvas past the size limits; ``fit=True`` lets the backend scale it down.
    """
    if not any(margins.model_dump().values()):
        raise SpecError(m.OUTPAINT_NOTHING)
    w, h = size
    cw, ch = w + margins.left + margins.right, h + margins.up + margins.down
    lim = settings.limits
    if not fit and (max(cw, ch) > lim.max_side or cw * ch > lim.max_pixels):
        why = (
            f"CHATCANVAS_MAX_SIDE={lim.max_side}"
            if max(cw, ch) > lim.max_side
            else f"CHATCANVAS_MAX_PIXELS={lim.max_pixels}"
        )
        raise SpecError(m.OUTPAINT_TOO_BIG.format(w=w, h=h, nw=cw, nh=ch, why=why))
    _, fw, fh, fm = fitted(w, h, margins, lim)
    gw, gh = _gen_size(fw + fm.left + fm.right, fh + fm.up + fm.down)
    base: dict[str, Any] = {"prompt": "a wide view of the same scene, same style", "negative_prompt": ""}
    if recipe is not None:
        base = {
            "prompt": recipe.prompt,
            "negative_prompt": recipe.negative_prompt,
            "steps": recipe.steps,
            "guidance": recipe.guidance,
            "seed": recipe.seed,
            "style": recipe.style,
            "clip_skip": recipe.clip_skip,
        }
    if prompt:
        base["prompt"] = prompt
    if seed is not None:
        base["seed"] = seed
    if steps is not None:
        base["steps"] = steps
    fits = max(gw, gh) <= lim.max_side and gw * gh <= lim.max_pixels
    return ImageSpec(
        **base,
        width=gw if fits else None,
        height=gh if fits else None,
        init_image=image_ref,
        outpaint=margins,
        strength=strength,
        backend="local",
    )


# ---------------------------------------------------------------- the buttons

BUTTONS: dict[str, str] = {  # action -> label (messages.py)
    "zoom_out_1.5": m.BUTTON_ZOOM_OUT_15,
    "zoom_out_2": m.BUTTON_ZOOM_OUT_2,
    "pan_left": m.BUTTON_PAN_LEFT,
    "pan_right": m.BUTTON_PAN_RIGHT,
    "pan_up": m.BUTTON_PAN_UP,
    "pan_down": m.BUTTON_PAN_DOWN,
    "banner": m.BUTTON_BANNER,
}


def button_margins(action: str, w: int, h: int) -> Margins:
    """The margins one of :data:`BUTTONS` adds to a ``w`` x ``h`` image."""
    if action.startswith("zoom_out_"):
        return zoom_out_margins(w, h, float(action.removeprefix("zoom_out_")))
    if action.startswith("pan_") and action[4:] in ("left", "right", "up", "down"):
        return pan_margins(w, h, action[4:])  # type: ignore[arg-type]
    if action == "banner":
        return banner_margins(w, h)
    raise SpecError(m.UNKNOWN_BUTTON.format(action=action, known=", ".join(BUTTONS)))


def button_spec(action: str, image_id: str, recipe: Recipe, settings: Settings) -> ImageSpec:
    """The request behind a "Zoom out 1.5×" / "Pan ←" / "Make a banner (3:1)" button on a stored image:
    its prompt and settings, a new seed, the canvas scaled down to the limits when it would pass them."""
    margins = button_margins(action, recipe.width, recipe.height)
    spec = outpaint_spec(image_id, (recipe.width, recipe.height), margins, settings, recipe, fit=True)
    return spec.model_copy(update={"seed": None})


# ---------------------------------------------------------------- canvas, mask, composite


@dataclass
class Canvas:
    fill: Image.Image  # the canvas (a multiple of 8) pre-filled: the image, its edges stretched and blurred
    mask: Image.Image  # the model's mask: white over the new area and CONTEXT pixels into the image
    alpha: np.ndarray  # how much of the generated pixel to keep: 0 on the image, 1 past the seam
    edge: np.ndarray  # the image with its edge pixels stretched outwards, unblurred (the seam's base)
    size: tuple[int, int]  # the canvas to cut back to


def prepare_canvas(src: Image.Image, margins: Margins) -> Canvas:
    w, h = src.size
    cw, ch = w + margins.left + margins.right, h + margins.up + margins.down
    gw, gh = _gen_size(cw, ch)
    arr = np.asarray(src.convert("RGB"))
    pad = ((margins.up, gh - h - margins.up), (margins.left, gw - w - margins.left), (0, 0))
    stretched = np.pad(arr, pad, mode="edge")
    radius = max(2.0, max(margins.model_dump().values()) / 4)
    blurred = np.asarray(Image.fromarray(stretched).filter(ImageFilter.GaussianBlur(radius)))
    inside = np.zeros((gh, gw), dtype=bool)
    inside[margins.up : margins.up + h, margins.left : margins.left + w] = True
    fill = np.where(inside[..., None], stretched, blurred).astype(np.uint8)
    ctx = min(CONTEXT, max(1, min(w, h) // 4))
    top, left = margins.up + (ctx if margins.up else 0), margins.left + (ctx if margins.left else 0)
    bottom = margins.up + h - (ctx if margins.down else 0)
    right = margins.left + w - (ctx if margins.right else 0)
    mask = np.full((gh, gw), 255, dtype=np.uint8)
    mask[top:bottom, left:right] = 0
    seam = max(2, min(32, min(w, h) // 16))
    alpha = np.clip(_distance_outside(inside) / (seam + 1), 0.0, 1.0).astype(np.float32)
    return Canvas(Image.fromarray(fill), Image.fromarray(mask, mode="L"), alpha, stretched, (cw, ch))


def _distance_outside(inside: np.ndarray) -> np.ndarray:
    """Chebyshev distance (pixels) from each pixel to the image rectangle; 0 inside."""
    ys, xs = np.nonzero(inside)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    yy, xx = np.mgrid[0 : inside.shape[0], 0 : inside.shape[1]]
    dy = np.maximum(np.maximum(y0 - yy, yy - y1), 0)
    dx = np.maximum(np.maximum(x0 - xx, xx - x1), 0)
    return np.maximum(dy, dx).astype(np.float32)


def composite(generated: Image.Image, canvas: Canvas) -> Image.Image:
    """The image's own pixels (exactly) where alpha is 0, the generated ones where it is 1; between,
    over the seam, the generated pixels fade in from the image's stretched edge."""
    size = canvas.fill.size
    gen = np.asarray(generated.convert("RGB").resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    a = canvas.alpha[..., None]
    out = (gen * a + canvas.edge.astype(np.float32) * (1 - a)).round().clip(0, 255).astype(np.uint8)
    exact = canvas.alpha == 0
    out[exact] = canvas.edge[exact]
    return Image.fromarray(out).crop((0, 0, canvas.size[0], canvas.size[1]))


# ---------------------------------------------------------------- in the backend


def outpaint_specs(
    backend: PipelineHost, specs: list[ImageSpec], on_step: StepCallback | None = None
) -> list[GeneratedImage]:
    """Run outpaint specs (``init_image`` + ``outpaint``) in the backend's worker thread."""
    settings = backend.settings
    images = []
    for spec in specs:
        assert spec.init_image and spec.outpaint
        src = load_source(backend, spec.init_image)
        scale, fw, fh, margins = fitted(src.width, src.height, spec.outpaint, settings.limits)
        if scale < 1.0:
            src = src.resize((fw, fh), Image.Resampling.LANCZOS)
        canvas = prepare_canvas(src, margins)
        total = int(spec.steps or 20)

        def step_end(p: Any, i: int, t: Any, kw: dict[str, Any], total: int = total) -> dict[str, Any]:
            if on_step is not None:
                on_step(StepInfo(step=i + 1, total=int(getattr(p, "num_timesteps", total) or total)))
            return kw

        for i in range(spec.count):
            t0 = time.perf_counter()
            seed = ((spec.seed or 0) + i) % 2**32
            gen = run_image_pass(
                backend, Mode.INPAINT, spec, seed, canvas.fill, spec.strength, canvas.mask, step_end
            )
            out = composite(gen, canvas)
            pipe = backend.pipe_for(Mode.INPAINT)
            recipe = Recipe(
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                width=out.width,
                height=out.height,
                seed=seed,
                steps=int(spec.steps or 20),
                guidance=float(spec.guidance if spec.guidance is not None else 7.0),
                sampler=sampler_name(pipe),
                model=backend.model_name,
                backend=backend.name,
                mode=Mode.INPAINT,
                strength=spec.strength,
                init_image=spec.init_image,
                style=spec.style,
                clip_skip=spec.clip_skip if (spec.clip_skip or 1) > 1 else None,
                lora_hashes=lora_hashes(spec.prompt, settings),
                outpaint=str(margins) + (f" (scaled x{scale:.3g} to fit)" if scale < 1.0 else ""),
            )
            png = png_with_recipe(out, recipe)
            images.append(GeneratedImage(png=png, recipe=recipe, seconds=time.perf_counter() - t0))
    return images
