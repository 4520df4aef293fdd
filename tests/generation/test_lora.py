"""LoRA files in the kohya/AUTOMATIC1111 format, written here for the tiny UNet, used from the prompt."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.errors import SpecError
from chatcanvas.generation.diffusers_backend import DiffusersBackend
from chatcanvas.generation.lora import check_loras, parse_loras
from chatcanvas.generation.metadata import recipe_from_png
from chatcanvas.types import ImageSpec, UserRef


def write_kohya_lora(model_dir: Path, out: Path, seed: int, scale: float = 0.5) -> Path:
    """A rank-4 LoRA over every attention projection of the UNet and the text encoder, kohya keys."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    g = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, model in (
        ("lora_unet_", UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")),
        ("lora_te_", CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder")),
    ):
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and ("attn" in name):
                key = prefix + name.replace(".", "_")
                tensors[f"{key}.lora_down.weight"] = torch.randn(4, mod.in_features, generator=g) * scale
                tensors[f"{key}.lora_up.weight"] = torch.randn(mod.out_features, 4, generator=g) * scale
                tensors[f"{key}.alpha"] = torch.tensor(4.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"ss_network_module": "networks.lora"})
    return out


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("loras")
    write_kohya_lora(tiny_model_dir, root / "detail.safetensors", seed=1)
    write_kohya_lora(tiny_model_dir, root / "styles" / "Watercolor Wash.safetensors", seed=2)
    return root


@pytest.fixture
def lora_settings(settings: Settings, lora_dir: Path) -> Settings:
    return settings.model_copy(update={"lora_dir": lora_dir})


@pytest.fixture
def backend(lora_settings: Settings) -> DiffusersBackend:
    return DiffusersBackend(lora_settings)


def px(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


async def draw(backend: DiffusersBackend, prompt: str, seed: int = 11) -> tuple[np.ndarray, object]:
    img = (await backend.generate([backend.resolve(ImageSpec(prompt=prompt, seed=seed, steps=3))]))[0]
    return px(img.png), img


def addnet_hash(path: Path) -> str:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + n :]).hexdigest()[:12]


async def test_lora_tag_changes_the_picture_and_the_recipe_keeps_it(
    backend: DiffusersBackend, lora_dir: Path
) -> None:
    plain, _ = await draw(backend, "a red mug on a table")
    with_lora, img = await draw(backend, "a red mug on a table <lora:detail:1>")
    assert np.abs(with_lora - plain).mean() > 2
    assert img.recipe.prompt == "a red mug on a table <lora:detail:1>"  # as A1111: the tag stays
    assert img.recipe.lora_hashes == f"detail: {addnet_hash(lora_dir / 'detail.safetensors')}"
    assert recipe_from_png(img.png).lora_hashes == img.recipe.lora_hashes


async def test_weight_zero_is_the_plain_prompt_and_nothing_leaks_into_the_next_request(
    backend: DiffusersBackend,
) -> None:
    plain, _ = await draw(backend, "a red mug on a table")
    zero, _ = await draw(backend, "a red mug on a table <lora:detail:0>")
    assert np.array_equal(zero, plain)
    await draw(backend, "a red mug on a table <lora:detail:1.2>")
    after, _ = await draw(backend, "a red mug on a table")
    assert np.array_equal(after, plain)


async def test_weights_and_two_loras_at_once(backend: DiffusersBackend) -> None:
    one, _ = await draw(backend, "a tote bag <lora:detail:1>")
    half, _ = await draw(backend, "a tote bag <lora:detail:0.5>")
    both, img = await draw(backend, "a tote bag <lora:detail:1> <lora:Watercolor Wash:0.8>")
    again, _ = await draw(backend, "a tote bag <lora:detail:1>")
    assert not np.array_equal(one, half)
    assert not np.array_equal(one, both)
    assert np.array_equal(one, again)  # the second LoRA is off again
    assert img.recipe.lora_hashes is not None and img.recipe.lora_hashes.count(":") == 2


def test_batches_hold_one_lora_set(backend: DiffusersBackend) -> None:
    key = lambda p: backend.batch_key(backend.resolve(ImageSpec(prompt=p, seed=1)))  # noqa: E731
    assert key("a mug <lora:detail:1>") == key("a cap <lora:detail:1>")
    assert key("a mug <lora:detail:1>") != key("a mug <lora:detail:0.7>")
    assert key("a mug <lora:detail:1>") != key("a mug")
    assert key("a mug <lora:detail:0>") == key("a mug")


def test_the_encoder_does_not_read_the_tag(backend: DiffusersBackend) -> None:
    text, tags = parse_loras("sneaker, <lora:detail:0.6> studio light, <lora:detail:0.2>")
    assert text == "sneaker, studio light"
    assert [(t.name, round(t.weight, 3)) for t in tags] == [("detail", 0.8)]
    assert backend.count_tokens("abc <lora:detail:1>") == backend.count_tokens("abc")


def test_a_missing_lora_is_refused_by_name(lora_settings: Settings, settings: Settings) -> None:
    check_loras("a mug <lora:detail:1> <lora:Watercolor Wash:1>", lora_settings)  # both exist
    with pytest.raises(SpecError) as err:
        check_loras("a mug <lora:pixelart:0.8>", lora_settings)
    assert "pixelart" in str(err.value) and "detail" in str(err.value)  # and what there is
    with pytest.raises(SpecError, match="CHATCANVAS_LORA_DIR"):
        check_loras("a mug <lora:detail:1>", settings)  # no folder set
    with pytest.raises(SpecError, match="weight"):
        check_loras("a mug <lora:detail:strong>", lora_settings)



async def test_the_policy_refuses_a_missing_lora_before_queueing(lora_settings: Settings) -> None:
    from chatcanvas.app import build_app
    from chatcanvas.types import Place, Refused
    from tests.conftest import outcome

    ctx = await build_app(lora_settings, start=False)
    ctx.engine._accepting = True
    try:
        who, where = UserRef(platform="web", user="u1"), Place(platform="web", channel="c")
        ev = await outcome(ctx.assistant.run_specs([ImageSpec(prompt="a mug <lora:pixelart:1>")], who, where))
        assert isinstance(ev, Refused) and ev.rule == "lora" and "pixelart" in ev.reason
        assert ctx.engine.jobs() == []
    finally:
        await ctx.aclose()


async def test_a_lora_missing_at_run_time_fails_the_job_with_its_name(backend: DiffusersBackend) -> None:
    with pytest.raises(SpecError, match="gone"):
        await draw(backend, "a mug <lora:gone:1>")
    plain, _ = await draw(backend, "a mug")  # the backend is still fine
    assert plain.shape == (32, 32, 3)


async def test_diffusers_format_folder_gives_the_same_pixels(
    backend: DiffusersBackend, lora_settings: Settings, lora_dir: Path, tmp_path: Path
) -> None:
    """The same LoRA saved in diffusers' own format (a folder) draws what the kohya file draws."""
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    kohya, _ = await draw(backend, "a cap <lora:detail:1>")
    pipe = StableDiffusionPipeline.from_pretrained(str(backend.ref), safety_checker=None)
    pipe.load_lora_weights(load_file(str(lora_dir / "detail.safetensors")), adapter_name="d")
    folder = tmp_path / "loras2" / "detail-diffusers"
    StableDiffusionPipeline.save_lora_weights(
        folder,
        unet_lora_layers=get_peft_model_state_dict(pipe.unet, adapter_name="d"),
        text_encoder_lora_layers=get_peft_model_state_dict(pipe.text_encoder, adapter_name="d"),
    )
    other = DiffusersBackend(lora_settings.model_copy(update={"lora_dir": folder.parent}))
    diffusers_fmt, _ = await draw(other, "a cap <lora:detail-diffusers:1>")
    assert np.abs(diffusers_fmt - kohya).max() <= 1


def test_cli_lists_the_loras(tmp_path: Path, lora_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCANVAS_")}
    env.update(CHATCANVAS_DATA_DIR=str(tmp_path / "data"), CHATCANVAS_LORA_DIR=str(lora_dir))
    p = subprocess.run(
        [sys.executable, "-m", "chatcanvas.cli", "loras"], capture_output=True, text=True, env=env, timeout=120
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["detail", "Watercolor Wash"]
    assert "kohya" in lines[0] and addnet_hash(lora_dir / "detail.safetensors") in lines[0]
