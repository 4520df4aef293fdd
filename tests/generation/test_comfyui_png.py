"""PNGs saved by ComfyUI: its ``prompt`` chunk (the graph in its API format) read as a recipe.

The graphs are written the way ComfyUI's SaveImage writes them (``json.dumps`` of the API graph, with
the ``_meta`` titles newer versions add, and the editor's ``workflow`` beside it)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, PngImagePlugin

from chatcanvas.generation.metadata import parameters_from_png, request_from_png
from tests.cli_runner import chatcanvas

# ComfyUI's default text-to-image graph, as its API export writes it
DEFAULT: dict[str, Any] = {
    "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                     "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
    "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple",
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
                     "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage",
          "_meta": {"title": "Save Image"}},
}  # fmt: skip

# a LoRA, clip skip 2, a latent upscale with a second pass (A1111's hires fix) and a ControlNet
HIRES: dict[str, Any] = {
    "10": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "SD1.5\\dreamshaper_8.safetensors"}},
    "11": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail\\add_detail.safetensors", "strength_model": 0.6,
                                                  "strength_clip": 0.6, "model": ["10", 0], "clip": ["10", 1]}},
    "12": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["11", 1]}},
    "13": {"class_type": "CLIPTextEncode", "inputs": {"text": "a copper kettle on a stove, steam", "clip": ["12", 0]}},
    "14": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["12", 0]}},
    "15": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 2}},
    "16": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 24, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                                                "scheduler": "karras", "denoise": 1.0, "model": ["11", 0],
                                                "positive": ["21", 0], "negative": ["14", 0], "latent_image": ["15", 0]}},
    "17": {"class_type": "LatentUpscaleBy", "inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5,
                                                       "samples": ["16", 0]}},
    "18": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 12, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                                                "scheduler": "karras", "denoise": 0.45, "model": ["11", 0],
                                                "positive": ["21", 0], "negative": ["14", 0], "latent_image": ["17", 0]}},
    "19": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control_v11p_sd15_canny.pth"}},
    "20": {"class_type": "LoadImage", "inputs": {"image": "kettle-edges.png"}},
    "21": {"class_type": "ControlNetApply", "inputs": {"conditioning": ["13", 0], "control_net": ["19", 0],
                                                       "image": ["20", 0], "strength": 0.8}},
    "22": {"class_type": "VAEDecode", "inputs": {"samples": ["18", 0], "vae": ["10", 2]}},
    "23": {"class_type": "SaveImage", "inputs": {"filename_prefix": "hires", "images": ["22", 0]}},
}  # fmt: skip


def comfy_png(graph: dict[str, Any], size: tuple[int, int] = (64, 64)) -> bytes:
    im = Image.new("RGB", size, (30, 34, 60))
    ImageDraw.Draw(im).polygon([(20, 50), (32, 8), (44, 50)], fill=(150, 90, 200))
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(graph))
    info.add_text("workflow", json.dumps({"last_node_id": 9, "nodes": [], "links": [], "version": 0.4}))
    buf = io.BytesIO()
    im.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def test_the_default_graph_is_read_whole() -> None:
    req = request_from_png(comfy_png(DEFAULT))
    spec = req.to_spec()
    assert spec.prompt == "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"
    assert spec.negative_prompt == "text, watermark"
    assert (spec.steps, spec.guidance, spec.seed) == (20, 8.0, 156680208700286 % 2**32)
    assert (spec.sampler, spec.schedule) == ("Euler", None)  # "normal": the scheduler's own spacing
    assert (spec.width, spec.height) == (512, 512)
    assert req.model == "v1-5-pruned-emaonly"
    # ComfyUI's seeds go to 2^64, this backend's to 2^32: said, and the same seed every time
    assert req.not_honoured == [f"Seed: 156680208700286 (over {2**32 - 1}: {156680208700286 % 2**32} used)"]


def test_lora_clip_skip_and_a_second_pass_as_a1111_would_write_them() -> None:
    p = parameters_from_png(comfy_png(HIRES))
    assert p["prompt"] == "a copper kettle on a stove, steam <lora:add_detail:0.6>"  # through the ControlNet node
    req = request_from_png(comfy_png(HIRES))
    spec = req.to_spec()
    assert (spec.sampler, spec.schedule, spec.steps, spec.guidance, spec.seed) == ("DPM++ 2M", "Karras", 24, 6.5, 42)
    assert (spec.width, spec.height, spec.count) == (512, 768, 2)
    assert (spec.hires_scale, spec.hires_steps, spec.hires_denoise) == (1.5, 12, 0.45)
    assert spec.clip_skip == 2 and req.model == "dreamshaper_8"
    assert req.not_honoured == ["ComfyUI nodes: ControlNetApply, ControlNetLoader, LoadImage"]


def test_samplers_without_an_a1111_twin_and_image_to_image_are_named() -> None:
    graph = json.loads(json.dumps(DEFAULT))
    graph["3"]["inputs"].update(sampler_name="euler_cfg_pp", scheduler="beta", denoise=0.6, latent_image=["30", 0])
    graph["30"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["31", 0], "vae": ["4", 2]}}
    graph["31"] = {"class_type": "LoadImage", "inputs": {"image": "sofa.png"}}
    req = request_from_png(comfy_png(graph))
    assert "Sampler: euler_cfg_pp" in req.not_honoured and "Schedule type: Beta" in req.not_honoured
    assert "Denoising strength: 0.6 (no init image)" in req.not_honoured
    assert "ComfyUI nodes: LoadImage, VAEEncode" in req.not_honoured


def test_generate_from_a_comfyui_png(tmp_path: Path, tiny_model_dir: Path) -> None:
    graph = json.loads(json.dumps(DEFAULT))
    graph["3"]["inputs"].update(steps=3, seed=777, sampler_name="dpmpp_2m", scheduler="karras")
    graph["5"]["inputs"].update(width=32, height=48)
    (tmp_path / "comfy.png").write_bytes(comfy_png(graph))
    ran = chatcanvas(tmp_path, "generate", "--from-png", "comfy.png", "-o", "ours.png",
                     env={"CHATCANVAS_MODEL": str(tiny_model_dir), "HF_HUB_OFFLINE": "1",
                          "CHATCANVAS_DATA_DIR": str(tmp_path / "data")})  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "Model: v1-5-pruned-emaonly" in ran.stderr  # another checkpoint than the one here: said
    params = parameters_from_png((tmp_path / "ours.png").read_bytes())
    assert (params["Sampler"], params["Schedule type"], params["Seed"], params["Size"]) == ("DPM++ 2M", "Karras", "777", "32x48")
    assert params["prompt"].startswith("beautiful scenery nature glass bottle")


def test_a_prompt_fed_by_a_string_node() -> None:
    graph = json.loads(json.dumps(DEFAULT))
    graph["6"]["inputs"]["text"] = ["40", 0]
    graph["40"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "a glass teapot, morning light"}}
    assert parameters_from_png(comfy_png(graph))["prompt"] == "a glass teapot, morning light"
