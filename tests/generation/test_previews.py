"""Progress previews: what they cost (VAE decodes counted with a forward hook), how often they come,
and what they show."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.generation.base import StepInfo
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.previews import SD_FACTORS, SDXL_FACTORS, Previewer, known_factors
from chatcanvas.types import ImageSpec


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]

    def hook(*_: Any) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


async def _run(be: DiffusersBackend, **spec: Any) -> list[StepInfo]:
    seen: list[StepInfo] = []
    await be.generate([be.resolve(ImageSpec(prompt="a mustard yellow tote bag", seed=4, **spec))], seen.append)
    return seen


async def test_sd_latents_preview_by_their_factors_without_decoding(settings: Settings) -> None:
    be = DiffusersBackend(settings)  # the tiny checkpoint's VAE scales latents as SD 1.x does
    decodes = _count_calls(be.load().vae.decoder)
    seen = await _run(be, steps=9, width=96, height=64)
    previews = [s for s in seen if s.preview_png]
    assert [s.step for s in previews] == [4, 8]
    assert decodes[0] == 1  # the finished image's decode only
    for s in previews:
        im = Image.open(io.BytesIO(s.preview_png or b""))
        assert im.size == (96, 64)  # the image's shape (under 128: not enlarged)


async def test_the_demo_model_previews_with_its_own_decoder_in_its_colours(settings: Settings) -> None:
    from chatcanvas.config import DEMO_MODEL_DIR
    from chatcanvas.generation.demo.score import dominant_color_name

    be = DiffusersBackend(settings.model_copy(update={"model": str(DEMO_MODEL_DIR)}))
    decodes = _count_calls(be.load().vae.decoder)
    seen: list[StepInfo] = []
    spec = be.resolve(ImageSpec(prompt="a red mug", seed=2, steps=14))
    out = await be.generate([spec], seen.append)
    previews = [s for s in seen if s.preview_png]
    assert [s.step for s in previews] == [4, 8, 12]
    assert decodes[0] == 1 + len(previews)
    last = Image.open(io.BytesIO(previews[-1].preview_png or b"")).convert("RGB")
    assert last.size == (64, 64)
    final = Image.open(io.BytesIO(out[0].png)).convert("RGB")
    assert dominant_color_name(last) == dominant_color_name(final) == "red"


async def test_no_preview_when_the_image_comes_before_a_platform_would_show_it(settings: Settings) -> None:
    be = DiffusersBackend(settings.model_copy(update={"preview_interval_s": 3600.0}))
    decodes = _count_calls(be.load().vae.decoder)
    seen = await _run(be, steps=12)
    assert [s.step for s in seen] == list(range(1, 13))  # progress still every step
    assert not [s for s in seen if s.preview_png]
    assert decodes[0] == 1


async def test_a_tiny_vae_makes_the_previews_when_configured(settings: Settings, tmp_path: Path) -> None:
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    tiny = AutoencoderTiny(
        encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4,
    )
    tiny.save_pretrained(tmp_path / "taesd-tiny")
    be = DiffusersBackend(settings.model_copy(update={"preview_vae": str(tmp_path / "taesd-tiny")}))
    pipe = be.load()
    full = _count_calls(pipe.vae.decoder)
    small = _count_calls(be._previews.tiny_vae.decoder)
    seen = await _run(be, steps=9)
    assert small[0] == 2 and full[0] == 1
    assert all(Image.open(io.BytesIO(s.preview_png)).size == (32, 32) for s in seen if s.preview_png)


async def test_a_missing_tiny_vae_falls_back_and_still_generates(settings: Settings, tmp_path: Path) -> None:
    be = DiffusersBackend(settings.model_copy(update={"preview_vae": str(tmp_path / "no-such-vae")}))
    seen = await _run(be, steps=5)
    assert seen[-1].step == 5 and any(s.preview_png for s in seen)


def test_published_factors_for_sd_and_sdxl_vaes_and_none_for_others() -> None:
    from types import SimpleNamespace

    assert known_factors(SimpleNamespace(latent_channels=4, scaling_factor=0.18215))[0] == SD_FACTORS
    assert known_factors(SimpleNamespace(latent_channels=4, scaling_factor=0.13025))[0] == SDXL_FACTORS
    assert known_factors(SimpleNamespace(latent_channels=4, scaling_factor=0.3630110423001842)) is None
    assert known_factors(SimpleNamespace(latent_channels=16, scaling_factor=1.5305)) is None


def test_an_unknown_vaes_large_latents_are_shrunk_before_decoding(settings: Settings) -> None:
    """A VAE without published factors decodes previews itself, from at most 32x32 latents, in colour."""
    from diffusers import AutoencoderKL

    from chatcanvas.config import DEMO_MODEL_DIR
    from chatcanvas.generation.demo.draw import draw_product

    vae = AutoencoderKL.from_pretrained(DEMO_MODEL_DIR, subfolder="vae")
    decoded: list[tuple[int, ...]] = []
    vae.decoder.register_forward_hook(lambda _m, args, _out: decoded.append(tuple(args[0].shape)))
    p = Previewer(settings)
    p.vae = vae
    photo = draw_product("mug", "blue", np.random.default_rng(5))
    x = torch.tensor(np.asarray(photo.convert("RGB")), dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1
    big = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear")  # 256 px: 64x64 latents
    with torch.inference_mode():
        z = vae.encode(big).latent_dist.mean * vae.config.scaling_factor
    assert p.source(z) == "vae"
    png = p.render(z, (256, 256))
    assert png is not None and decoded == [(1, 4, 32, 32)]
    shown = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    drawn = np.asarray(photo.convert("RGB").resize(shown.shape[1::-1])).astype(int)
    product = np.abs(drawn - 255).sum(axis=2) > 120  # not the white background
    assert int(np.argmax(shown[product].mean(axis=0))) == 2  # blue
