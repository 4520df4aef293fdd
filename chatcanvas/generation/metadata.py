"""The recipe inside the PNG.

Written twice: as ``parameters`` in the text format AUTOMATIC1111 writes (so other SD tools read it),
and as ``chatcanvas`` (the full recipe as JSON, so ``generate --from-png`` is exact).
"""

from __future__ import annotations

import io
import json
import re

from PIL import Image, PngImagePlugin

from chatcanvas.types import Recipe


def _quote(v: str) -> str:
    return json.dumps(v) if ("," in v or ":" in v or '"' in v or "\n" in v) else v


def recipe_to_parameters(r: Recipe) -> str:
    lines = [r.prompt]
    if r.negative_prompt:
        lines.append(f"Negative prompt: {r.negative_prompt}")
    fields = [
        ("Steps", str(r.steps)),
        ("Sampler", r.sampler),
        ("CFG scale", f"{r.guidance:g}"),
        ("Seed", str(r.seed)),
        ("Size", f"{r.width}x{r.height}"),
        ("Model", r.model),
    ]
    if r.strength is not None and r.mode != "text2img":
        fields.append(("Denoising strength", f"{r.strength:g}"))
    fields.append(("Backend", r.backend))
    if r.style:
        fields.append(("Style", r.style))
    if r.revised_prompt:
        fields.append(("Revised prompt", r.revised_prompt))
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields))
    return "\n".join(lines)


_FIELD = re.compile(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_parameters(text: str) -> dict[str, str]:
    """Parse AUTOMATIC1111 ``parameters`` text into ``{"prompt", "negative_prompt", "Steps", ...}``."""
    lines = text.strip().split("\n")
    last = lines[-1] if len(lines) > 1 or "Steps:" in lines[-1] else ""
    body = lines[:-1] if last else lines
    out: dict[str, str] = {}
    prompt: list[str] = []
    neg: list[str] = []
    target = prompt
    for line in body:
        if line.startswith("Negative prompt:"):
            target = neg
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    out["prompt"] = "\n".join(prompt).strip()
    out["negative_prompt"] = "\n".join(neg).strip()
    for k, v in _FIELD.findall(last):
        v = v.strip()
        out[k.strip()] = json.loads(v) if v.startswith('"') else v
    return out


def png_with_recipe(img: Image.Image, recipe: Recipe) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", recipe_to_parameters(recipe))
    info.add_text("chatcanvas", recipe.model_dump_json(exclude_none=True))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def add_recipe(png: bytes, recipe: Recipe) -> bytes:
    """Attach the recipe to PNG bytes from elsewhere, keeping the pixels as they are."""
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        return png_with_recipe(im, recipe)


def png_text(png: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(png)) as im:
        return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}


def parameters_from_png(png: bytes) -> dict[str, str]:
    return parse_parameters(png_text(png).get("parameters", ""))


def recipe_from_png(png: bytes) -> Recipe:
    """The exact recipe (from our JSON chunk), or the best reading of A1111 ``parameters``."""
    text = png_text(png)
    if "chatcanvas" in text:
        return Recipe.model_validate_json(text["chatcanvas"])
    p = parse_parameters(text.get("parameters", ""))
    if not p.get("prompt"):
        raise ValueError("this PNG carries no generation parameters")
    w, _, h = p.get("Size", "512x512").partition("x")
    return Recipe(
        prompt=p["prompt"],
        negative_prompt=p.get("negative_prompt", ""),
        width=int(w),
        height=int(h),
        seed=int(p.get("Seed", 0)),
        steps=int(p.get("Steps", 20)),
        guidance=float(p.get("CFG scale", 7.0)),
        sampler=p.get("Sampler", ""),
        model=p.get("Model", ""),
        backend=p.get("Backend", "local"),
    )
