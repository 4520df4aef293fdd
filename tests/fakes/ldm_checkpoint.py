"""Save a diffusers Stable Diffusion 1.x folder as one file in the original (LDM) layout.

That is the layout of the ``.safetensors`` checkpoints A1111 users download: the UNet under
``model.diffusion_model.`` (``input_blocks`` / ``middle_block`` / ``output_blocks``), the VAE under
``first_stage_model.`` (``encoder.down.N.block.M``, 1x1-conv attention), CLIP under
``cond_stage_model.transformer.``. diffusers has no writer for it, so the key mapping is written
out here, the inverse of what ``from_single_file`` reads; the tests check that it loads back to the
same weights.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_to_ldm(sd: dict[str, Any], layers_per_block: int) -> dict[str, Any]:
    n = layers_per_block + 1
    attn_up = {int(k.split(".")[1]) for k in sd if re.match(r"up_blocks\.\d+\.attentions\.", k)}
    out: dict[str, Any] = {}
    for k, v in sd.items():
        new: str | None = None
        for d, ld in _UNET_TOP.items():
            if k.startswith(d + "."):
                new = ld + k[len(d) :]
        if (m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", k)) is not None:
            new = f"input_blocks.{n * int(m[1]) + int(m[2]) + 1}.0.{_resnet(m[3])}"
        elif (m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", k)) is not None:
            new = f"input_blocks.{n * int(m[1]) + int(m[2]) + 1}.1.{m[3]}"
        elif (m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", k)) is not None:
            new = f"input_blocks.{n * (int(m[1]) + 1)}.0.op.{m[2]}"
        elif (m := re.match(r"mid_block\.resnets\.(\d+)\.(.+)", k)) is not None:
            new = f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
        elif (m := re.match(r"mid_block\.attentions\.0\.(.+)", k)) is not None:
            new = f"middle_block.1.{m[1]}"
        elif (m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", k)) is not None:
            new = f"output_blocks.{n * int(m[1]) + int(m[2])}.0.{_resnet(m[3])}"
        elif (m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", k)) is not None:
            new = f"output_blocks.{n * int(m[1]) + int(m[2])}.1.{m[3]}"
        elif (m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", k)) is not None:
            i = int(m[1])
            new = f"output_blocks.{n * i + n - 1}.{2 if i in attn_up else 1}.conv.{m[2]}"
        if new is None:
            raise KeyError(f"no LDM name for UNet key {k}")
        out["model.diffusion_model." + new] = v
    return out


def vae_to_ldm(sd: dict[str, Any], num_blocks: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in sd.items():
        new = k.replace("conv_norm_out", "norm_out")
        if (m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", k)) is not None:
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif (m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", k)) is not None:
            rest = m[2]
            for d, ld in _VAE_ATTN:
                if rest.startswith(d + "."):
                    rest = ld + rest[len(d) :]
            new = f"{m[1]}.mid.attn_1.{rest}"
            if v.ndim == 2:  # linear -> 1x1 conv, as the original VAE holds them
                v = v[:, :, None, None]
        elif (m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", k)) is not None:
            new = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif (m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", k)) is not None:
            new = f"encoder.down.{m[1]}.downsample.{m[2]}"
        elif (m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", k)) is not None:
            new = f"decoder.up.{num_blocks - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif (m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", k)) is not None:
            new = f"decoder.up.{num_blocks - 1 - int(m[1])}.upsample.{m[2]}"
        out["first_stage_model." + new.replace("conv_shortcut", "nin_shortcut")] = v
    return out


def save_sd1_single_file(model_dir: Path, out: Path) -> Path:
    """``model_dir`` (a diffusers SD 1.x folder) as one LDM-layout ``.safetensors`` file at ``out``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae")
    text = CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder")
    cfg = json.loads((model_dir / "unet" / "config.json").read_text())
    vcfg = json.loads((model_dir / "vae" / "config.json").read_text())
    sd: dict[str, Any] = {}
    sd.update(unet_to_ldm(unet.state_dict(), int(cfg["layers_per_block"])))
    sd.update(vae_to_ldm(vae.state_dict(), len(vcfg["down_block_types"])))
    sd.update({"cond_stage_model.transformer." + k: v for k, v in text.state_dict().items()})
    save_file({k: v.contiguous() for k, v in sd.items()}, str(out))
    return out


def open_clip_to_ldm(sd: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A transformers CLIP-with-projection state dict in OpenCLIP's layout (SD 2.x, SDXL's second encoder)."""
    import torch

    out: dict[str, Any] = {}
    qkv: dict[str, dict[str, Any]] = {}
    top = {
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    parts = (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"))
    for k, v in sd.items():
        if k in top:
            out[prefix + top[k]] = v
        elif k == "text_projection.weight":
            out[prefix + "text_projection"] = v.T.contiguous()
        elif (m := re.match(r"text_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", k)) is not None:
            qkv.setdefault(f"{m[1]}.{m[3]}", {})[m[2]] = v
        elif (m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.+)", k)) is not None:
            rest = m[2].replace("self_attn.out_proj", "attn.out_proj")
            for d, ld in parts:
                rest = rest.replace(d, ld)
            out[f"{prefix}transformer.resblocks.{m[1]}.{rest}"] = v
        elif not k.endswith("position_ids"):
            raise KeyError(f"no OpenCLIP name for {k}")
    for key, p in qkv.items():
        layer, kind = key.split(".")
        out[f"{prefix}transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([p["q"], p["k"], p["v"]])
    return out


def save_sdxl_single_file(model_dir: Path, out: Path) -> Path:
    """``model_dir`` (a diffusers SDXL folder) as one file in SDXL's original layout."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae")
    te1 = CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder")
    te2 = CLIPTextModelWithProjection.from_pretrained(model_dir, subfolder="text_encoder_2")
    cfg = json.loads((model_dir / "unet" / "config.json").read_text())
    vcfg = json.loads((model_dir / "vae" / "config.json").read_text())
    unet_sd = dict(unet.state_dict())
    extra = {}
    for d, ld in (("add_embedding.linear_1", "label_emb.0.0"), ("add_embedding.linear_2", "label_emb.0.2")):
        for s in ("weight", "bias"):
            extra[f"model.diffusion_model.{ld}.{s}"] = unet_sd.pop(f"{d}.{s}")
    sd: dict[str, Any] = {**unet_to_ldm(unet_sd, int(cfg["layers_per_block"])), **extra}
    sd.update(vae_to_ldm(vae.state_dict(), len(vcfg["down_block_types"])))
    sd.update({"conditioner.embedders.0.transformer." + k: v for k, v in te1.state_dict().items()})
    sd.update(open_clip_to_ldm(te2.state_dict(), "conditioner.embedders.1.model."))
    save_file({k: v.contiguous() for k, v in sd.items()}, str(out))
    return out
