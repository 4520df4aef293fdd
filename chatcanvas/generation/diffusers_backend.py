"""The local backend: any Stable Diffusion checkpoint through diffusers' AutoPipeline classes.

One instance owns one pipeline and one worker thread: the pipeline (and its scheduler, which every
call mutates) is never touched by two threads. Text-to-image, image-to-image and inpainting share
the loaded components through ``from_pipe``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from chatcanvas import messages as m
from chatcanvas.config import DEMO_MODEL_DIR, Settings
from chatcanvas.errors import ModelLoadError
from chatcanvas.generation import hires, lora, prompt_weighting, samplers
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.generation.metadata import png_with_recipe
from chatcanvas.generation.model_loading import apply_memory_options, load_single_file, native_size_of_file
from chatcanvas.types import GeneratedImage, ImageSpec, Mode, Recipe

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEMO_NAME = "chatcanvas-demo"


def resolve_model_ref(ref: str) -> str:
    """A recipe's model name back to something loadable (the demo model has a short name)."""
    return str(DEMO_MODEL_DIR) if ref in (DEMO_NAME, "", "demo") else ref


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@functools.lru_cache(maxsize=64)  # every request's spec asks; resolving the path each time shows up
def model_display_name(ref: str) -> str:
    try:
        if Path(ref).resolve() == DEMO_MODEL_DIR.resolve():
            return DEMO_NAME
    except OSError:
        pass
    return ref


def model_defaults(ref: str) -> dict[str, Any]:
    """Recommended defaults shipped beside a local checkpoint (``chatcanvas.json``), if any."""
    p = Path(ref)
    f = p / "chatcanvas.json" if p.is_dir() else None
    if f is not None and f.is_file():
        data: dict[str, Any] = json.loads(f.read_text())
        return data
    return {}


def _native_size_from_folder(ref: str) -> int | None:
    p = Path(ref)
    try:
        if p.is_dir():
            unet = json.loads((p / "unet" / "config.json").read_text())
            vae = json.loads((p / "vae" / "config.json").read_text())
        else:  # ---- a hub id: its configs in the local cache, so requests get its size before it loads
            unet, vae = _cached_hub_config(ref, "unet/config.json"), _cached_hub_config(ref, "vae/config.json")
            if unet is None or vae is None:
                return None
    except (OSError, ValueError):
        return None
    factor = 2 ** (len(vae.get("block_out_channels", [1, 2, 3, 4])) - 1)
    sample = unet.get("sample_size", 64)
    return int(sample if isinstance(sample, int) else sample[0]) * factor


def _cached_hub_config(ref: str, filename: str) -> dict[str, Any] | None:
    """A config file of a Hugging Face hub model from the local cache (no network), or None."""
    if ref.count("/") != 1 or ref.startswith((".", "/", "~")) or ref.endswith((".safetensors", ".ckpt")):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, filename)
    except Exception:  # not a valid repo id, no hub library
        return None
    if not isinstance(found, str):
        return None
    data: dict[str, Any] = json.loads(Path(found).read_text())
    return data


class DiffusersBackend(Backend):
    name: ClassVar[str] = "local"
    supports_img2img: ClassVar[bool] = True
    supports_inpaint: ClassVar[bool] = True
    max_batch: ClassVar[int] = 16

    def __init__(self, settings: Settings, model: str | None = None) -> None:
        self.settings = settings
        self.ref = resolve_model_ref(model or settings.model_ref)
        self.defaults = model_defaults(self.ref)
        self._pipes: dict[Mode, Any] = {}
        self._tokenizer: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diffusers")
        self.loras = lora.LoraSet(settings)  # <lora:name:weight> tags, activated per call (lora.py)
        self._native: int | None = (
            self.defaults.get("native_size") or _native_size_from_folder(self.ref) or native_size_of_file(self.ref)
        )
        from chatcanvas.generation.previews import Previewer

        self._previews = Previewer(settings)  # ---- progress previews (previews.py), prepared at load

    # ------------------------------------------------------------ model

    @property
    def model_name(self) -> str:
        return model_display_name(self.ref)

    def native_size(self) -> int:
        return self._native or 512

    def device(self) -> str:
        want = self.settings.device
        if want != "auto":
            return want
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"

    def dtype(self) -> torch.dtype:
        import torch

        if self.settings.dtype != "auto":
            return getattr(torch, self.settings.dtype)  # type: ignore[no-any-return]
        return torch.float16 if self.device() == "cuda" else torch.float32

    def load(self) -> Any:
        """Load the text-to-image pipeline once (blocking; called in the worker thread)."""
        if Mode.TEXT2IMG in self._pipes:
            return self._pipes[Mode.TEXT2IMG]
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as dlog

        if not log.isEnabledFor(logging.INFO):
            dlog.disable_progress_bar()

        ref, dtype = self.ref, self.dtype()
        t0 = time.perf_counter()
        try:
            if ref.endswith((".safetensors", ".ckpt")):  # SD 1.x / 2.x / SDXL: model_loading.py
                pipe = load_single_file(ref, dtype, self.settings)
            else:
                if ref.startswith((".", "/", "~")) and not Path(ref).expanduser().is_dir():
                    raise ModelLoadError(m.MODEL_NOT_FOUND.format(model=ref, detail="no such folder"))
                kwargs: dict[str, Any] = {"torch_dtype": dtype}
                if Path(ref).is_dir() and not (Path(ref) / "safety_checker").is_dir():
                    kwargs["safety_checker"] = None
                pipe = AutoPipelineForText2Image.from_pretrained(ref, **kwargs)
        except ModelLoadError:
            raise
        except Exception as exc:  # diffusers / hub errors come in many types
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or "offline" in str(exc).lower()
            text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            if offline or "connect" in str(exc).lower() or "resolve" in str(exc).lower():
                raise ModelLoadError(m.MODEL_OFFLINE.format(model=ref)) from exc
            raise ModelLoadError(m.MODEL_NOT_FOUND.format(model=ref, detail=text)) from exc
        pipe = apply_memory_options(pipe, self.settings, self.device())  # slicing, tiling, offload or .to()
        # ---- speed: CPU threads; channels-last, fused q/k/v, torch.compile on CUDA (acceleration.py)
        from chatcanvas.generation import acceleration

        pipe = acceleration.apply(pipe, self.settings, self.device())
        self._previews.prepare(pipe)
        pipe.set_progress_bar_config(disable=True)
        self._native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
        self._pipes[Mode.TEXT2IMG] = pipe
        log.info("loaded %s on %s in %.1fs", self.model_name, self.device(), time.perf_counter() - t0)
        return pipe

    def pipe_for(self, mode: Mode) -> Any:
        base = self.load()
        if mode not in self._pipes:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

            cls = AutoPipelineForImage2Image if mode == Mode.IMG2IMG else AutoPipelineForInpainting
            pipe = cls.from_pipe(base)
            pipe.set_progress_bar_config(disable=True)
            self._pipes[mode] = pipe
        return self._pipes[mode]

    def tokenizer(self) -> Any:
        if self._tokenizer is None and _on_event_loop():  # never load it there: warm_up does, in a thread
            return self._pipes[Mode.TEXT2IMG].tokenizer if Mode.TEXT2IMG in self._pipes else None
        if self._tokenizer is None:
            if Mode.TEXT2IMG in self._pipes:
                self._tokenizer = self._pipes[Mode.TEXT2IMG].tokenizer
            elif Path(self.ref).is_dir():
                from transformers import CLIPTokenizer

                self._tokenizer = CLIPTokenizer.from_pretrained(self.ref, subfolder="tokenizer")
        return self._tokenizer

    def count_tokens(self, text: str) -> int | None:
        """Tokens the text encoder sees, without the start/end tokens (the window holds 75)."""
        tok = self.tokenizer()
        if tok is None:
            return None
        # what the encoder reads: LoRA tags, weights and brackets removed (prompt_weighting.py)
        return prompt_weighting.count_tokens(tok, lora.strip_loras(text))

    # ------------------------------------------------------------ specs

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        upd: dict[str, Any] = {}
        if spec.width is None or spec.height is None:
            size = self.settings.size
            base_w, base_h = size if size else (self.native_size(), self.native_size())
            if spec.width is None and spec.height is None:
                upd["width"], upd["height"] = base_w, base_h
            elif spec.width is None:
                upd["width"] = base_w
            else:
                upd["height"] = base_h
        if spec.steps is None:
            upd["steps"] = self.settings.default_steps or self.defaults.get("default_steps", 25)
        if spec.guidance is None:  # 0 is a guidance (turbo models), not "unset"
            g = self.settings.default_guidance
            upd["guidance"] = g if g is not None else self.defaults.get("default_guidance", 7.0)
        upd.update(samplers.request_defaults(spec, self.settings))  # CHATCANVAS_DEFAULT_SAMPLER / _SCHEDULE
        upd.update(hires.defaults(spec))
        upd["model"] = self.model_name
        upd["backend"] = self.name
        return spec.model_copy(update=upd)

    def batch_key(self, spec: ImageSpec) -> tuple[object, ...]:
        return (
            (spec.model, spec.width, spec.height, spec.steps, spec.guidance, spec.mode, spec.strength)
            # one scheduler per call: batch only requests with the same sampler (and hires fix)
            + (spec.sampler, spec.schedule, spec.hires_scale, spec.hires_steps, spec.hires_denoise)
            # one LoRA set and one clip skip per call; enlarging and outpainting run on their own
            + (spec.clip_skip, lora.lora_key(spec.prompt), spec.upscale_by, spec.outpaint)
        )

    # ------------------------------------------------------------ generation

    async def generate(
        self, specs: list[ImageSpec], on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._generate_sync, specs, on_step)

    def _load_image(self, ref: str, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
        from chatcanvas.store.db import read_image_ref

        with Image.open(io.BytesIO(read_image_ref(self.settings.images_dir, ref))) as im:
            return im.convert(mode).resize(size, Image.Resampling.LANCZOS)

    def _generate_sync(self, specs: list[ImageSpec], on_step: StepCallback | None) -> list[GeneratedImage]:
        import torch

        first = specs[0]
        if first.upscale_by or first.outpaint:  # enlarging and outpainting (upscale.py, outpaint.py)
            from chatcanvas.generation import outpaint, upscale

            run = upscale.upscale_specs if first.upscale_by else outpaint.outpaint_specs
            return run(self, specs, on_step)
        grouped = prompt_weighting.in_shape_groups(self.tokenizer(), specs, lambda g: self._generate_sync(g, on_step))
        if grouped is not None:  # prompts of different chunk counts are encoded in separate calls
            return grouped
        mode = first.mode
        # a request-scoped pipeline with its own scheduler: the loaded one is never changed
        pipe = samplers.pipeline_with_sampler(self.pipe_for(mode), first.sampler, first.schedule)
        w, h = int(first.width or self.native_size()), int(first.height or self.native_size())
        steps = int(first.steps or 20)
        guidance = float(first.guidance if first.guidance is not None else 7.0)
        strength = first.strength
        if mode != Mode.TEXT2IMG:
            # diffusers runs int(steps * strength) steps from an image: make that at least one
            strength = max(strength, 0.05)
            steps = max(steps, math.ceil(1 / strength - 1e-9))
        dev = self.device()
        gen_dev = "cpu" if dev == "mps" else dev
        prompts, negatives, generators, seeds, owners = [], [], [], [], []
        inits, masks = [], []
        colourways: dict[int, Any] = {}  # image index -> what colourway_finish needs
        for spec in specs:
            for i in range(spec.count):
                seed = ((spec.seed or 0) + i) % 2**32
                prompts.append(spec.prompt)
                negatives.append(spec.negative_prompt)
                generators.append(torch.Generator(gen_dev).manual_seed(seed))
                seeds.append(seed)
                owners.append(spec)
                if spec.colourway is not None:  # ---- product colourway: recolour, then inpaint from it
                    from chatcanvas.generation.colourway_backend import colourway_inputs

                    init, inpaint, colourways[len(owners) - 1] = colourway_inputs(
                        spec, self.settings.images_dir, (w, h)
                    )
                    inits.append(init)
                    masks.append(inpaint)
                    continue
                if spec.init_image:
                    inits.append(self._load_image(spec.init_image, (w, h)))
                if spec.mask_image:
                    masks.append(self._load_image(spec.mask_image, (w, h), "L"))

        # steps done by earlier passes, and the hires pass's steps still to come
        progress = {"done": 0, "after": hires.steps_estimate(first, int(getattr(pipe.scheduler, "order", 1)))}

        previews = self._previews.session()  # at most one every CHATCANVAS_PREVIEW_INTERVAL_S (previews.py)

        def step_end(p: Any, i: int, t: Any, kw: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None:
                n = int(getattr(p, "num_timesteps", steps) or steps)
                preview = None
                if previews.due(i + 1, n):
                    preview = previews.make(i + 1, kw["latents"], (w, h))
                step, total = progress["done"] + i + 1, progress["done"] + n + progress["after"]
                on_step(StepInfo(step=step, total=total, preview_png=preview))
            return kw

        self.loras.activate(pipe, first.prompt)  # exactly this batch's LoRAs, or LoRA off (lora.py)
        kwargs: dict[str, Any] = dict(
            # A1111 weights, BREAK, long prompts, clip skip; the encoder never sees LoRA tags.
            # CFG <= 1 runs no unconditional pass (as diffusers), so no negative prompt either
            **prompt_weighting.prompt_inputs(
                pipe,
                [lora.strip_loras(p) for p in prompts],
                [lora.strip_loras(n) if guidance > 1 else "" for n in negatives],
                first.clip_skip,
            ),
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            callback_on_step_end=step_end,
            callback_on_step_end_tensor_inputs=["latents"],
        )
        if mode == Mode.TEXT2IMG:
            kwargs.update(width=w, height=h)
        else:
            kwargs.update(image=inits, strength=strength)
            if mode == Mode.INPAINT:
                kwargs.update(mask_image=masks, width=w, height=h)
        t0 = time.perf_counter()
        with torch.inference_mode():
            result = pipe(**kwargs)
        out = result.images
        # the checkpoint's own safety checker, when it ships one: its verdict is kept, never a silent black image
        flagged = list(getattr(result, "nsfw_content_detected", None) or [False] * len(out))
        if first.hires_scale:  # hires fix: enlarge, then refine by image-to-image (hires.py)
            progress.update(done=int(getattr(pipe, "num_timesteps", steps) or steps), after=0)
            out, again = hires.refine(self, first, out, kwargs, seeds, gen_dev)
            flagged = [a or b for a, b in zip(flagged, again, strict=True)]
        if colourways:  # ---- product colourway: back over the photo, at its size and background
            from chatcanvas.generation.colourway_backend import colourway_finish

            out = [colourway_finish(img, colourways[i]) if i in colourways else img for i, img in enumerate(out)]
        seconds = (time.perf_counter() - t0) / max(1, len(out))
        sampler, schedule = samplers.describe(pipe.scheduler)
        images: list[GeneratedImage] = []
        for img, seed, spec in zip(out, seeds, owners, strict=True):
            recipe = Recipe(
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                width=img.width,
                height=img.height,
                seed=seed,
                steps=steps,
                guidance=guidance,
                sampler=sampler,
                model=self.model_name,
                backend=self.name,
                mode=mode,
                strength=strength if mode != Mode.TEXT2IMG else None,
                init_image=spec.init_image,
                mask_image=spec.mask_image,
                style=spec.style,
                schedule=schedule,
                **hires.recipe_fields(spec, w, h),
                clip_skip=spec.clip_skip if (spec.clip_skip or 1) > 1 else None,
                lora_hashes=lora.lora_hashes(spec.prompt, self.settings),
                colourway=spec.colourway,
                safety_blocked=True if flagged[len(images)] else None,
            )
            images.append(GeneratedImage(png=png_with_recipe(img, recipe), recipe=recipe, seconds=seconds))
        return images

    # ------------------------------------------------------------ warm-up (engine start)

    async def warm_up(self) -> None:
        """Tokenizer, pipeline and (CHATCANVAS_COMPILE) compiled shapes, loaded in this backend's thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._warm_up_sync)

    def _warm_up_sync(self) -> None:
        t0 = time.perf_counter()
        self.tokenizer()  # first: the rewriter counts tokens with it while the weights load
        pipe = self.load()
        from chatcanvas.generation import acceleration

        if self.settings.compile:
            acceleration.warm_up_compiled(pipe, self.settings, self.native_size(), self.device())
        log.info("%s warmed up in %.1fs", self.model_name, time.perf_counter() - t0)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pipes.clear()
