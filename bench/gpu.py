"""GPU speed: diffusers' fp16 eager defaults against chatcanvas's defaults and against torch.compile,
on full-size Stable Diffusion 1.5 (512x512) and SDXL (1024x1024) architectures built from their
published configs with random weights (no download: the configs are written out below), 30 steps
with classifier-free guidance, batch 1, 4 and 8.

* ``diffusers``: ``StableDiffusion(XL)Pipeline(...).to("cuda", torch.float16)``, nothing else;
* ``chatcanvas``: the pipeline as :class:`~chatcanvas.generation.diffusers_backend.DiffusersBackend`
  loads it (float16, channels-last, fused q/k/v projections, scaled-dot-product attention), called the
  same way; plus, at batch 1, the backend's whole ``generate`` (PNG, recipe, provenance);
* ``compile``: the same with ``CHATCANVAS_COMPILE=1`` (UNet and VAE decoder through torch.compile);
  its first call per shape (compiling) is timed apart.

For each: seconds per image (median of ``--repeat`` timed runs after one untimed run), and the
fraction of the device's dense bf16/fp16 peak: FLOPs of one image (30 UNet calls at the CFG batch,
the text encoders, the VAE decode) counted with ``torch.utils.flop_counter.FlopCounterMode``, divided
by the seconds, over the peak (H100/H200: 989 TFLOPS; ``--peak-tflops`` for others). Stays under
``--budget`` seconds (default 450): what does not fit is skipped and said so. Prints one summary line
and appends a table to bench/RESULTS.md.

    python bench/gpu.py [--repeat 2] [--budget 450] [--only sd15|sdxl] [--no-compile] [--no-append]
    python bench/gpu.py --tiny        # a smoke run on any device: tiny models, batch 1 and 2, 4 steps
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAKS_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}

SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
CLIP_G = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
              num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)

TINY_UNET = dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=8,
                 attention_head_dim=4)
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                norm_num_groups=8)
TINY_CLIP = dict(vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=77, hidden_act="gelu", projection_dim=32)


@dataclass
class Arch:
    name: str
    size: int
    sdxl: bool
    unet: dict[str, Any]
    vae: dict[str, Any]
    scaling: float
    clips: list[dict[str, Any]] = field(default_factory=list)


ARCHS = {
    "sd15": Arch("SD 1.5", 512, False, SD15_UNET, VAE, 0.18215, [CLIP_L]),
    "sdxl": Arch("SDXL", 1024, True, SDXL_UNET, {**VAE, "force_upcast": True}, 0.13025, [CLIP_L, CLIP_G]),
}
TINY = Arch("tiny SD", 32, False, TINY_UNET, TINY_VAE, 0.18215, [TINY_CLIP])


def _tokenizer(folder: Path) -> Any:
    """A CLIP BPE tokenizer over single characters (the real vocabulary is not downloadable here)."""
    import json

    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in (c for c in string.printable if not c.isspace()):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def build(arch: Arch, out: Path, device: str) -> Path:
    """The architecture with random weights, saved in float16 as a diffusers folder."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**arch.unet)
        vae = AutoencoderKL(**arch.vae, scaling_factor=arch.scaling)
        enc = [CLIPTextModel(CLIPTextConfig(**arch.clips[0]))]
        if arch.sdxl:
            enc.append(CLIPTextModelWithProjection(CLIPTextConfig(**arch.clips[1])))
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   timestep_spacing="leading", steps_offset=1)
    tok = _tokenizer(out / "_tok")
    parts: dict[str, Any] = dict(unet=unet, vae=vae, scheduler=sched, text_encoder=enc[0], tokenizer=tok)
    if arch.sdxl:
        pipe: Any = StableDiffusionXLPipeline(**parts, text_encoder_2=enc[1], tokenizer_2=tok)
    else:
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    folder = out / arch.name.replace(" ", "-").lower()
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    del pipe, unet, vae, enc
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return folder


def flops_per_image(pipe: Any, arch: Arch, steps: int, batch: int) -> float:
    """FLOPs of one image of a CFG batch: ``steps`` UNet calls, the text encoders once, one VAE decode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dev, dtype = pipe.unet.device, pipe.unet.dtype
    lat = arch.size // 8
    x = torch.randn(2 * batch, 4, lat, lat, device=dev, dtype=dtype)
    ctx = torch.randn(2 * batch, 77, pipe.unet.config.cross_attention_dim, device=dev, dtype=dtype)
    kw: dict[str, Any] = {}
    if arch.sdxl:
        kw["added_cond_kwargs"] = {
            "text_embeds": torch.randn(2 * batch, 1280, device=dev, dtype=dtype),
            "time_ids": torch.randn(2 * batch, 6, device=dev, dtype=dtype),
        }
    ids = torch.zeros(2 * batch, 77, dtype=torch.long, device=dev)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as unet_fc:
            pipe.unet(x, 500, ctx, **kw)
        with FlopCounterMode(display=False) as text_fc:
            pipe.text_encoder(ids)
            if arch.sdxl:
                pipe.text_encoder_2(ids)
        with FlopCounterMode(display=False) as vae_fc:
            pipe.vae.decode(x[:batch].to(pipe.vae.dtype))
    total = steps * unet_fc.get_total_flops() + text_fc.get_total_flops() + vae_fc.get_total_flops()
    return float(total) / batch


@dataclass
class Row:
    arch: str
    variant: str
    batch: int
    s_per_image: float
    tflops_per_image: float
    peak: float | None
    note: str = ""

    def md(self) -> str:
        frac = f"{self.tflops_per_image / self.s_per_image / self.peak:.1%}" if self.peak else "n/a"
        achieved = self.tflops_per_image / self.s_per_image
        return (f"| {self.arch} | {self.variant} | {self.batch} | {self.s_per_image:.3f} | "
                f"{achieved:.0f} | {frac} | {self.note} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run")
    ap.add_argument("--only", choices=sorted(ARCHS))
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, help="the device's dense bf16/fp16 peak (default: by name)")
    ap.add_argument("--tiny", action="store_true", help="smoke run: tiny models, batch 1 and 2, 4 steps")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    import torch

    from chatcanvas.config import Settings
    from chatcanvas.generation import acceleration
    from chatcanvas.generation.diffusers_backend import DiffusersBackend
    from chatcanvas.types import ImageSpec

    t_start = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cuda" and not args.tiny:
        sys.exit("needs a CUDA device (or --tiny for a smoke run)")
    gpu = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAKS_TFLOPS.items() if k in gpu), None)
    steps = 4 if args.tiny else 30
    batches = [1, 2] if args.tiny else [1, 4, 8]
    archs = [TINY] if args.tiny else [ARCHS[args.only]] if args.only else list(ARCHS.values())
    dtype = torch.float16 if device == "cuda" else torch.float32
    rows: list[Row] = []
    skipped: list[str] = []

    def left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    def timed(call: Callable[[], Any]) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def run_pipe(pipe: Any, arch: Arch, batch: int) -> None:
        with torch.inference_mode():
            pipe(prompt="a red mug on a wooden table, studio light", negative_prompt="blurry",
                 num_inference_steps=steps, guidance_scale=7.5, width=arch.size, height=arch.size,
                 num_images_per_prompt=batch, generator=torch.Generator(device).manual_seed(0), output_type="pil")

    def measure(pipe: Any, arch: Arch, variant: str, flops: dict[int, float], note_first: bool = False) -> None:
        for batch in batches:
            need = 3 * (rows[-1].s_per_image * batch if rows else 5.0) * (args.repeat + 1)
            if left() < need:
                skipped.append(f"{arch.name} {variant} batch {batch} (time budget)")
                continue
            call = functools.partial(run_pipe, pipe, arch, batch)
            first = timed(call)
            ts = [timed(call) for _ in range(args.repeat)]
            if batch not in flops:
                flops[batch] = flops_per_image(pipe, arch, steps, batch)
            note = f"first call {first:.1f} s (compiling)" if note_first else ""
            rows.append(Row(arch.name, variant, batch, statistics.median(ts) / batch, flops[batch] / 1e12, peak, note))
            print(rows[-1].md(), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            if left() < 60:
                skipped.append(f"{arch.name} (time budget)")
                continue
            t0 = time.perf_counter()
            folder = build(arch, Path(tmp), device)
            print(f"{arch.name}: built and saved in {time.perf_counter() - t0:.0f} s", flush=True)
            flops: dict[int, float] = {}

            from diffusers import AutoPipelineForText2Image

            plain = AutoPipelineForText2Image.from_pretrained(folder, torch_dtype=dtype).to(device)
            plain.set_progress_bar_config(disable=True)
            measure(plain, arch, "diffusers fp16 eager", flops)
            del plain
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()

            settings = Settings(model=str(folder), data_dir=Path(tmp) / "data", device=device)
            be = DiffusersBackend(settings)
            pipe = be.load()
            fused = "fused q/k/v" if "Fused" in "".join(type(p).__name__ for p in pipe.unet.attn_processors.values()) else ""
            measure(pipe, arch, "chatcanvas defaults", flops)
            if left() > 30:
                spec = be.resolve(ImageSpec(prompt="a red mug", seed=1, steps=steps, guidance=7.5,
                                            width=arch.size, height=arch.size))
                import asyncio

                def whole_call(be: Any = be, spec: Any = spec) -> None:
                    asyncio.run(be.generate([spec]))

                whole_call()
                whole = statistics.median(timed(whole_call) for _ in range(args.repeat))
                rows.append(Row(arch.name, "chatcanvas backend.generate (PNG, recipe, provenance)", 1, whole,
                                flops[1] / 1e12, peak, fused))
                print(rows[-1].md(), flush=True)
            del be, pipe
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()

            if args.no_compile:
                continue
            if left() < 120 and not args.tiny:
                skipped.append(f"{arch.name} compile (time budget)")
                continue
            cbe = DiffusersBackend(settings.model_copy(update={"compile": True}))
            cpipe = cbe.load()
            assert acceleration.is_compiled(cpipe)
            measure(cpipe, arch, "chatcanvas + torch.compile", flops, note_first=True)
            del cbe, cpipe
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()

    took = time.perf_counter() - t_start
    best = {}
    for r in rows:
        key = (r.arch, r.batch)
        if r.variant.startswith("diffusers"):
            best.setdefault(key, {})["base"] = r.s_per_image
        elif r.variant in ("chatcanvas defaults", "chatcanvas + torch.compile"):
            best.setdefault(key, {})[r.variant] = r.s_per_image
    speedups = []
    for (a, b), v in sorted(best.items()):
        if "base" in v:
            for name in ("chatcanvas defaults", "chatcanvas + torch.compile"):
                if name in v:
                    speedups.append(f"{a} b{b} {name.split()[-1]} {v['base'] / v[name]:.2f}x")
    summary = f"{gpu}: " + ("; ".join(speedups) or "no rows") + f" ({took:.0f} s)"
    print(summary)
    if args.no_append or args.tiny:
        return
    from _common import append_results

    body = "\n".join(
        [
            f"`bench/gpu.py --repeat {args.repeat}` on {gpu} (peak {peak or 'unknown'} TFLOPS dense bf16/fp16), "
            f"torch {torch.__version__}; random weights in the published SD 1.5 / SDXL architectures, "
            f"{steps} steps, CFG 7.5, Euler; s/image = median of {args.repeat} timed runs / batch.",
            "",
            "| model | variant | batch | s / image | TFLOP/s | of peak | note |",
            "|---|---|---|---|---|---|---|",
            *[r.md() for r in rows],
            "",
            ("Skipped: " + "; ".join(skipped) + ".") if skipped else "Nothing skipped.",
            "",
            f"Summary: {summary}",
        ]
    )
    append_results("GPU: diffusers defaults vs chatcanvas defaults vs torch.compile (gpu.py)", body)


if __name__ == "__main__":
    main()
