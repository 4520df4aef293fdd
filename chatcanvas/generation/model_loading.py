"""Loading single-file checkpoints (SD 1.x, SD 2.x, SDXL) and the memory options.

A ``.safetensors`` / ``.ckpt`` file as A1111 users keep them holds the original (LDM) layout. Its
model family shows in the state-dict keys: SDXL has two text encoders under
``conditioner.embedders.0`` (CLIP ViT-L) and ``conditioner.embedders.1`` (OpenCLIP bigG); SD 2.x has
one OpenCLIP encoder under ``cond_stage_model.model``; SD 1.x has CLIP under
``cond_stage_model.transformer``; failing those, the width of the UNet's cross-attention (768, 1024,
2048) tells. Only the safetensors header is read for that, no weights.

The family picks the pipeline class (``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``),
then ``from_single_file`` converts the weights. diffusers needs the family's configs (UNet, VAE,
scheduler, tokenizer) for that, which it fetches from the Hugging Face hub by default; offline,
``CHATCANVAS_SINGLE_FILE_CONFIG`` names a local diffusers folder of the same family (``config=``) or
an original LDM ``.yaml`` (``original_config=``).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatcanvas import messages as m
from chatcanvas.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from chatcanvas.config import Settings

log = logging.getLogger(__name__)

SD1, SD2, SDXL = "sd1", "sd2", "sdxl"
SDXL_REFINER, INPAINT = "sdxl-refiner", "inpaint"
NATIVE_SIZE = {SD1: 512, SD2: 768, SDXL: 1024}
_UNSUPPORTED = {SDXL_REFINER: "SDXL refiner", INPAINT: "inpainting"}
_ATTN2 = re.compile(r"^model\.diffusion_model\..*attn2\.to_k\.weight$")


def is_single_file(ref: str) -> bool:
    return ref.endswith((".safetensors", ".ckpt", ".pt", ".bin")) and not Path(ref).is_dir()


def checkpoint_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape; for safetensors from the header alone."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    import torch

    sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else {}
    return {k: tuple(v.shape) for k, v in sd.items() if hasattr(v, "shape")}


def detect_family(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """sd1 / sd2 / sdxl (or sdxl-refiner / inpaint) from state-dict keys and shapes; None if unknown."""
    keys = shapes.keys()
    first = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    if first is not None and len(first) > 1 and first[1] == 9:
        return INPAINT
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return SDXL
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        return SDXL_REFINER
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return SD2
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return SD1
    widths = {shapes[k][-1] for k in keys if _ATTN2.match(k) and shapes[k]}
    for width, family in ((2048, SDXL), (1024, SD2), (768, SD1)):
        if width in widths:
            return family
    return None


def family_of(ref: str) -> str | None:
    try:
        return detect_family(checkpoint_shapes(Path(ref)))
    except Exception:  # unreadable: loading says why
        log.debug("could not read %s", ref, exc_info=True)
        return None


def native_size_of_file(ref: str) -> int | None:
    """The native side of a single-file checkpoint, from its family (before loading it)."""
    if not is_single_file(ref) or not Path(ref).is_file():
        return None
    fam = family_of(ref)
    return NATIVE_SIZE.get(fam) if fam else None


def pipeline_class(family: str) -> Any:
    import diffusers

    return diffusers.StableDiffusionXLPipeline if family == SDXL else diffusers.StableDiffusionPipeline


def load_single_file(ref: str, dtype: torch.dtype, settings: Settings) -> Any:
    """The text-to-image pipeline for a single-file checkpoint, of the class its family needs."""
    path = Path(ref).expanduser()
    if not path.is_file():
        raise ModelLoadError(m.MODEL_NOT_FOUND.format(model=ref, detail="no such file"))
    try:
        shapes = checkpoint_shapes(path)
    except Exception as exc:
        raise ModelLoadError(m.SINGLE_FILE_UNKNOWN.format(model=ref, detail=_first_line(exc))) from exc
    family = detect_family(shapes)
    if family is None:
        raise ModelLoadError(m.SINGLE_FILE_UNKNOWN.format(model=ref, detail="no known key layout"))
    if family in _UNSUPPORTED:
        raise ModelLoadError(m.SINGLE_FILE_UNSUPPORTED.format(model=ref, kind=_UNSUPPORTED[family]))
    kwargs: dict[str, Any] = {"torch_dtype": dtype}
    cfg = settings.single_file_config
    if cfg:
        if cfg.endswith((".yaml", ".yml")):
            kwargs["original_config"] = cfg
        else:
            kwargs["config"] = cfg
            if Path(cfg).is_dir():
                kwargs["local_files_only"] = True
    if family != SDXL:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    cls = pipeline_class(family)
    log.info("loading %s as %s (%s)", ref, cls.__name__, family)
    try:
        return cls.from_single_file(str(path), **kwargs)
    except Exception as exc:
        text = str(exc).lower()
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or any(
            w in text for w in ("offline", "connect", "resolve", "local_files_only", "cannot find")
        )
        if offline and not cfg:
            raise ModelLoadError(m.SINGLE_FILE_OFFLINE.format(model=ref, family=family)) from exc
        raise ModelLoadError(m.MODEL_NOT_FOUND.format(model=ref, detail=_first_line(exc))) from exc


def apply_memory_options(pipe: Any, settings: Settings, device: str) -> Any:
    """Attention slicing, VAE tiling, and either model CPU offload (accelerate) or ``.to(device)``."""
    if settings.attention_slicing:
        pipe.enable_attention_slicing()
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
    if settings.cpu_offload and device not in ("cpu",):
        try:
            import accelerate  # noqa: F401
        except ImportError as exc:
            raise ModelLoadError(m.CPU_OFFLOAD_NEEDS_ACCELERATE) from exc
        pipe.enable_model_cpu_offload(device=device)
        return pipe
    if settings.cpu_offload:
        log.info("CHATCANVAS_CPU_OFFLOAD has no effect on the cpu device")
    return pipe.to(device)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
