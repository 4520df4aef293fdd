"""Upscaling that enlarges: the command as a user runs it, the tiling, the output-size limit."""

from __future__ import annotations

import io
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chatcanvas.errors import SpecError
from chatcanvas.generation.metadata import recipe_from_png
from chatcanvas.generation.upscale import (
    MAX_REFINE_TILES,
    check_upscale_size,
    enlarge,
    model_upscale,
    tile_layout,
    upscale_spec,
)
from tests.cli_runner import Ran, chatcanvas


def run(tmp: Path, model: Path, *args: str, **env: str) -> Ran:
    """``chatcanvas ARGS`` with this model and 2 steps (in this process: tests/cli_runner.py)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHATCANVAS_")}
    e.update(
        HF_HUB_OFFLINE="1",
        CHATCANVAS_DATA_DIR=str(tmp / "data"),
        CHATCANVAS_MODEL=str(model),
        CHATCANVAS_DEFAULT_STEPS="2",
        **env,
    )
    return chatcanvas(tmp, *args, env=e)


def mug_picture(path: Path, size: tuple[int, int] = (40, 32)) -> Path:
    im = Image.new("RGB", size, (245, 245, 240))
    d = ImageDraw.Draw(im)
    w, h = size
    d.rectangle((w // 4, h // 4, w * 3 // 5, h * 7 // 8), fill=(190, 30, 40))  # the mug
    d.arc((w * 3 // 5 - 4, h // 3, w * 3 // 5 + 6, h * 2 // 3), 270, 90, fill=(190, 30, 40), width=2)
    im.save(path)
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_upscale_2x_doubles_the_size_and_records_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = mug_picture(tmp_path / "mug.png")
    p = run(tmp_path, tiny_model_dir, "upscale", str(src), "--scale", "2", "-o", "big.png")
    assert p.returncode == 0, p.stderr
    big = Image.open(tmp_path / "big.png")
    assert big.size == (80, 64)
    r = recipe_from_png((tmp_path / "big.png").read_bytes())
    assert r.upscale_by == 2 and r.upscaler == "Lanczos" and r.strength == 0.2  # refined by default
    assert (r.width, r.height) == (80, 64)


def test_upscale_without_the_refining_pass_keeps_the_picture(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = mug_picture(tmp_path / "mug.png")
    p = run(tmp_path, tiny_model_dir, "upscale", str(src), "--scale", "4", "--denoise", "0", "-o", "big.png")
    assert p.returncode == 0, p.stderr
    big = Image.open(tmp_path / "big.png").convert("RGB")
    assert big.size == (160, 128)
    back = np.asarray(big.resize((40, 32), Image.Resampling.LANCZOS))
    assert psnr(back, np.asarray(Image.open(src).convert("RGB"))) > 25
    assert recipe_from_png((tmp_path / "big.png").read_bytes()).strength is None


def test_upscale_over_the_output_limit_is_refused_naming_the_setting(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = mug_picture(tmp_path / "mug.png")
    p = run(tmp_path, tiny_model_dir, "upscale", str(src), "--scale", "4", CHATCANVAS_MAX_UPSCALE_PIXELS="10000")
    assert p.returncode == 1
    assert "CHATCANVAS_MAX_UPSCALE_PIXELS" in p.stderr and "160x128" in p.stderr
    assert sorted(f.name for f in tmp_path.glob("*.png")) == ["mug.png"]  # nothing written


def test_limits_and_the_spec(settings) -> None:  # type: ignore[no-untyped-def]
    assert check_upscale_size(1024, 1024, 4, settings) == (4096, 4096)  # the default allows 4x of 1024
    with pytest.raises(SpecError, match="CHATCANVAS_MAX_UPSCALE_PIXELS"):
        check_upscale_size(2048, 2048, 4, settings)
    with pytest.raises(SpecError):
        check_upscale_size(64, 64, 3, settings)
    spec = upscale_spec("img123", (512, 512), 2, settings)
    assert spec.upscale_by == 2 and spec.init_image == "img123" and spec.backend == "local"


def test_tiles_cover_a_4x_upscale_of_1024_with_bounded_tiles() -> None:
    tile, overlap, corners = tile_layout(4096, 4096, 512)
    assert tile == 512 and len(corners) <= MAX_REFINE_TILES
    covered = np.zeros((4096, 4096), bool)
    for x, y in corners:
        covered[y : y + tile, x : x + tile] = True
    assert covered.all()
    tile, _, corners = tile_layout(4096, 4096, 64)  # a small model: bigger tiles, not thousands
    assert len(corners) <= MAX_REFINE_TILES and tile % 8 == 0


async def test_refining_tiles_runs_through_the_engine_backend(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from chatcanvas.generation.base import StepInfo
    from chatcanvas.generation.diffusers_backend import DiffusersBackend
    from chatcanvas.store import Store

    be = DiffusersBackend(settings)
    store = Store(settings.data_dir)
    ref = store.put_upload(mug_picture(tmp_path / "mug.png", (48, 40)).read_bytes())
    store.close()
    spec = be.resolve(upscale_spec(ref, (48, 40), 2, settings, strength=0.3, seed=4))
    assert spec.width == 48 and spec.height == 40
    seen: list[StepInfo] = []
    a = (await be.generate([spec], seen.append))[0]
    b = (await be.generate([spec]))[0]
    assert Image.open(io.BytesIO(a.png)).size == (96, 80)
    assert seen and seen[-1].step == seen[-1].total > 1  # several tiles, progress per tile
    pixels = [np.asarray(Image.open(io.BytesIO(i.png)).convert("RGB")) for i in (a, b)]
    assert np.array_equal(*pixels)  # same seed, same pixels
    assert a.recipe == b.recipe


# ---------------------------------------------------------------- an ESRGAN-family model (spandrel's interface)


class _Nearest2x:
    """Stands in for a spandrel ImageModelDescriptor: scale 2, a pixel-wise curve, then nearest 2x."""

    scale = 2

    def to(self, device: object) -> _Nearest2x:
        return self

    def eval(self) -> _Nearest2x:
        return self

    def __call__(self, x):  # type: ignore[no-untyped-def]
        import torch

        return torch.nn.functional.interpolate(x**0.8, scale_factor=2, mode="nearest")


def test_model_tiles_give_the_whole_image_result_and_4x_runs_a_2x_model_twice() -> None:
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8))
    model = _Nearest2x()
    whole = model_upscale(img, model, tile=1000)
    tiled = model_upscale(img, model, tile=32, pad=4)
    assert np.array_equal(np.asarray(whole), np.asarray(tiled))
    assert enlarge(img, 4, model).size == (360, 280)


def test_configured_upscaler_is_read_with_spandrel(
    tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from chatcanvas.generation import upscale

    weights = tmp_path / "RealESRGAN_x2.pth"
    weights.write_bytes(b"not read by the stand-in")
    loaded: list[str] = []

    class Loader:
        def __init__(self, device: str = "cpu") -> None:
            pass

        def load_from_file(self, path: str) -> _Nearest2x:
            loaded.append(path)
            return _Nearest2x()

    monkeypatch.setitem(sys.modules, "spandrel", types.SimpleNamespace(ModelLoader=Loader))
    model = upscale.load_upscaler(weights, "cpu")
    assert loaded == [str(weights)] and model.scale == 2
    with pytest.raises(SpecError, match="no such file"):
        upscale.load_upscaler(tmp_path / "missing.pth", "cpu")
    monkeypatch.setitem(sys.modules, "spandrel", None)
    with pytest.raises(SpecError, match="spandrel"):
        upscale.load_upscaler(weights, "cpu")
