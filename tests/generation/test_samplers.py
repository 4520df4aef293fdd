"""Samplers by their A1111 names, CFG as asked, hires fix, memory options, single-file checkpoints.

Everything runs on tiny checkpoints built in code (tests/fakes) and loaded back offline.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.errors import ModelLoadError, SpecError
from chatcanvas.generation.base import StepInfo
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.metadata import parameters_from_png
from chatcanvas.generation.samplers import SAMPLERS, build_scheduler, canonical
from chatcanvas.types import Aspect, ImageSpec, Limits


def px(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


@pytest.fixture
def backend(settings: Settings) -> DiffusersBackend:
    return DiffusersBackend(settings)


async def one(backend: DiffusersBackend, **kw: object):  # type: ignore[no-untyped-def]
    return (await backend.generate([backend.resolve(ImageSpec(**kw))]))[0]  # type: ignore[arg-type]


# ---------------------------------------------------------------- names


def test_both_a1111_spellings_of_a_schedule_read_the_same() -> None:
    assert canonical("DPM++ 2M Karras", None) == ("DPM++ 2M", "Karras")  # A1111 up to 1.8
    assert canonical("DPM++ 2M", "Karras") == ("DPM++ 2M", "Karras")  # A1111 1.9 and later
    assert canonical("dpm++ 2m  karras", None) == ("DPM++ 2M", "Karras")
    assert canonical("euler_a", None) == ("Euler a", None)
    assert canonical("DPM++ SDE Karras", None) == ("DPM++ SDE", "Karras")
    assert canonical("Euler", "sgm_uniform") == ("Euler", "SGM Uniform")
    # "Automatic" is what A1111 >= 1.9 runs by default for that sampler
    assert canonical("DPM++ 2M", "Automatic") == ("DPM++ 2M", "Karras")
    assert canonical("Euler a", "Automatic") == ("Euler a", None)
    assert canonical("Heun", "Uniform") == ("Heun", None)


def test_an_unknown_sampler_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError) as err:
        ImageSpec(prompt="a teapot", sampler="Restart")
    text = str(err.value)
    assert "Unknown sampler 'Restart'" in text
    for name in ("Euler a", "DPM++ 2M SDE", "UniPC", "LCM", "PLMS"):
        assert name in text
    with pytest.raises(ValueError, match="Unknown schedule type 'Beta'"):
        ImageSpec(prompt="a teapot", sampler="Euler", schedule="Beta")
    with pytest.raises(ValueError, match="DDIM sampler doesn't take the Karras"):
        ImageSpec(prompt="a teapot", sampler="DDIM Karras")


def test_spec_takes_either_spelling_and_keeps_them_apart() -> None:
    spec = ImageSpec(prompt="a teapot", sampler="DPM++ 2M Karras")
    assert (spec.sampler, spec.schedule) == ("DPM++ 2M", "Karras")
    assert ImageSpec.model_validate_json(spec.model_dump_json()) == spec


def test_every_sampler_in_the_table_builds_from_the_models_config(backend: DiffusersBackend) -> None:
    base = backend.load().scheduler
    before = dict(base.config)
    for name, s in SAMPLERS.items():
        for schedule in (None, *s.schedules):
            sched = build_scheduler(base, name, schedule)
            assert sched is not base
            sched.set_timesteps(6)
            assert len(sched.timesteps) >= 6
    assert dict(base.config) == before and type(base).__name__ == "DPMSolverMultistepScheduler"


def test_ancestral_karras_sigmas_match_diffusers_own_karras_sigmas(backend: DiffusersBackend) -> None:
    base = backend.load().scheduler
    ours = build_scheduler(base, "Euler a", "Karras")
    theirs = build_scheduler(base, "Euler", "Karras")  # EulerDiscreteScheduler(use_karras_sigmas=True)
    ours.set_timesteps(8)
    theirs.set_timesteps(8)
    assert np.allclose(ours.sigmas.numpy(), theirs.sigmas.numpy(), rtol=1e-4)
    assert np.allclose(ours.timesteps.numpy(), theirs.timesteps.numpy(), atol=0.05)


# ---------------------------------------------------------------- generation


async def test_euler_a_is_recorded_and_changes_the_pixels_for_the_same_seed(backend: DiffusersBackend) -> None:
    default = await one(backend, prompt="a ceramic teapot, studio", seed=11, steps=4)
    euler_a = await one(backend, prompt="a ceramic teapot, studio", seed=11, steps=4, sampler="Euler a")
    assert euler_a.recipe.sampler == "Euler a"
    assert parameters_from_png(euler_a.png)["Sampler"] == "Euler a"
    assert np.abs(px(euler_a.png) - px(default.png)).mean() > 1.0
    # naming the model's own scheduler is the default, pixel for pixel
    same = await one(backend, prompt="a ceramic teapot, studio", seed=11, steps=4, sampler="DPM++ 2M")
    assert np.array_equal(px(same.png), px(default.png))
    # and the loaded pipeline's scheduler is still the model's own
    assert type(backend.load().scheduler).__name__ == "DPMSolverMultistepScheduler"


async def test_dpmpp_2m_karras_records_karras_apart(backend: DiffusersBackend) -> None:
    img = await one(backend, prompt="a ceramic teapot", seed=3, steps=4, sampler="DPM++ 2M Karras")
    assert (img.recipe.sampler, img.recipe.schedule) == ("DPM++ 2M", "Karras")
    params = parameters_from_png(img.png)
    assert params["Sampler"] == "DPM++ 2M" and params["Schedule type"] == "Karras"
    plain = await one(backend, prompt="a ceramic teapot", seed=3, steps=4, sampler="DPM++ 2M")
    assert parameters_from_png(plain.png)["Schedule type"] == "Uniform"  # so A1111 >= 1.9 doesn't add Karras
    assert not np.array_equal(px(img.png), px(plain.png))


async def test_ancestral_sampler_with_karras_runs(backend: DiffusersBackend) -> None:
    a = await one(backend, prompt="a ceramic teapot", seed=5, steps=5, sampler="Euler a")
    k = await one(backend, prompt="a ceramic teapot", seed=5, steps=5, sampler="Euler a", schedule="Karras")
    assert (k.recipe.sampler, k.recipe.schedule) == ("Euler a", "Karras")
    assert not np.array_equal(px(a.png), px(k.png))


def test_requests_with_other_samplers_are_not_batched_together(backend: DiffusersBackend) -> None:
    a = backend.resolve(ImageSpec(prompt="a", seed=1, steps=2, sampler="Euler a"))
    b = backend.resolve(ImageSpec(prompt="b", seed=2, steps=2, sampler="Euler a"))
    c = backend.resolve(ImageSpec(prompt="c", seed=3, steps=2, sampler="Euler a", schedule="Karras"))
    d = backend.resolve(ImageSpec(prompt="d", seed=4, steps=2, sampler="Heun"))
    assert backend.batch_key(a) == backend.batch_key(b)
    assert len({backend.batch_key(x) for x in (a, c, d)}) == 3


def test_default_sampler_setting(settings: Settings) -> None:
    be = DiffusersBackend(settings.model_copy(update={"default_sampler": "UniPC", "default_schedule": "Karras"}))
    spec = be.resolve(ImageSpec(prompt="a teapot"))
    assert (spec.sampler, spec.schedule) == ("UniPC", "Karras")
    mine = be.resolve(ImageSpec(prompt="a teapot", sampler="Heun"))
    assert (mine.sampler, mine.schedule) == ("Heun", None)


def test_a_bad_default_sampler_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatcanvas.config import load_settings
    from chatcanvas.errors import ConfigError

    monkeypatch.setenv("CHATCANVAS_DEFAULT_SAMPLER", "Eular a")
    with pytest.raises(ConfigError, match="CHATCANVAS_DEFAULT_SAMPLER.*Unknown sampler 'Eular a'"):
        load_settings()


async def test_a_schedule_the_models_scheduler_cannot_take_fails_clearly(tmp_path: Path, settings: Settings) -> None:
    be = DiffusersBackend(settings)
    pipe = be.load()
    pipe.scheduler = build_scheduler(pipe.scheduler, "PLMS", None)  # a model whose own scheduler is PLMS
    with pytest.raises(SpecError, match="PLMS.*Karras"):
        await be.generate([be.resolve(ImageSpec(prompt="a teapot", seed=1, steps=2, schedule="Karras"))])


# ---------------------------------------------------------------- CFG as asked


async def test_guidance_zero_is_zero(backend: DiffusersBackend, settings: Settings) -> None:
    img = await one(backend, prompt="a ceramic teapot", seed=9, steps=3, guidance=0)
    assert img.recipe.guidance == 0 and parameters_from_png(img.png)["CFG scale"] == "0"
    seven = await one(backend, prompt="a ceramic teapot", seed=9, steps=3, guidance=7)
    assert not np.array_equal(px(img.png), px(seven.png))
    zero_default = DiffusersBackend(settings.model_copy(update={"default_guidance": 0.0}))
    assert zero_default.resolve(ImageSpec(prompt="a teapot")).guidance == 0


async def test_no_negative_prompt_pass_at_cfg_one_or_less(backend: DiffusersBackend) -> None:
    for cfg in (0.0, 1.0):
        plain = await one(backend, prompt="a ceramic teapot", seed=4, steps=3, guidance=cfg)
        neg = await one(backend, prompt="a ceramic teapot", negative_prompt="chipped, cracked", seed=4, steps=3, guidance=cfg)
        assert np.array_equal(px(plain.png), px(neg.png))
    plain = await one(backend, prompt="a ceramic teapot", seed=4, steps=3, guidance=6)
    neg = await one(backend, prompt="a ceramic teapot", negative_prompt="chipped, cracked", seed=4, steps=3, guidance=6)
    assert not np.array_equal(px(plain.png), px(neg.png))


# ---------------------------------------------------------------- hires fix


async def test_hires_fix_doubles_the_size_and_records_it_as_a1111(backend: DiffusersBackend) -> None:
    seen: list[StepInfo] = []
    spec = backend.resolve(ImageSpec(prompt="a ceramic teapot", seed=2, steps=4, width=64, height=64, hires_scale=2))
    img = (await backend.generate([spec], seen.append))[0]
    assert Image.open(io.BytesIO(img.png)).size == (128, 128)
    assert (img.recipe.width, img.recipe.height) == (128, 128)
    p = parameters_from_png(img.png)
    assert p["Size"] == "64x64" and p["Hires upscale"] == "2" and p["Denoising strength"] == "0.7"
    assert p["Hires upscaler"] == "Lanczos"
    # progress runs on through both passes to one total
    assert [s.step for s in seen] == list(range(1, len(seen) + 1)) and seen[-1].step == seen[-1].total
    assert len(seen) == 4 + int(4 * 0.7)
    again = (await backend.generate([spec]))[0]
    assert np.array_equal(px(img.png), px(again.png))


async def test_hires_steps_and_denoise_are_kept(backend: DiffusersBackend) -> None:
    spec = ImageSpec(
        prompt="a teapot", seed=2, steps=3, width=32, height=48, hires_scale=1.5, hires_steps=6, hires_denoise=0.5
    )
    img = (await backend.generate([backend.resolve(spec)]))[0]
    assert Image.open(io.BytesIO(img.png)).size == (48, 72)
    p = parameters_from_png(img.png)
    assert (p["Size"], p["Hires upscale"], p["Hires steps"], p["Denoising strength"]) == ("32x48", "1.5", "6", "0.5")


def test_the_size_limit_holds_for_the_hires_output() -> None:
    lim = Limits(max_side=1024, max_pixels=1024 * 1024)
    spec = ImageSpec(prompt="a teapot", width=768, height=512, hires_scale=2)
    assert any("1536x1024" in p for p in lim.problems(spec))
    clamped, notes = lim.clamp(spec)
    assert clamped.hires_scale == 2 and max(clamped.width or 0, clamped.height or 0) * 2 <= 1024
    assert not lim.problems(clamped) and notes
    with pytest.raises(ValueError, match="text-to-image only"):
        ImageSpec(prompt="a teapot", init_image="abc", hires_scale=2)


# ---------------------------------------------------------------- SDXL sizes, memory options


def test_sdxl_sizes_are_its_training_buckets() -> None:
    assert Aspect.SQUARE.size(1024) == (1024, 1024)
    assert Aspect.LANDSCAPE.size(1024) == (1216, 832)
    assert Aspect.PORTRAIT.size(1024) == (832, 1216)
    assert Aspect.WIDE.size(1024) == (1344, 768)
    assert Aspect.TALL.size(1024) == (768, 1344)
    lim = Limits(max_side=1536, max_pixels=1024 * 1024)
    assert lim.size_for(None, 2.39, None, 1024, sdxl_buckets=True) == (1536, 640)  # cinema 2.39:1
    assert lim.size_for(Aspect.WIDE, None, None, 1024, sdxl_buckets=True) == (1344, 768)
    assert lim.size_for(Aspect.WIDE, None, None, 1024) == (1360, 768)  # DALL-E picks its own sizes
    assert Aspect.WIDE.size(512) == (680, 384)  # SD 1.x sizes stay as they were


async def test_memory_options_apply_and_generation_still_works(settings: Settings) -> None:
    be = DiffusersBackend(
        settings.model_copy(update={"attention_slicing": True, "vae_tiling": True, "cpu_offload": True, "device": "cpu"})
    )
    pipe = be.load()
    assert pipe.vae.use_tiling
    procs = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert procs == {"SlicedAttnProcessor"}
    img = (await be.generate([be.resolve(ImageSpec(prompt="a teapot", seed=1, steps=2))]))[0]
    assert Image.open(io.BytesIO(img.png)).size == (32, 32)


# ---------------------------------------------------------------- single-file checkpoints


def test_family_from_state_dict_keys(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from chatcanvas.generation.model_loading import checkpoint_shapes, detect_family

    def saved(name: str, keys: dict[str, tuple[int, ...]]) -> Path:
        f = tmp_path / f"{name}.safetensors"
        save_file({k: torch.zeros(s) for k, s in keys.items()}, str(f))
        return f

    unet = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}
    cases = {
        "sd15": {**unet, "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (77, 768)},
        "sd21": {**unet, "cond_stage_model.model.token_embedding.weight": (8, 1024)},
        "sdxl": {
            **unet,
            "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
            "conditioner.embedders.1.model.positional_embedding": (77, 1280),
        },
        "refiner": {**unet, "conditioner.embedders.0.model.text_projection": (1280, 1280)},
        "inpaint": {"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)},
        "unet_only_xl": {"model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 2048)},
    }
    got = {name: detect_family(checkpoint_shapes(saved(name, keys))) for name, keys in cases.items()}
    assert got == {
        "sd15": "sd1",
        "sd21": "sd2",
        "sdxl": "sdxl",
        "refiner": "sdxl-refiner",
        "inpaint": "inpaint",
        "unet_only_xl": "sdxl",
    }


@pytest.fixture(scope="session")
def sd1_file(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fakes.ldm_checkpoint import save_sd1_single_file

    return save_sd1_single_file(tiny_model_dir, tmp_path_factory.mktemp("ckpt") / "tiny-sd15.safetensors")


async def test_single_file_sd1_checkpoint_loads_and_draws_like_its_folder(
    settings: Settings, sd1_file: Path, tiny_model_dir: Path
) -> None:
    folder = DiffusersBackend(settings)
    single = DiffusersBackend(settings.model_copy(update={"single_file_config": str(tiny_model_dir)}), model=str(sd1_file))
    assert single.native_size() == 512  # SD 1.x, read from the file before loading
    pipe = single.load()
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    spec = ImageSpec(prompt="a ceramic teapot", seed=6, steps=3, width=32, height=32, sampler="Euler a")
    a = (await folder.generate([folder.resolve(spec)]))[0]
    b = (await single.generate([single.resolve(spec)]))[0]
    assert np.array_equal(px(a.png), px(b.png))


def test_single_file_offline_without_config_says_what_to_set(settings: Settings, sd1_file: Path) -> None:
    be = DiffusersBackend(settings, model=str(sd1_file))
    with pytest.raises(ModelLoadError) as err:
        be.load()
    assert "CHATCANVAS_SINGLE_FILE_CONFIG" in str(err.value) and "sd1" in str(err.value)


def test_an_sdxl_refiner_file_is_refused_by_name(settings: Settings, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    f = tmp_path / "refiner.safetensors"
    save_file({"conditioner.embedders.0.model.text_projection": torch.zeros(4, 4)}, str(f))
    with pytest.raises(ModelLoadError, match="SDXL refiner"):
        DiffusersBackend(settings, model=str(f)).load()


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.fakes.ldm_checkpoint import save_sdxl_single_file
    from tests.fakes.tiny_sdxl import build_tiny_sdxl

    folder = build_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl"))
    return folder, save_sdxl_single_file(folder, tmp_path_factory.mktemp("ckpt-xl") / "tiny-xl.safetensors")


async def test_single_file_sdxl_checkpoint_loads_as_sdxl(settings: Settings, tiny_sdxl: tuple[Path, Path]) -> None:
    folder, file = tiny_sdxl
    be = DiffusersBackend(settings.model_copy(update={"single_file_config": str(folder)}), model=str(file))
    assert be.native_size() == 1024  # the SDXL family's size, before loading
    pipe = be.load()
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    spec = be.resolve(ImageSpec(prompt="a ceramic teapot", seed=6, steps=2, sampler="DPM++ 2M Karras"))
    assert (spec.width, spec.height) == (32, 32)  # the tiny model's real size, once loaded
    img = (await be.generate([spec]))[0]
    assert (img.recipe.sampler, img.recipe.schedule) == ("DPM++ 2M", "Karras")
    as_folder = DiffusersBackend(settings, model=str(folder))
    same = (await as_folder.generate([as_folder.resolve(spec.model_copy(update={"model": None}))]))[0]
    assert np.array_equal(px(img.png), px(same.png))
    hires = (await be.generate([be.resolve(ImageSpec(prompt="a teapot", seed=1, steps=2, hires_scale=2))]))[0]
    assert Image.open(io.BytesIO(hires.png)).size == (64, 64)


def test_the_agents_tool_takes_a_sampler_by_its_a1111_name() -> None:
    from chatcanvas.tools.context import ToolContext
    from chatcanvas.tools.image_tools import GenerateImageArgs, build_tools, spec_from_args

    lim = Limits(max_side=1536, max_pixels=1024 * 1024)
    ctx = ToolContext(limits=lim, native_size=1024)
    assert "sampler" in build_tools(ctx)[0].args
    spec, _, err = spec_from_args(ctx, GenerateImageArgs(prompt="a teapot", sampler="DPM++ 2M Karras", aspect="wide"))
    assert err is None and spec is not None
    assert (spec.sampler, spec.schedule, spec.width, spec.height) == ("DPM++ 2M", "Karras", 1344, 768)
    spec, _, err = spec_from_args(ctx, GenerateImageArgs(prompt="a teapot", sampler="Restart"))
    assert spec is None and err is not None and "Unknown sampler 'Restart'" in err and "Euler a" in err
    dalle = ToolContext(limits=lim, family="dalle")
    spec, _, _ = spec_from_args(dalle, GenerateImageArgs(prompt="a teapot", sampler="Euler a"))
    assert spec is not None and spec.sampler is None
