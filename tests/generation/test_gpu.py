"""GPU checks of the local backend: device, dtype, seeds and the CUDA speed defaults on a loaded pipeline
(run where CUDA is present; skipped elsewhere)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from chatcanvas.generation import acceleration
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.types import ImageSpec

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def px(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


async def test_auto_device_is_cuda_in_float16_and_seeds_repeat(settings) -> None:  # type: ignore[no-untyped-def]
    be = DiffusersBackend(settings)
    assert be.device() == "cuda" and be.dtype() == torch.float16
    spec = be.resolve(ImageSpec(prompt="a red mug", seed=11, steps=4))
    a, b = await be.generate([spec]), await be.generate([spec])
    assert np.array_equal(px(a[0].png), px(b[0].png))
    assert next(be.load().unet.parameters()).device.type == "cuda"


async def test_batched_images_match_single_runs_on_gpu(settings) -> None:  # type: ignore[no-untyped-def]
    be = DiffusersBackend(settings)
    specs = [
        be.resolve(ImageSpec(prompt=p, seed=s, steps=4)) for p, s in [("a red mug", 1), ("a blue cap", 2)]
    ]
    together = await be.generate(specs)
    for spec, img in zip(specs, together, strict=True):
        alone = (await be.generate([spec]))[0]
        # float16 kernels may pick another algorithm for another batch size: allow a rounding step
        assert np.abs(px(alone.png) - px(img.png)).max() <= 2


async def test_cuda_pipeline_is_half_precision_channels_last_fused_on_sdpa(settings) -> None:  # type: ignore[no-untyped-def]
    be = DiffusersBackend(settings)
    pipe = be.load()
    assert pipe.unet.dtype == torch.float16
    conv = pipe.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    names = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert names == {"FusedAttnProcessor2_0"}, names  # fused q/k/v, on scaled-dot-product attention
    out = await be.generate([be.resolve(ImageSpec(prompt="a red mug", seed=3, steps=4))])
    assert out[0].png.startswith(b"\x89PNG")


async def test_lora_dir_keeps_the_projections_apart(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "loras").mkdir()
    be = DiffusersBackend(settings.model_copy(update={"lora_dir": tmp_path / "loras"}))
    names = {type(p).__name__ for p in be.load().unet.attn_processors.values()}
    assert "FusedAttnProcessor2_0" not in names


async def test_bfloat16_when_asked(settings) -> None:  # type: ignore[no-untyped-def]
    be = DiffusersBackend(settings.model_copy(update={"dtype": "bfloat16"}))
    assert be.load().unet.dtype == torch.bfloat16
    out = await be.generate([be.resolve(ImageSpec(prompt="a blue cap", seed=3, steps=3))])
    assert px(out[0].png).std() > 0


async def test_compiled_pipeline_is_warmed_up_and_draws_what_eager_draws(settings) -> None:  # type: ignore[no-untyped-def]
    spec = ImageSpec(prompt="a green tote bag", seed=9, steps=4)
    eager = DiffusersBackend(settings)
    want = (await eager.generate([eager.resolve(spec)]))[0]
    be = DiffusersBackend(settings.model_copy(update={"compile": True}))
    await be.warm_up()
    assert acceleration.is_compiled(be.load())
    got = (await be.generate([be.resolve(spec)]))[0]
    assert np.abs(px(got.png) - px(want.png)).mean() < 3  # the same picture, up to kernel rounding
