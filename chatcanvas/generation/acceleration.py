"""Speed defaults for a loaded pipeline: CPU threads, and on CUDA channels-last memory, fused attention
projections and (``CHATCANVAS_COMPILE=1``) ``torch.compile`` warmed up at start.

Half precision (float16 on CUDA; ``CHATCANVAS_DTYPE=bfloat16`` for bf16) is the backend's ``dtype()``;
attention is PyTorch 2's scaled-dot-product attention, diffusers' default processor (checked here).
Everything runs in the backend's own worker thread, at load time.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from chatcanvas.config import Settings
from chatcanvas.types import Aspect

log = logging.getLogger(__name__)


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, e.g. under ``taskset``), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_threads(settings: Settings) -> int | None:
    """Threads one worker's torch should use on CPU: CHATCANVAS_TORCH_THREADS, else the cores shared by
    the workers; None when OMP_NUM_THREADS is set (torch already follows it)."""
    if settings.torch_threads:
        return settings.torch_threads
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, cpu_count() // max(1, settings.workers))


def set_cpu_threads(settings: Settings, device: str) -> int | None:
    """Match torch's intra-op threads to the cores (call in the thread that runs the pipeline)."""
    if device != "cpu":
        return None
    n = torch_threads(settings)
    if n is not None:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return n


def uses_sdpa(pipe: Any) -> bool:
    """Whether every attention of the UNet runs PyTorch's scaled_dot_product_attention."""
    procs = getattr(getattr(pipe, "unet", None), "attn_processors", None) or {}
    return bool(procs) and all("2_0" in type(p).__name__ or "SDPA" in type(p).__name__ for p in procs.values())


def apply(pipe: Any, settings: Settings, device: str) -> Any:
    """The pipeline with the speed defaults for ``device`` (after it was moved there)."""
    set_cpu_threads(settings, device)
    if device != "cuda":
        if settings.compile:
            compile_pipe(pipe, settings)
        return pipe
    import torch

    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.to(memory_format=torch.channels_last)
    if settings.fuse_qkv and settings.lora_dir is None and hasattr(pipe, "fuse_qkv_projections"):
        try:
            pipe.fuse_qkv_projections()
        except Exception as exc:  # older diffusers, or attention processors that cannot fuse
            log.info("fused q/k/v projections not used: %s", exc)
    if not uses_sdpa(pipe):
        log.info("the UNet is not on scaled-dot-product attention (torch %s)", torch.__version__)
    if settings.compile:
        compile_pipe(pipe, settings)
    return pipe


def compile_pipe(pipe: Any, settings: Settings) -> None:
    """torch.compile the UNet and the VAE decoder in place (compiled on their first call)."""
    import torch

    mode = None if settings.compile_mode == "default" else settings.compile_mode
    pipe.unet = torch.compile(pipe.unet, mode=mode)
    vae = pipe.vae
    vae.decoder = torch.compile(vae.decoder, mode=mode)
    log.info("torch.compile: UNet and VAE decoder (mode %s)", settings.compile_mode)


def is_compiled(pipe: Any) -> bool:
    return type(getattr(pipe, "unet", None)).__name__ == "OptimizedModule"


def warm_sizes(native: int, settings: Settings) -> list[tuple[int, int]]:
    """The sizes requests come in without naming one: each aspect preset's, within the limits."""
    sizes: list[tuple[int, int]] = []
    for aspect in Aspect:
        w, h = settings.limits.fit_size(*aspect.size(native))
        if (w, h) not in sizes:
            sizes.append((w, h))
    if settings.size and settings.size not in sizes:
        sizes.insert(0, settings.size)
    return sizes


def warm_up_compiled(pipe: Any, settings: Settings, native: int, device: str) -> list[tuple[int, int]]:
    """Run the compiled pipeline once per preset size (two steps, with CFG) so no user waits for it."""
    import torch

    sizes = warm_sizes(native, settings)
    gen_dev = "cpu" if device == "mps" else device
    for w, h in sizes:
        with torch.inference_mode():
            pipe(
                prompt="warm-up",
                negative_prompt="",
                width=w,
                height=h,
                num_inference_steps=2,
                guidance_scale=5.0,
                generator=torch.Generator(gen_dev).manual_seed(0),
            )
        log.info("compiled for %dx%d", w, h)
    return sizes
