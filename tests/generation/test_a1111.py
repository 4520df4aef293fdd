"""A1111 ``parameters`` text: read as A1111 writes it (both sampler spellings), written as it reads it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, PngImagePlugin

from chatcanvas.generation.metadata import (
    file_hash,
    model_matches,
    parse_parameters,
    recipe_from_png,
    recipe_to_parameters,
    request_from_png,
)
from chatcanvas.types import Recipe

# As AUTOMATIC1111 v1.10.1 writes it: the fields line in its order, quoted where a value holds a comma.
A1111_V110 = (
    "a ceramic teapot on a windowsill, (morning light:1.2), <lora:detail:0.6>\n"
    "Negative prompt: blurry, lowres, (watermark:1.3)\n"
    "Steps: 24, Sampler: Euler a, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    "Face restoration: CodeFormer, Size: 512x768, Model hash: 879db523c3, Model: dreamshaper_8, "
    "VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.45, "
    "Clip skip: 2, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: R-ESRGAN 4x+, "
    'Lora hashes: "detail: abc123def456, film: 0123456789ab", Version: v1.10.1'
)
# As v1.6 wrote it: the schedule inside the sampler's name, no Schedule type.
A1111_V16 = (
    "portrait of an old fisherman, detailed skin\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.6.0"
)


def png_with_text(text: str, size: tuple[int, int] = (64, 48)) -> bytes:
    im = Image.new("RGB", size, (240, 236, 228))
    d = ImageDraw.Draw(im)
    d.ellipse((12, 10, 44, 38), fill=(40, 90, 160))
    d.rectangle((40, 18, 58, 24), fill=(40, 90, 160))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    im.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def test_parse_reads_a1111_fields_and_quoted_values() -> None:
    p = parse_parameters(A1111_V110)
    assert p["prompt"] == "a ceramic teapot on a windowsill, (morning light:1.2), <lora:detail:0.6>"
    assert p["negative_prompt"] == "blurry, lowres, (watermark:1.3)"
    assert p["Sampler"] == "Euler a" and p["Schedule type"] == "Karras" and p["CFG scale"] == "6.5"
    assert p["Lora hashes"] == "detail: abc123def456, film: 0123456789ab"
    assert p["Hires upscaler"] == "R-ESRGAN 4x+" and p["Version"] == "v1.10.1"


def test_multiline_prompts_and_a_text_without_fields() -> None:
    text = "a teapot,\nsteam rising\nNegative prompt: blurry,\ncropped\nSteps: 20, Sampler: Heun, CFG scale: 7, Seed: 5"
    p = parse_parameters(text)
    assert p["prompt"] == "a teapot,\nsteam rising" and p["negative_prompt"] == "blurry,\ncropped"
    # fewer than three "Key: value" pairs on the last line: it is prompt, as A1111 reads it
    p = parse_parameters("a teapot\nstyle: watercolour")
    assert p["prompt"] == "a teapot\nstyle: watercolour" and "style" not in p


def test_from_png_honours_what_it_can_and_names_the_rest() -> None:
    req = request_from_png(png_with_text(A1111_V110))
    spec = req.to_spec()
    assert spec.prompt == "a ceramic teapot on a windowsill, (morning light:1.2), <lora:detail:0.6>"
    assert spec.negative_prompt == "blurry, lowres, (watermark:1.3)"
    assert (spec.sampler, spec.schedule) == ("Euler a", "Karras")
    assert (spec.steps, spec.guidance, spec.seed) == (24, 6.5, 3141592653)
    assert (spec.width, spec.height) == (512, 768)
    assert (spec.hires_scale, spec.hires_steps, spec.hires_denoise) == (1.5, 12, 0.45)
    assert spec.clip_skip == 2
    assert (req.model, req.model_hash) == ("dreamshaper_8", "879db523c3")
    skipped = req.not_honoured
    assert "Face restoration: CodeFormer" in skipped
    assert "Hires upscaler: R-ESRGAN 4x+" in skipped
    assert "VAE hash: 735e4c3a44" in skipped
    assert "VAE: vae-ft-mse-840000-ema-pruned.safetensors" in skipped
    assert not any(s.startswith(("Sampler", "Schedule", "Steps", "Seed", "Clip", "Version", "Lora")) for s in skipped)


def test_old_spelling_with_the_schedule_in_the_sampler_name() -> None:
    spec = request_from_png(png_with_text(A1111_V16)).to_spec()
    assert (spec.sampler, spec.schedule) == ("DPM++ 2M", "Karras")
    assert recipe_from_png(png_with_text(A1111_V16)).schedule == "Karras"


def test_samplers_and_schedules_we_lack_are_named() -> None:
    text = "a teapot\nSteps: 20, Sampler: DPM++ 3M SDE, Schedule type: Exponential, CFG scale: 5, Seed: 9, Size: 512x512"
    req = request_from_png(png_with_text(text))
    assert req.to_spec().sampler is None
    assert "Sampler: DPM++ 3M SDE" in req.not_honoured
    text = "a teapot\nSteps: 20, Sampler: Euler, Schedule type: Align Your Steps, CFG scale: 5, Seed: 9, Size: 512x512"
    req = request_from_png(png_with_text(text))
    assert (req.to_spec().sampler, req.to_spec().schedule) == ("Euler", None)
    assert req.not_honoured == ["Schedule type: Align Your Steps"]
    text = "a teapot\nSteps: 20, Sampler: DDIM, Schedule type: Karras, CFG scale: 5, Seed: 9, Size: 512x512"
    req = request_from_png(png_with_text(text))
    assert req.to_spec().sampler == "DDIM" and req.not_honoured[0].startswith("Schedule type: Karras")
    # "Automatic" in A1111 >= 1.9 means Karras for DPM++ 2M
    text = "a teapot\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Automatic, CFG scale: 5, Seed: 9, Size: 512x512"
    assert request_from_png(png_with_text(text)).to_spec().schedule == "Karras"


def test_denoising_strength_without_hires_or_init_image_is_named() -> None:
    text = "a teapot\nSteps: 20, Sampler: Euler, CFG scale: 5, Seed: 9, Size: 512x512, Denoising strength: 0.4"
    req = request_from_png(png_with_text(text))
    assert req.to_spec().hires_scale is None
    assert req.not_honoured == ["Denoising strength: 0.4 (no init image)"]


def test_written_parameters_read_back_in_a1111s_own_terms() -> None:
    r = Recipe(
        prompt="a teapot, <lora:detail:0.6>, steam: rising",
        negative_prompt="blurry, lowres",
        width=128,
        height=128,
        seed=7,
        steps=20,
        guidance=0.0,
        sampler="DPM++ 2M",
        schedule="Karras",
        model="dreamshaper_8",
        backend="local",
        style="studio, product",
        hires_scale=2.0,
        hires_steps=10,
        hires_denoise=0.55,
        hires_upscaler="Lanczos",
        first_pass_width=64,
        first_pass_height=64,
        lora_hashes="detail: abc123def456",
    )
    text = recipe_to_parameters(r)
    fields_line = text.splitlines()[-1]
    assert fields_line.startswith("Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 0, Seed: 7, Size: 64x64")
    assert "Hires upscale: 2, Hires steps: 10, Hires upscaler: Lanczos" in fields_line
    assert 'Style: "studio, product"' in fields_line and 'Lora hashes: "detail: abc123def456"' in fields_line
    p = parse_parameters(text)
    assert p["prompt"] == r.prompt and p["negative_prompt"] == r.negative_prompt
    assert (p["Denoising strength"], p["Style"]) == ("0.55", "studio, product")
    spec = request_from_png(png_with_text(text)).to_spec()
    assert (spec.width, spec.height, spec.hires_scale, spec.hires_steps, spec.hires_denoise) == (64, 64, 2, 10, 0.55)
    assert (spec.sampler, spec.schedule, spec.guidance) == ("DPM++ 2M", "Karras", 0)


def test_model_is_the_same_by_name_or_by_hash(tmp_path: Path) -> None:
    f = tmp_path / "dreamshaper_8.safetensors"
    f.write_bytes(b"not really weights, but hashed all the same")
    assert model_matches("dreamshaper_8", "", str(f))
    assert model_matches("DreamShaper_8.safetensors", "", str(f))
    renamed = tmp_path / "my-favourite.safetensors"
    renamed.write_bytes(f.read_bytes())
    assert model_matches("dreamshaper_8", file_hash(f)[:10], str(renamed))
    assert not model_matches("dreamshaper_8", "0000000000", str(renamed))
    assert model_matches("sd-turbo", "", "stabilityai/sd-turbo")
    assert not model_matches("", "", str(f))


@pytest.mark.parametrize(
    "bad", ["Steps: many, Sampler: Euler, CFG scale: 7, Seed: 1", "Steps: 20, Sampler: Euler, CFG scale: x, Seed: 1"]
)
def test_unreadable_numbers_are_named_not_fatal(bad: str) -> None:
    req = request_from_png(png_with_text("a teapot\n" + bad))
    assert req.to_spec().prompt == "a teapot"
    assert any(s.startswith(("Steps: many", "CFG scale: x")) for s in req.not_honoured)
