"""The recipe inside the PNG, and reading the ones AUTOMATIC1111 writes (and ComfyUI's, as the same
fields: :mod:`chatcanvas.generation.comfyui`).

Written twice: as ``parameters`` in the text format AUTOMATIC1111 writes (so other SD tools read it),
and as ``chatcanvas`` (the full recipe as JSON, so ``generate --from-png`` is exact).

The ``parameters`` text is A1111's "infotext": the prompt, a ``Negative prompt:`` line, then one line
of ``Key: value`` pairs separated by commas, values with a comma, colon or newline JSON-quoted::

    a castle on a hill <lora:castle:0.8>
    Negative prompt: blurry, ugly
    Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 12345, Size: 512x768,
    Model hash: 8c1e2fd5a3, Model: dreamshaper_8, Lora hashes: "castle: 2bd5d1b3c4", Version: v1.10.1

(the last line is one line in a file). :func:`request_from_png` turns such a text (or our own
recipe) into an :class:`~chatcanvas.types.ImageSpec` and names every field it could not honour.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, PngImagePlugin

from chatcanvas.types import MAX_SEED, ImageSpec, Recipe

if TYPE_CHECKING:
    from chatcanvas.config import Settings

LANCZOS = "Lanczos"  # the hires upscaler this backend has


def _quote(v: str) -> str:
    """As A1111's ``quote``: JSON-quote a value holding a comma, colon, newline (or a quote)."""
    if "," in v or ":" in v or '"' in v or "\n" in v:
        return json.dumps(v, ensure_ascii=False)
    return v


def _num(x: float) -> str:
    return f"{x:g}"


def recipe_to_parameters(r: Recipe) -> str:
    """A1111 infotext for ``r``, fields in the order A1111 writes them (``Size`` is the first pass)."""
    from chatcanvas.generation.samplers import SAMPLERS, UNIFORM

    lines = [r.prompt]
    if r.negative_prompt:
        lines.append(f"Negative prompt: {r.negative_prompt}")
    fields: list[tuple[str, str]] = [("Steps", str(r.steps)), ("Sampler", r.sampler)]
    if r.schedule:
        fields.append(("Schedule type", r.schedule))
    elif r.sampler in SAMPLERS and SAMPLERS[r.sampler].automatic:
        # A1111 >= 1.9 reads a missing schedule as "Automatic" (Karras for DPM++ 2M): say it was plain
        fields.append(("Schedule type", UNIFORM))
    w, h = (r.first_pass_width, r.first_pass_height) if r.hires_scale else (r.width, r.height)
    fields += [
        ("CFG scale", _num(r.guidance)),
        ("Seed", str(r.seed)),
        ("Size", f"{w or r.width}x{h or r.height}"),
        ("Model", r.model),
    ]
    if r.hires_scale and r.hires_denoise is not None:
        fields.append(("Denoising strength", _num(r.hires_denoise)))
    elif r.strength is not None and r.mode != "text2img":
        fields.append(("Denoising strength", _num(r.strength)))
    clip_skip = getattr(r, "clip_skip", None)
    if isinstance(clip_skip, int) and clip_skip > 1:
        fields.append(("Clip skip", str(clip_skip)))
    if r.hires_scale:
        fields.append(("Hires upscale", _num(r.hires_scale)))
        if r.hires_steps:
            fields.append(("Hires steps", str(r.hires_steps)))
        fields.append(("Hires upscaler", r.hires_upscaler or LANCZOS))
    lora_hashes = getattr(r, "lora_hashes", None)
    if lora_hashes:
        fields.append(("Lora hashes", str(lora_hashes)))
    fields.append(("Backend", r.backend))
    if r.style:
        fields.append(("Style", r.style))
    if r.revised_prompt:
        fields.append(("Revised prompt", r.revised_prompt))
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields))
    return "\n".join(lines)


# A1111's own pattern (modules/infotext_utils.py): keys may hold spaces, dashes and slashes.
_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        try:
            out = json.loads(v)
        except ValueError:
            return v
        return out if isinstance(out, str) else v
    return v


def parse_parameters(text: str) -> dict[str, str]:
    """Parse AUTOMATIC1111 ``parameters`` text into ``{"prompt", "negative_prompt", "Steps", ...}``.

    As A1111 does: the last line holds the fields when at least three ``Key: value`` pairs are on it;
    a ``Negative prompt:`` line starts the negative prompt, which runs to the fields line.
    """
    *lines, last = text.strip().split("\n")
    if len(_FIELD.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    neg: list[str] = []
    target = prompt
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            target = neg
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    out: dict[str, str] = {
        "prompt": "\n".join(prompt).strip(),
        "negative_prompt": "\n".join(neg).strip(),
    }
    for k, v in _FIELD.findall(last):
        out[k.strip()] = _unquote(v.strip())
    return out


def png_with_recipe(
    img: Image.Image,
    recipe: Recipe,
    *,
    settings: Settings | None = None,
    parent: bytes | None = None,
    inputs: Sequence[bytes] = (),
    origin: bytes | None = None,
) -> bytes:
    """The PNG every image leaves in: the recipe as text, the invisible watermark, C2PA Content Credentials.

    ``parent``: the source image's bytes (image-to-image, inpainting, upscale, outpaint; read from the
    store by ``recipe.init_image`` when not given), ``inputs``: other images that went in (a mask),
    ``origin``: the service's own bytes these pixels came from (kept as the parent if they carry a
    C2PA manifest). See :mod:`chatcanvas.provenance`.
    """
    from chatcanvas import provenance

    img, signed = provenance.mark(img, recipe, settings)  # the signed recipe also says if it is watermarked
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", recipe_to_parameters(recipe))
    info.add_text("chatcanvas", recipe.model_dump_json(exclude_none=True))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return provenance.seal(buf.getvalue(), signed, settings, parent=parent, inputs=inputs, origin=origin)


def add_recipe(
    png: bytes,
    recipe: Recipe,
    *,
    settings: Settings | None = None,
    parent: bytes | None = None,
    inputs: Sequence[bytes] = (),
) -> bytes:
    """Attach the recipe (and provenance) to image bytes from elsewhere (a service's output)."""
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        return png_with_recipe(im, recipe, settings=settings, parent=parent, inputs=inputs, origin=png)


def png_text(png: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(png)) as im:
        return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}


def parameters_from_png(png: bytes) -> dict[str, str]:
    """A1111's infotext fields of a PNG (ComfyUI's graph read as the same fields)."""
    return _infotext(png_text(png))


def _infotext(text: dict[str, str]) -> dict[str, str]:
    if "parameters" in text:
        return parse_parameters(text["parameters"])
    if "prompt" in text:  # ComfyUI's SaveImage
        from chatcanvas.generation.comfyui import parameters_from_comfyui

        return parameters_from_comfyui(text["prompt"])
    return {}


def recipe_from_png(png: bytes) -> Recipe:
    """The exact recipe (from our JSON chunk), or the best reading of A1111 ``parameters``."""
    text = png_text(png)
    if "chatcanvas" in text:
        return Recipe.model_validate_json(text["chatcanvas"])
    p = _infotext(text)
    if not p.get("prompt"):
        raise ValueError("this PNG carries no generation parameters")
    w, h = _size(p.get("Size", "")) or (512, 512)
    scale = _float(p.get("Hires upscale"))
    sampler, schedule = _sampler_of(p)[:2]
    return Recipe(
        prompt=p["prompt"],
        negative_prompt=p.get("negative_prompt", ""),
        width=int(w * scale) // 8 * 8 if scale else w,
        height=int(h * scale) // 8 * 8 if scale else h,
        seed=_int(p.get("Seed")) or 0,
        steps=_int(p.get("Steps")) or 20,
        guidance=_float(p.get("CFG scale"), 7.0) or 0.0,
        sampler=sampler or p.get("Sampler", ""),
        schedule=schedule,
        model=p.get("Model", ""),
        backend=p.get("Backend", "local"),
        hires_scale=scale,
        hires_steps=_int(p.get("Hires steps")) if scale else None,
        hires_denoise=_float(p.get("Denoising strength")) if scale else None,
        hires_upscaler=p.get("Hires upscaler") if scale else None,
        first_pass_width=w if scale else None,
        first_pass_height=h if scale else None,
    )


# ---------------------------------------------------------------- --from-png: a request from a PNG


# Fields that describe rather than ask: nothing to honour or refuse.
_INFORMATIONAL = {"Version", "User", "Lora hashes", "TI hashes", "Hashes", "Backend", "Revised prompt", "Cost"}


@dataclass
class PngRequest:
    """What a PNG asks for: ImageSpec fields, the model it names, and what can't be done here."""

    spec: dict[str, Any]
    model: str = ""  # the model named in the PNG ("" if none)
    model_hash: str = ""
    backend: str = "local"
    exact: bool = False  # from our own recipe chunk
    not_honoured: list[str] = field(default_factory=list)
    recipe: Recipe | None = None  # our own recipe, when the PNG has it

    def to_spec(self) -> ImageSpec:
        return ImageSpec(**self.spec)


def spec_fields_from_recipe(r: Recipe) -> dict[str, Any]:
    """The ImageSpec fields that make ``r`` again: the first-pass size, sampler, schedule, hires fix."""
    from chatcanvas.generation.samplers import sampler_name

    out: dict[str, Any] = {
        "prompt": r.prompt,
        "negative_prompt": r.negative_prompt,
        "width": r.first_pass_width or r.width,
        "height": r.first_pass_height or r.height,
        "seed": r.seed,
        "steps": r.steps,
        "guidance": r.guidance,
        "style": r.style,
        "backend": r.backend,
        "init_image": r.init_image,
        "mask_image": r.mask_image,
        "strength": r.strength if r.strength is not None else 0.75,
    }
    if sampler_name(r.sampler):  # not for "openai" or a scheduler class with no A1111 name
        out["sampler"] = r.sampler
        out["schedule"] = r.schedule
    if r.hires_scale:
        out.update(hires_scale=r.hires_scale, hires_steps=r.hires_steps, hires_denoise=r.hires_denoise)
    clip_skip = getattr(r, "clip_skip", None)
    if clip_skip is not None and "clip_skip" in ImageSpec.model_fields:
        out["clip_skip"] = clip_skip
    if r.colourway is not None:  # the photo's own size comes from the photo (not a multiple of 8)
        out.update(colourway=r.colourway, width=None, height=None)
    return out


def request_from_png(png: bytes) -> PngRequest:
    """Read a PNG's recipe: ours exactly, or A1111's infotext field by field.

    Honoured from A1111: the prompt (LoRA tags and ``(word:1.2)`` weights stay in it as text),
    negative prompt, steps, sampler and schedule type (both spellings), CFG scale, seed, size, clip
    skip (where the spec has it), hires fix (upscale, steps, denoising strength; the upscaler is
    always Lanczos here). Everything else is listed in ``not_honoured`` as ``Key: value``.
    """
    text = png_text(png)
    if "chatcanvas" in text:
        r = Recipe.model_validate_json(text["chatcanvas"])
        return PngRequest(
            spec=spec_fields_from_recipe(r), model=r.model, backend=r.backend, exact=True, recipe=r
        )
    p = _infotext(text)
    if not p.get("prompt"):
        raise ValueError("this PNG carries no generation parameters")
    spec: dict[str, Any] = {"prompt": p["prompt"], "negative_prompt": p.get("negative_prompt", "")}
    skipped: list[str] = []
    used = {"prompt", "negative_prompt", "Model", "Model hash"} | _INFORMATIONAL

    def take(key: str, conv: Any, name: str) -> None:
        if key in p and key not in used:
            used.add(key)
            v = conv(p[key])
            if v is None:
                skipped.append(f"{key}: {p[key]}")
            else:
                spec[name] = v

    take("Steps", _int, "steps")
    take("CFG scale", _float, "guidance")
    if "Seed" in p and (big := _int(p["Seed"])) is not None and big > MAX_SEED:  # ComfyUI's go to 2^64
        used.add("Seed")
        spec["seed"] = big % (MAX_SEED + 1)
        skipped.append(f"Seed: {big} (over {MAX_SEED}: {spec['seed']} used)")
    take("Seed", _int, "seed")
    take("Style", lambda v: v or None, "style")
    take("Batch size", _int, "count")  # ComfyUI's latent batch
    size = _size(p.get("Size", ""))
    if "Size" in p:
        used.add("Size")
        if size and all(s % 8 == 0 for s in size):
            spec["width"], spec["height"] = size
        else:
            skipped.append(f"Size: {p['Size']}")
    sampler, schedule, problems = _sampler_of(p)
    used |= {"Sampler", "Schedule type"}
    skipped += problems
    if sampler:
        spec["sampler"], spec["schedule"] = sampler, schedule
    _hires(p, spec, size, used, skipped)
    if "Clip skip" in p:
        used.add("Clip skip")
        n = _int(p["Clip skip"])
        if n is not None and "clip_skip" in ImageSpec.model_fields:
            spec["clip_skip"] = n
        elif n != 1:  # 1 is no skip: nothing to do
            skipped.append(f"Clip skip: {p['Clip skip']}")
    if "Denoising strength" in p and "Denoising strength" not in used:
        used.add("Denoising strength")
        skipped.append(f"Denoising strength: {p['Denoising strength']} (no init image)")
    skipped += [f"{k}: {v}" for k, v in p.items() if k not in used]
    return PngRequest(
        spec=spec,
        model=p.get("Model", ""),
        model_hash=p.get("Model hash", ""),
        backend=p.get("Backend", "local"),
        not_honoured=skipped,
    )


def _hires(
    p: dict[str, str], spec: dict[str, Any], size: tuple[int, int] | None, used: set[str], skipped: list[str]
) -> None:
    scale = _float(p.get("Hires upscale"))
    if scale is None and "Hires resize" in p and size:  # "Hires resize: 1024x1536" instead of a factor
        to = _size(p["Hires resize"])
        if to and abs(to[0] / size[0] - to[1] / size[1]) < 0.02:
            scale = to[0] / size[0]
            used.add("Hires resize")
    if scale is None:
        return
    used |= {"Hires upscale", "Hires steps", "Hires upscaler", "Denoising strength"}
    if not 1.0 <= scale <= 4.0:
        skipped.append(f"Hires upscale: {p.get('Hires upscale', scale)}")
        return
    spec["hires_scale"] = scale
    steps = _int(p.get("Hires steps"))
    if steps:
        spec["hires_steps"] = steps
    denoise = _float(p.get("Denoising strength"))
    if denoise is not None and 0 < denoise <= 1:
        spec["hires_denoise"] = denoise
    upscaler = p.get("Hires upscaler", "")
    if upscaler and upscaler.casefold() != LANCZOS.casefold():
        skipped.append(f"Hires upscaler: {upscaler}")


def _sampler_of(p: dict[str, str]) -> tuple[str | None, str | None, list[str]]:
    """(sampler, schedule, what could not be used) from A1111's ``Sampler`` and ``Schedule type``."""
    from chatcanvas.generation.samplers import (
        SAMPLERS,
        canonical,
        sampler_name,
        schedule_name,
        split_legacy,
    )

    raw, raw_schedule = p.get("Sampler", ""), p.get("Schedule type", "")
    if not raw:
        return None, None, ([f"Schedule type: {raw_schedule}"] if raw_schedule else [])
    base, legacy = split_legacy(raw)
    name = sampler_name(base)
    if name is None:
        return None, None, [f"Sampler: {raw}"] + ([f"Schedule type: {raw_schedule}"] if raw_schedule else [])
    label = legacy
    if raw_schedule and schedule_name(raw_schedule) is None:
        return name, None, [f"Schedule type: {raw_schedule}"]
    if raw_schedule:
        label = raw_schedule
    try:
        sampler, schedule = canonical(name, label)
    except ValueError:
        takes = ", ".join(SAMPLERS[name].schedules)
        return name, None, [f"Schedule type: {label} (not with {name}; it takes {takes})"]
    return sampler, schedule, []


def model_matches(named: str, named_hash: str, ref: str) -> bool:
    """Is the model a PNG names the one at ``ref`` (a file, a folder, a hub id)?

    A1111 writes the checkpoint's file name without extension and the first 10 hex digits of its
    SHA-256; either matching is enough (the hash is only computed when the names differ).
    """
    if not named:
        return False
    tail = Path(ref.rstrip("/")).name
    stems = {tail.casefold(), Path(tail).stem.casefold(), ref.casefold()}
    if named.casefold() in stems or Path(named).stem.casefold() in stems:
        return True
    path = Path(ref)
    if named_hash and path.is_file():
        return file_hash(path)[: len(named_hash)].casefold() == named_hash.casefold()
    return False


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _int(v: str | None) -> int | None:
    try:
        return int(str(v).strip()) if v is not None else None
    except ValueError:
        try:
            f = float(str(v))
        except ValueError:
            return None
        return int(f) if f.is_integer() else None


def _float(v: str | None, default: float | None = None) -> float | None:
    """``v`` as a number; ``default`` when it is missing or not a number."""
    if v is None:
        return default
    try:
        return float(str(v).strip())
    except ValueError:
        return default


def _size(v: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(\d+)x(\d+)\s*", v or "")
    return (int(m.group(1)), int(m.group(2))) if m else None
