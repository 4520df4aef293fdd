"""Reading the recipe ComfyUI saves in a PNG, as the fields of A1111's infotext.

ComfyUI's ``SaveImage`` writes two text chunks: ``prompt``, the graph it ran in its API format
(``{"3": {"class_type": "KSampler", "inputs": {"seed": 8, "positive": ["6", 0], …}}, …}``: an input is
a value or a link ``[node id, output]``), and ``workflow``, the editor's layout. This walks ``prompt``
from the sampler back to its prompts, size, checkpoint and LoRAs, and hands
:func:`chatcanvas.generation.metadata.request_from_png` the same keys A1111 writes (``Steps``,
``Sampler``, ``Schedule type``, ``CFG scale``, ``Seed``, ``Size``, ``Model``; LoRAs as
``<lora:name:weight>`` in the prompt; a latent upscale and second sampler as the hires fix), so the
same code honours them and names what it cannot (``ComfyUI nodes: ControlNetApply, …``).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

__all__ = ["parameters_from_comfyui"]

Graph = dict[str, dict[str, Any]]

# ComfyUI's sampler_name and scheduler -> A1111's Sampler and Schedule type
SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2s_ancestral": "DPM++ 2S a",
    "dpmpp_3m_sde": "DPM++ 3M SDE",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "uni_pc_bh2": "UniPC",
    "lcm": "LCM",
}
SCHEDULES = {
    "normal": "Uniform",
    "karras": "Karras",
    "exponential": "Exponential",
    "sgm_uniform": "SGM Uniform",
    "simple": "Simple",
    "ddim_uniform": "DDIM",
    "beta": "Beta",
}
_SAMPLER_NODES = ("KSampler", "KSamplerAdvanced")
_TEXT_NODES = ("CLIPTextEncode", "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner")
_CHECKPOINTS = ("CheckpointLoaderSimple", "CheckpointLoader", "unCLIPCheckpointLoader", "ImageOnlyCheckpointLoader")
_LORAS = ("LoraLoader", "LoraLoaderModelOnly")
# nodes that change nothing this reading misses (loading, decoding, saving, passing values on)
_PLAIN = frozenset(
    (*_SAMPLER_NODES, *_TEXT_NODES, *_CHECKPOINTS, *_LORAS, "EmptyLatentImage", "EmptySD3LatentImage",
     "VAEDecode", "VAELoader", "SaveImage", "PreviewImage", "CLIPSetLastLayer", "LatentUpscaleBy",
     "LatentUpscale", "PrimitiveNode", "Note", "Reroute")
)  # fmt: skip


def _is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str | int) and isinstance(v[1], int)


def _node(graph: Graph, v: Any) -> dict[str, Any] | None:
    return graph.get(str(v[0])) if _is_link(v) else None


def _text(graph: Graph, v: Any) -> str | None:
    """The text a conditioning input was encoded from (its text encoder found through ControlNet and
    similar nodes; the text itself perhaps fed by a string node)."""
    encoder = _encoder(graph, v)
    if encoder is None:
        return None
    inputs = encoder.get("inputs", {})
    value = inputs.get("text", inputs.get("text_g"))
    for _ in range(8):  # a primitive or string node in between
        if isinstance(value, str):
            return value
        node = _node(graph, value)
        if node is None:
            return None
        inputs = node.get("inputs", {})
        value = next((inputs[k] for k in ("string", "value", "text") if k in inputs), None)
    return None


def _encoder(graph: Graph, v: Any) -> dict[str, Any] | None:
    """The text-encoder node a conditioning input comes from (through ControlNet and similar nodes)."""
    node = _node(graph, v)
    for _ in range(8):
        if node is None or node.get("class_type") in _TEXT_NODES:
            return node
        inputs = node.get("inputs", {})
        node = _node(graph, inputs.get("conditioning", inputs.get("conditioning_to")))
    return None


def _file_stem(name: str) -> str:
    return (PureWindowsPath(name) if "\\" in name else PurePosixPath(name)).stem


def _model_chain(graph: Graph, v: Any) -> tuple[str, list[str]]:
    """(checkpoint name, LoRA tags) up the ``model`` links from a sampler."""
    loras: list[str] = []
    seen: set[int] = set()
    node = _node(graph, v)
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        kind, inputs = node.get("class_type"), node.get("inputs", {})
        if kind in _CHECKPOINTS:
            return _file_stem(str(inputs.get("ckpt_name", ""))), loras[::-1]
        if kind in _LORAS:
            weight = inputs.get("strength_model", 1.0)
            loras.append(f"<lora:{_file_stem(str(inputs.get('lora_name', '')))}:{float(weight):g}>")
        node = _node(graph, inputs.get("model"))
    return "", loras[::-1]


def _clip_skip(graph: Graph, v: Any) -> int | None:
    """A ``CLIPSetLastLayer`` between the checkpoint and the text encoder: -2 is A1111's "Clip skip: 2"."""
    node = _node(graph, v)
    for _ in range(8):
        if node is None:
            return None
        inputs = node.get("inputs", {})
        if node.get("class_type") == "CLIPSetLastLayer":
            layer = inputs.get("stop_at_clip_layer")
            return -int(layer) if isinstance(layer, int) and layer < 0 else None
        node = _node(graph, inputs.get("clip"))
    return None


def parameters_from_comfyui(prompt_chunk: str) -> dict[str, str]:
    """A1111-style fields from ComfyUI's ``prompt`` chunk; {} when it holds no sampler we can read."""
    try:
        graph = json.loads(prompt_chunk)
    except (json.JSONDecodeError, TypeError):
        return {}
    if not isinstance(graph, dict):
        return {}
    graph = {str(k): n for k, n in graph.items() if isinstance(n, dict)}
    samplers = {k: n for k, n in graph.items() if n.get("class_type") in _SAMPLER_NODES}
    first = None
    for n in samplers.values():  # the pass that starts from an empty latent
        latent = _node(graph, n.get("inputs", {}).get("latent_image"))
        if latent is not None and str(latent.get("class_type", "")).startswith("Empty"):
            first = n
            break
    if first is None and samplers:
        first = next(iter(samplers.values()))
    if first is None:
        return {}
    inputs = first.get("inputs", {})
    out: dict[str, str] = {}
    positive = _text(graph, inputs.get("positive"))
    if positive is None:
        return {}
    model, loras = _model_chain(graph, inputs.get("model"))
    out["prompt"] = " ".join([positive.strip(), *loras]).strip()
    negative = _text(graph, inputs.get("negative"))
    if negative:
        out["negative_prompt"] = negative.strip()
    seed = inputs.get("seed", inputs.get("noise_seed"))
    for key, value in (("Steps", inputs.get("steps")), ("CFG scale", inputs.get("cfg")), ("Seed", seed)):
        if isinstance(value, int | float):
            out[key] = f"{value:g}" if isinstance(value, float) else str(value)
    sampler = str(inputs.get("sampler_name", ""))
    if sampler:
        out["Sampler"] = SAMPLERS.get(sampler, sampler)
    scheduler = str(inputs.get("scheduler", ""))
    if scheduler:
        out["Schedule type"] = SCHEDULES.get(scheduler, scheduler)
    latent = _node(graph, inputs.get("latent_image")) or {}
    li = latent.get("inputs", {})
    if str(latent.get("class_type", "")).startswith("Empty"):
        if isinstance(li.get("width"), int) and isinstance(li.get("height"), int):
            out["Size"] = f"{li['width']}x{li['height']}"
        if isinstance(li.get("batch_size"), int) and li["batch_size"] > 1:
            out["Batch size"] = str(li["batch_size"])
    elif latent:
        out["Denoising strength"] = f"{inputs.get('denoise', 1.0):g}"  # image-to-image: no init image here
    if model:
        out["Model"] = model
    encoder = _encoder(graph, inputs.get("positive"))
    skip = _clip_skip(graph, encoder.get("inputs", {}).get("clip")) if encoder else None
    if skip and skip > 1:
        out["Clip skip"] = str(skip)
    _second_pass(graph, samplers, first, out)
    others = sorted({str(n.get("class_type")) for n in graph.values()} - _PLAIN)
    if others:
        out["ComfyUI nodes"] = ", ".join(others)
    return out


def _second_pass(graph: Graph, samplers: dict[str, dict[str, Any]], first: dict[str, Any], out: dict[str, str]) -> None:
    """A latent upscale of the first pass sampled again: A1111's hires fix (upscale, steps, denoising)."""
    first_id = next(k for k, n in samplers.items() if n is first)
    for n in samplers.values():
        if n is first:
            continue
        up = _node(graph, n.get("inputs", {}).get("latent_image")) or {}
        ui = up.get("inputs", {})
        if up.get("class_type") == "LatentUpscaleBy" and _is_link(ui.get("samples")) and str(ui["samples"][0]) == first_id:
            out["Hires upscale"] = f"{float(ui.get('scale_by', 1.5)):g}"
            steps, denoise = n.get("inputs", {}).get("steps"), n.get("inputs", {}).get("denoise")
            if isinstance(steps, int):
                out["Hires steps"] = str(steps)
            if isinstance(denoise, int | float):
                out["Denoising strength"] = f"{denoise:g}"
            return
    if len(samplers) > 1:
        out["Sampler passes"] = str(len(samplers))
