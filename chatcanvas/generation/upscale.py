"""Upscaling that enlarges: 2x or 4x, within ``CHATCANVAS_MAX_UPSCALE_PIXELS`` of output.

With ``CHATCANVAS_UPSCALER`` set to an ESRGAN-family file (``.pth`` / ``.safetensors``: ESRGAN,
Real-ESRGAN, SwinIR, ...), the model is read with spandrel and run in tiles (each with a margin of
context that is cut off again), as many times as it takes to reach the scale, then brought to the
exact size with Lanczos. Without one, Lanczos enlarges. Then, unless ``strength`` is 0
(``CHATCANVAS_UPSCALE_DENOISE``), a light image-to-image pass over overlapping tiles of the model's
native size puts back detail; tiles are blended with linear ramps over their overlap. Memory stays
bounded by the tile size, so 4x of a 1024 image (4096x4096) fits.

For the engine an upscale is an :class:`~chatcanvas.types.ImageSpec` with ``init_image`` and
``upscale_by`` (:func:`upscale_spec` builds it); :func:`upscale_specs` runs it in the local
backend's worker thread. The recipe records ``upscale_by`` and the upscaler used.
"""

from __future__ import annotations

import io
import math
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from chatcanvas import messages as m
from chatcanvas.errors import SpecError
from chatcanvas.generation.base import PipelineHost, StepCallback, StepInfo
from chatcanvas.generation.lora import lora_hashes, parse_loras
from chatcanvas.generation.metadata import png_with_recipe
from chatcanvas.generation.prompt_weighting import prompt_inputs
from chatcanvas.types import GeneratedImage, ImageSpec, Mode, Recipe

if TYPE_CHECKING:
    from chatcanvas.config import Settings

LANCZOS = "Lanczos"
MODEL_TILE = 256  # input pixels per side of one upscaler tile
MODEL_PAD = 16  # context around each upscaler tile, cut off afterwards
MAX_REFINE_TILES = 144
SCALES = (2, 4)


# ---------------------------------------------------------------- the request


def check_upscale_size(w: int, h: int, scale: int, settings: Settings) -> tuple[int, int]:
    """The output size, or a SpecError naming CHATCANVAS_MAX_UPSCALE_PIXELS."""
    if scale not in SCALES:
        raise SpecError(m.UPSCALE_BAD_SCALE.format(scale=scale))
    nw, nh = w * scale, h * scale
    if nw * nh > settings.max_upscale_pixels:
        raise SpecError(
            m.UPSCALE_TOO_BIG.format(
                w=w, h=h, scale=scale, nw=nw, nh=nh, pixels=nw * nh, limit=settings.max_upscale_pixels
            )
        )
    return nw, nh


def _spec_size(w: int, h: int, settings: Settings) -> dict[str, Any]:
    ok = w % 8 == 0 and h % 8 == 0 and max(w, h) <= settings.max_side and w * h <= settings.max_pixels
    return {"width": w if ok else None, "height": h if ok else None}


def upscale_spec(
    image_ref: str,
    size: tuple[int, int],
    scale: int,
    settings: Settings,
    recipe: Recipe | None = None,
    strength: float | None = None,
    seed: int | None = None,
) -> ImageSpec:
    """The spec that enlarges ``image_ref`` (a stored image id or a file) of ``size`` by ``scale``.

    ``recipe`` (the source's, when known) gives the prompt, seed and settings of the refining pass.
    Raises SpecError when the output would pass ``CHATCANVAS_MAX_UPSCALE_PIXELS``.
    """
    check_upscale_size(size[0], size[1], scale, settings)
    base: dict[str, Any] = {"prompt": "high quality, detailed", "negative_prompt": ""}
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
    if seed is not None:
        base["seed"] = seed
    return ImageSpec(
        **base,
        **_spec_size(size[0], size[1], settings),
        init_image=image_ref,
        upscale_by=scale,  # type: ignore[arg-type]
        strength=settings.upscale_denoise if strength is None else strength,
        backend="local",
    )


# ---------------------------------------------------------------- the model (spandrel)


_MODELS: weakref.WeakKeyDictionary[Any, tuple[str, Any]] = weakref.WeakKeyDictionary()


def load_upscaler(path: Path, device: str) -> Any:
    """An ESRGAN-family model read by spandrel (``ImageModelDescriptor``), on ``device``, eval mode."""
    if not path.is_file():
        raise SpecError(m.UPSCALER_NOT_FOUND.format(path=path))
    try:
        import spandrel
    except ImportError as exc:
        raise SpecError(m.UPSCALER_NEEDS_SPANDREL) from exc
    try:
        model = spandrel.ModelLoader(device="cpu").load_from_file(str(path))
    except Exception as exc:  # spandrel raises many kinds for a file it cannot read
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SpecError(m.UPSCALER_UNREADABLE.format(path=path, detail=detail)) from exc
    if int(getattr(model, "scale", 1)) < 2:
        raise SpecError(m.UPSCALER_UNREADABLE.format(path=path, detail="it does not enlarge"))
    model.to(device)
    model.eval()
    return model


def _upscaler_for(backend: PipelineHost, path: Path) -> Any:
    cached = _MODELS.get(backend)
    if cached is not None and cached[0] == str(path):
        return cached[1]
    model = load_upscaler(path, backend.device())
    _MODELS[backend] = (str(path), model)
    return model


def model_upscale(img: Image.Image, model: Any, tile: int = MODEL_TILE, pad: int = MODEL_PAD) -> Image.Image:
    """One pass of ``model`` (x ``model.scale``) over ``img`` in tiles; each tile sees ``pad`` pixels of
    context on every side, which is cut off again, so the seams match the whole-image result."""
    import torch

    s = int(model.scale)
    x = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    _, _, h, w = x.shape
    out = torch.zeros((1, 3, h * s, w * s), dtype=torch.float32)
    dev = getattr(model, "device", None) or torch.device("cpu")
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0, py1, px1 = max(0, y0 - pad), max(0, x0 - pad), min(h, y1 + pad), min(w, x1 + pad)
            with torch.inference_mode():
                res = model(x[..., py0:py1, px0:px1].to(dev)).float().cpu()
            oy, ox = (y0 - py0) * s, (x0 - px0) * s
            out[..., y0 * s : y1 * s, x0 * s : x1 * s] = res[..., oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s]
    arr = (out[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr)


def enlarge(img: Image.Image, scale: int, model: Any | None = None) -> Image.Image:
    """``img`` at ``scale`` times its size: with the model as often as needed, then Lanczos to size."""
    target = (img.width * scale, img.height * scale)
    if model is not None:
        reached = 1
        while reached < scale:
            img = model_upscale(img, model)
            reached *= int(model.scale)
    if img.size != target:
        img = img.resize(target, Image.Resampling.LANCZOS)
    return img


# ---------------------------------------------------------------- the refining pass


def _ramp(n: int, overlap: int, start: bool, end: bool) -> np.ndarray:
    r = np.ones(n, dtype=np.float32)
    k = min(overlap, n // 2)
    if k > 0:
        edge = (np.arange(k, dtype=np.float32) + 1) / (k + 1)
        if start:
            r[:k] = edge
        if end:
            r[n - k :] = edge[::-1]
    return r


def _positions(total: int, tile: int, overlap: int) -> list[int]:
    if total <= tile:
        return [0]
    stride = tile - overlap
    pos = list(range(0, total - tile, stride))
    return [*pos, total - tile]


def tile_layout(w: int, h: int, native: int) -> tuple[int, int, list[tuple[int, int]]]:
    """(tile side, overlap, tile corners) covering ``w`` x ``h``; the tile grows past ``native`` only
    when more than ``MAX_REFINE_TILES`` tiles would be needed."""
    tile = max(8, native // 8 * 8)
    while True:
        overlap = max(8, tile // 8 // 8 * 8)
        xs, ys = _positions(w, tile, overlap), _positions(h, tile, overlap)
        if len(xs) * len(ys) <= MAX_REFINE_TILES:
            return tile, overlap, [(x, y) for y in ys for x in xs]
        tile += max(8, tile // 4 // 8 * 8)


def run_image_pass(
    backend: PipelineHost,
    mode: Mode,
    spec: ImageSpec,
    seed: int,
    image: Image.Image,
    strength: float,
    mask: Image.Image | None = None,
    on_step: Any = None,
) -> Image.Image:
    """One image-to-image or inpainting call at ``image``'s size (a multiple of 8) with the spec's
    prompt (LoRA and weights honoured), steps and guidance."""
    import torch

    pipe = backend.pipe_for(mode)
    steps, guidance = int(spec.steps or 20), float(spec.guidance if spec.guidance is not None else 7.0)
    strength = max(strength, 0.05)
    steps = max(steps, math.ceil(1 / strength - 1e-9))
    dev = backend.device()
    gen = torch.Generator("cpu" if dev == "mps" else dev).manual_seed(seed)
    kwargs: dict[str, Any] = dict(
        image=[image],
        strength=strength,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=[gen],
    )
    if mode == Mode.INPAINT:
        kwargs.update(mask_image=[mask], width=image.width, height=image.height)
    if on_step is not None:
        kwargs.update(callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
    try:
        backend.loras.activate(pipe, spec.prompt)
        kwargs.update(
            prompt_inputs(
                pipe, [parse_loras(spec.prompt)[0]], [parse_loras(spec.negative_prompt)[0]], spec.clip_skip
            )
        )
        with torch.inference_mode():
            out: Image.Image = pipe(**kwargs).images[0]
    finally:
        backend.loras.deactivate(pipe)
    return out


def refine(
    backend: PipelineHost,
    big: Image.Image,
    spec: ImageSpec,
    seed: int,
    strength: float,
    on_step: StepCallback | None = None,
) -> Image.Image:
    """A light image-to-image pass over ``big`` in overlapping native-size tiles, blended."""
    w, h = big.size
    native = max(8, backend.native_size() // 8 * 8)
    # pad to at least one tile and to multiples of 8 (edge pixels repeated); cut back at the end
    pw, ph = max(native, math.ceil(w / 8) * 8), max(native, math.ceil(h / 8) * 8)
    src = np.asarray(big.convert("RGB"))
    if (pw, ph) != (w, h):
        src = np.pad(src, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    tile, overlap, corners = tile_layout(pw, ph, native)
    acc = np.zeros((ph, pw, 3), dtype=np.float32)
    weight = np.zeros((ph, pw, 1), dtype=np.float32)
    tw, th = min(tile, pw), min(tile, ph)
    for k, (x, y) in enumerate(corners):
        patch = Image.fromarray(src[y : y + th, x : x + tw])
        out = run_image_pass(backend, Mode.IMG2IMG, spec, seed, patch, strength)
        if out.size != (tw, th):
            out = out.resize((tw, th), Image.Resampling.LANCZOS)
        wy = _ramp(th, overlap, y > 0, y + th < ph)
        wx = _ramp(tw, overlap, x > 0, x + tw < pw)
        wt = (wy[:, None] * wx[None, :])[..., None]
        acc[y : y + th, x : x + tw] += np.asarray(out, dtype=np.float32) * wt
        weight[y : y + th, x : x + tw] += wt
        if on_step is not None:
            on_step(StepInfo(step=k + 1, total=len(corners)))
    res = (acc / np.maximum(weight, 1e-6)).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(res[:h, :w])


# ---------------------------------------------------------------- in the backend


def sampler_name(pipe: Any) -> str:
    """The A1111 name of the pipeline's scheduler (its class name when it has none)."""
    try:
        from chatcanvas.generation.samplers import describe

        return str(describe(pipe.scheduler)[0])
    except (ImportError, AttributeError, KeyError):
        return type(pipe.scheduler).__name__


def load_source(backend: PipelineHost, ref: str) -> Image.Image:
    from chatcanvas.store.db import read_image_ref

    with Image.open(io.BytesIO(read_image_ref(backend.settings.images_dir, ref))) as im:
        return im.convert("RGB")


def upscale_specs(
    backend: PipelineHost, specs: list[ImageSpec], on_step: StepCallback | None = None
) -> list[GeneratedImage]:
    """Run upscale specs (``init_image`` + ``upscale_by``) in the backend's worker thread."""
    import time

    settings = backend.settings
    images = []
    for spec in specs:
        assert spec.init_image and spec.upscale_by
        src = load_source(backend, spec.init_image)
        check_upscale_size(src.width, src.height, spec.upscale_by, settings)
        model = _upscaler_for(backend, Path(settings.upscaler)) if settings.upscaler else None
        name = Path(settings.upscaler).stem if settings.upscaler else LANCZOS
        for i in range(spec.count):
            t0 = time.perf_counter()
            seed = ((spec.seed or 0) + i) % 2**32
            big = enlarge(src, spec.upscale_by, model)
            refined = spec.strength > 0
            if refined:
                big = refine(backend, big, spec, seed, spec.strength, on_step)
            pipe = backend.pipe_for(Mode.IMG2IMG) if refined else None
            recipe = Recipe(
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                width=big.width,
                height=big.height,
                seed=seed,
                steps=int(spec.steps or 0),
                guidance=float(spec.guidance or 0.0),
                sampler=sampler_name(pipe) if pipe is not None else "none",
                model=backend.model_name if refined else "",
                backend=backend.name,
                mode=Mode.IMG2IMG,
                strength=spec.strength if refined else None,
                init_image=spec.init_image,
                style=spec.style,
                clip_skip=spec.clip_skip if (spec.clip_skip or 1) > 1 else None,
                lora_hashes=lora_hashes(spec.prompt, settings) if refined else None,
                upscale_by=spec.upscale_by,
                upscaler=name,
            )
            png = png_with_recipe(big, recipe)
            images.append(GeneratedImage(png=png, recipe=recipe, seconds=time.perf_counter() - t0))
    return images
