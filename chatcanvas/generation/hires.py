"""Hires fix, the way AUTOMATIC1111 does it: draw at the model's size, enlarge, then refine.

The first pass runs at the requested (native) size; the images are enlarged by ``hires_scale``
with Lanczos, and an image-to-image pass with the same prompt, sampler and seed at
``hires_denoise`` (default 0.7, as A1111) adds the detail the small image could not hold. The
recipe records it as A1111 writes it: ``Size`` is the first pass, then ``Hires upscale``,
``Hires steps``, ``Hires upscaler`` and ``Denoising strength``. The configured size limits hold
for the enlarged image (``Limits`` checks ``hires_size``).
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from chatcanvas.types import ImageSpec, Mode, hires_size

DEFAULT_DENOISE = 0.7
UPSCALER = "Lanczos"

# arguments of the first pass that the second one sets itself
_OWN = ("width", "height", "generator", "num_inference_steps", "image", "strength", "mask_image")


def defaults(spec: ImageSpec) -> dict[str, Any]:
    """The denoising strength a hires request leaves open."""
    if spec.hires_scale and spec.hires_denoise is None:
        return {"hires_denoise": DEFAULT_DENOISE}
    return {}


def _steps(spec: ImageSpec) -> tuple[int, float]:
    denoise = spec.hires_denoise or DEFAULT_DENOISE
    steps = spec.hires_steps or spec.steps or 20
    # diffusers runs int(steps * strength) steps from an image: make that at least one
    return max(steps, math.ceil(1 / denoise - 1e-9)), denoise


def steps_estimate(spec: ImageSpec, order: int = 1) -> int:
    """Denoising steps the second pass will report (for the progress total before it starts)."""
    if not spec.hires_scale:
        return 0
    steps, denoise = _steps(spec)
    return max(1, min(int(steps * denoise), steps)) * max(1, order)


def refine(
    backend: Any,
    spec: ImageSpec,
    images: list[Image.Image],
    first_pass: dict[str, Any],
    seeds: list[int],
    generator_device: str,
) -> tuple[list[Image.Image], list[bool]]:
    """Enlarge ``images`` (Lanczos) and refine them by image-to-image with the first pass's arguments.

    ``first_pass`` is the keyword arguments of the first pipeline call: prompts (or embeddings),
    guidance and the step callback carry over; size, image, strength, steps and generators are the
    second pass's own. Each image's generator is seeded again with its seed, as A1111 does.
    Returns the images and, per image, whether the checkpoint's safety checker flagged the result.
    """
    import torch

    from chatcanvas.generation.samplers import pipeline_with_sampler

    assert spec.hires_scale
    w, h = images[0].size
    size = hires_size(w, h, spec.hires_scale)
    big = [im.resize(size, Image.Resampling.LANCZOS) for im in images]
    pipe = pipeline_with_sampler(backend.pipe_for(Mode.IMG2IMG), spec.sampler, spec.schedule)
    steps, denoise = _steps(spec)
    kwargs = {k: v for k, v in first_pass.items() if k not in _OWN}
    kwargs.update(
        image=big,
        strength=denoise,
        num_inference_steps=steps,
        generator=[torch.Generator(generator_device).manual_seed(s) for s in seeds],
    )
    with torch.inference_mode():
        result = pipe(**kwargs)
    out: list[Image.Image] = result.images
    flagged = [bool(f) for f in (getattr(result, "nsfw_content_detected", None) or [False] * len(out))]
    return out, flagged


def recipe_fields(spec: ImageSpec, first_w: int, first_h: int) -> dict[str, Any]:
    """What the recipe records of a hires fix (nothing without one)."""
    if not spec.hires_scale:
        return {}
    return {
        "hires_scale": spec.hires_scale,
        "hires_steps": spec.hires_steps or None,
        "hires_denoise": spec.hires_denoise or DEFAULT_DENOISE,
        "hires_upscaler": UPSCALER,
        "first_pass_width": first_w,
        "first_pass_height": first_h,
    }
