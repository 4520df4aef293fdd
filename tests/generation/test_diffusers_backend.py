"""The local backend on a tiny checkpoint saved to disk and loaded back with HF_HUB_OFFLINE=1."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chatcanvas.errors import JobCancelled, ModelLoadError
from chatcanvas.generation.base import StepInfo
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.metadata import parameters_from_png, recipe_from_png
from chatcanvas.store import Store
from chatcanvas.types import ImageSpec, Mode


def px(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def backend(settings) -> DiffusersBackend:  # type: ignore[no-untyped-def]
    return DiffusersBackend(settings)


async def test_text_to_image_same_seed_same_pixels_other_seed_other_pixels(backend: DiffusersBackend) -> None:
    spec = backend.resolve(ImageSpec(prompt="a red mug", seed=7, steps=3))
    assert (spec.width, spec.height) == (32, 32)  # the checkpoint's native size
    a, b = await backend.generate([spec]), await backend.generate([spec])
    c = await backend.generate([spec.model_copy(update={"seed": 8})])
    assert np.array_equal(px(a[0].png), px(b[0].png))
    assert not np.array_equal(px(a[0].png), px(c[0].png))
    assert a[0].recipe.seed == 7 and a[0].recipe.sampler == "DPM++ 2M"


async def test_progress_reports_every_step_and_cancel_stops(backend: DiffusersBackend) -> None:
    seen: list[StepInfo] = []
    await backend.generate([backend.resolve(ImageSpec(prompt="x", seed=1, steps=5))], seen.append)
    assert [s.step for s in seen] == [1, 2, 3, 4, 5] and {s.total for s in seen} == {5}
    assert seen[3].preview_png is not None  # a preview every few steps
    assert Image.open(io.BytesIO(seen[3].preview_png)).size[0] <= 128

    def stop_at_2(info: StepInfo) -> None:
        if info.step == 2:
            raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        await backend.generate([backend.resolve(ImageSpec(prompt="x", seed=1, steps=5))], stop_at_2)


async def test_image_to_image_and_inpainting_share_the_loaded_model(
    backend: DiffusersBackend, settings
) -> None:  # type: ignore[no-untyped-def]
    store = Store(settings.data_dir)
    base = (await backend.generate([backend.resolve(ImageSpec(prompt="a mug", seed=3, steps=2))]))[0]
    init = store.put_upload(base.png)
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    mask_id = store.put_upload(buf.getvalue())

    i2i = backend.resolve(ImageSpec(prompt="a blue mug", seed=3, steps=4, init_image=init, strength=0.5))
    out = (await backend.generate([i2i]))[0]
    assert out.recipe.mode == Mode.IMG2IMG and out.recipe.strength == 0.5 and out.recipe.init_image == init

    inp = backend.resolve(
        ImageSpec(prompt="a blue mug", seed=3, steps=4, init_image=init, mask_image=mask_id, strength=1.0)
    )
    painted = (await backend.generate([inp]))[0]
    assert painted.recipe.mode == Mode.INPAINT
    before, after = px(base.png).astype(int), px(painted.png).astype(int)
    # Outside the mask the picture is kept (up to VAE round-trip error); inside it is repainted.
    outside = np.ones((32, 32), bool)
    outside[6:26, 6:26] = False
    assert np.abs(after - before)[outside].mean() < np.abs(after - before)[8:24, 8:24].mean()
    pipes = backend._pipes
    assert pipes[Mode.IMG2IMG].unet is pipes[Mode.TEXT2IMG].unet is pipes[Mode.INPAINT].unet
    store.close()


async def test_png_carries_a1111_parameters_and_exact_recipe(backend: DiffusersBackend) -> None:
    spec = backend.resolve(ImageSpec(prompt="a red mug, studio", negative_prompt="blurry", seed=42, steps=2))
    img = (await backend.generate([spec]))[0]
    params = parameters_from_png(img.png)
    assert params["prompt"] == "a red mug, studio"
    assert params["negative_prompt"] == "blurry"
    assert params["Seed"] == "42" and params["Steps"] == "2" and params["Size"] == "32x32"
    assert params["Sampler"] == "DPM++ 2M" and params["CFG scale"] == "7"
    assert recipe_from_png(img.png) == img.recipe


def test_missing_local_model_names_it(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    be = DiffusersBackend(settings, model=str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="nope"):
        be.load()


def test_hub_id_offline_says_hf_hub_offline(settings) -> None:  # type: ignore[no-untyped-def]
    be = DiffusersBackend(settings, model="someone/not-cached-model")
    with pytest.raises(ModelLoadError) as err:
        be.load()
    assert "someone/not-cached-model" in str(err.value) and "HF_HUB_OFFLINE" in str(err.value)


def test_token_count_uses_the_checkpoints_tokenizer(backend: DiffusersBackend) -> None:
    # The tiny tokenizer has one token per character: the count shows it is really used.
    assert backend.count_tokens("abc") == 3
