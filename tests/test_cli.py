"""The `chatcanvas` command as a user runs it: its argv, environment and exit codes, the tiny checkpoint,
offline; real processes where a process is the point."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from chatcanvas.generation.metadata import parameters_from_png
from tests.cli_runner import Ran, chatcanvas


def cli_env(tmp: Path, **env: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHATCANVAS_")}
    e.update({"HF_HUB_OFFLINE": "1", "CHATCANVAS_DATA_DIR": str(tmp / "data"), **env})
    return e


def run(tmp: Path, *args: str, **env: str) -> Ran:
    """``chatcanvas ARGS`` in this process (see tests/cli_runner.py)."""
    return chatcanvas(tmp, *args, env=cli_env(tmp, **env))


def run_process(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``chatcanvas ARGS`` as a separate process, the way a user starts it."""
    return subprocess.run(
        [sys.executable, "-m", "chatcanvas.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(tmp, **env),
        cwd=tmp,
        timeout=300,
    )


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_generate_twice_same_seed_identical_and_recipe_inside(tmp_path: Path, tiny_model_dir: Path) -> None:
    for name, runner in (("a.png", run_process), ("b.png", run)):  # a process of its own, then this one
        p = runner(
            tmp_path,
            "generate",
            "a red mug",
            "--model",
            str(tiny_model_dir),
            "-o",
            name,
            "--seed",
            "7",
            "--steps",
            "3",
        )
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == name
    params = parameters_from_png((tmp_path / "a.png").read_bytes())
    assert params["prompt"] == "a red mug" and params["Seed"] == "7"
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))


def test_from_png_makes_the_same_image_again(tmp_path: Path, tiny_model_dir: Path) -> None:
    p = run(
        tmp_path, "generate", "a blue cap", "--model", str(tiny_model_dir), "-o", "first.png", "--steps", "2"
    )
    assert p.returncode == 0, p.stderr
    p = run(tmp_path, "generate", "--from-png", "first.png", "-o", "again.png")
    assert p.returncode == 0, p.stderr
    assert np.array_equal(pixels(tmp_path / "first.png"), pixels(tmp_path / "again.png"))
    seed = parameters_from_png((tmp_path / "first.png").read_bytes())["Seed"]
    assert parameters_from_png((tmp_path / "again.png").read_bytes())["Seed"] == seed


def test_count_writes_numbered_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    p = run(
        tmp_path,
        "generate",
        "a tote",
        "--model",
        str(tiny_model_dir),
        "-o",
        "t.png",
        "--count",
        "2",
        "--seed",
        "1",
        "--steps",
        "2",
    )
    assert p.returncode == 0, p.stderr
    seeds = [parameters_from_png((tmp_path / f).read_bytes())["Seed"] for f in ("t-1.png", "t-2.png")]
    assert seeds == ["1", "2"]


def test_bad_requests_get_one_clear_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    p = run(tmp_path, "generate", "x" * 1500, "--model", str(tiny_model_dir))
    assert p.returncode == 1 and "1500 characters" in p.stderr and "Traceback" not in p.stderr
    p = run(tmp_path, "generate", "x", "--model", str(tiny_model_dir), "--size", "100000x100000")
    assert p.returncode == 1 and "Traceback" not in p.stderr and "width" in p.stderr
    (tmp_path / "notes.png").write_text("not an image")
    p = run(tmp_path, "generate", "x", "--model", str(tiny_model_dir), "--init-image", "notes.png")
    assert p.returncode == 1 and "isn't an image" in p.stderr
    p = run(tmp_path, "generate", "x", "--model", str(tmp_path / "missing"))
    assert p.returncode == 1 and "missing" in p.stderr and "CHATCANVAS_MODEL" in p.stderr


def test_image_to_image_from_the_command_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 30, 30)).save(buf, format="PNG")
    (tmp_path / "in.png").write_bytes(buf.getvalue())
    p = run(
        tmp_path,
        "generate",
        "a mug",
        "--model",
        str(tiny_model_dir),
        "--init-image",
        "in.png",
        "--strength",
        "0.5",
        "-o",
        "o.png",
        "--steps",
        "4",
    )
    assert p.returncode == 0, p.stderr
    params = parameters_from_png((tmp_path / "o.png").read_bytes())
    assert params["Denoising strength"] == "0.5"


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, chatcanvas.cli as c; c._parser(); "
        "print(sorted(m for m in ('torch','diffusers','langchain') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- samplers, CFG, hires fix, A1111 PNGs


def test_sampler_and_guidance_from_the_command_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    base = ("generate", "a blue teapot on a shelf", "--model", str(tiny_model_dir), "--seed", "7", "--steps", "3")
    for out, extra in (
        ("default.png", ()),
        ("euler-a.png", ("--sampler", "Euler a")),
        ("karras-cfg0.png", ("--sampler", "DPM++ 2M Karras", "--guidance", "0")),
    ):
        p = run(tmp_path, *base, "-o", out, *extra)
        assert p.returncode == 0, p.stderr
    euler_a = parameters_from_png((tmp_path / "euler-a.png").read_bytes())
    assert euler_a["Sampler"] == "Euler a"
    assert not np.array_equal(pixels(tmp_path / "euler-a.png"), pixels(tmp_path / "default.png"))
    karras = parameters_from_png((tmp_path / "karras-cfg0.png").read_bytes())
    assert (karras["Sampler"], karras["Schedule type"], karras["CFG scale"]) == ("DPM++ 2M", "Karras", "0")
    p = run(tmp_path, *base, "--sampler", "Restart")
    assert p.returncode == 1 and "Unknown sampler 'Restart'" in p.stderr and "Euler a" in p.stderr
    assert "Traceback" not in p.stderr


def test_hires_fix_from_the_command_line_and_again_from_its_png(tmp_path: Path, tiny_model_dir: Path) -> None:
    p = run(
        tmp_path,
        "generate",
        "a blue teapot",
        "--model",
        str(tiny_model_dir),
        "--size",
        "64x64",
        "--hires",
        "2",
        "--sampler",
        "Euler a",
        "--seed",
        "3",
        "--steps",
        "3",
        "-o",
        "hires.png",
    )
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "hires.png").size == (128, 128)
    params = parameters_from_png((tmp_path / "hires.png").read_bytes())
    assert (params["Size"], params["Hires upscale"]) == ("64x64", "2")
    p = run(tmp_path, "generate", "--from-png", "hires.png", "-o", "again.png")
    assert p.returncode == 0, p.stderr
    assert "Not honoured" not in p.stderr
    assert np.array_equal(pixels(tmp_path / "hires.png"), pixels(tmp_path / "again.png"))


def test_from_png_of_an_a1111_image(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tests.generation.test_a1111 import png_with_text

    text = (
        "a blue teapot on a shelf, (soft light:1.2) <lora:detail:0.6>\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 3, Sampler: Euler a, Schedule type: Karras, CFG scale: 6.5, Seed: 424242, "
        "Face restoration: CodeFormer, Size: 32x32, Model hash: 879db523c3, Model: dreamshaper_8, "
        "VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.5, "
        "Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+, Lora hashes: \"detail: abc123def456\", Version: v1.10.1"
    )
    (tmp_path / "a1111.png").write_bytes(png_with_text(text))
    p = run(tmp_path, "generate", "--from-png", "a1111.png", "-o", "ours.png", CHATCANVAS_MODEL=str(tiny_model_dir))
    assert p.returncode == 0, p.stderr
    [line] = [x for x in p.stderr.splitlines() if x.startswith("Not honoured")]
    for name in ("Face restoration: CodeFormer", "Hires upscaler: R-ESRGAN 4x+", "VAE hash: 735e4c3a44"):
        assert name in line
    assert "Model: dreamshaper_8" in line and "Sampler" not in line and "Seed" not in line
    assert "LoRA <lora:detail:0.6>" in line  # no such LoRA here: named, and the rest is made
    assert Image.open(tmp_path / "ours.png").size == (64, 64)
    params = parameters_from_png((tmp_path / "ours.png").read_bytes())
    assert (params["Sampler"], params["Schedule type"]) == ("Euler a", "Karras")
    assert (params["Seed"], params["CFG scale"], params["Size"], params["Hires upscale"]) == ("424242", "6.5", "32x32", "2")
    assert params["Denoising strength"] == "0.5" and params["negative_prompt"] == "blurry, lowres"
    assert params["prompt"] == "a blue teapot on a shelf, (soft light:1.2)"
