"""The ``colourway`` backend: product colourways without diffusion, and the local backend's hook.

A spec for this backend carries ``colourway`` (the colour as asked and its hex), the product photo
as ``init_image`` and optionally its mask as ``mask_image`` (store ids). The image is the photo
recoloured by :func:`chatcanvas.generation.colourway.recolour`, at the photo's own size, with a
recipe naming the colour asked, the sRGB used and how close the product came (CIEDE2000).

:func:`colourway_inputs` / :func:`colourway_finish` are what the local diffusers backend calls for
a colourway with a material: recolour first and inpaint from that, then lay the result back over
the photo through the product's alpha, so the background stays the photo's own.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from chatcanvas import messages as m
from chatcanvas.config import Settings
from chatcanvas.errors import SpecError
from chatcanvas.generation.base import Backend, StepCallback, StepInfo
from chatcanvas.generation.metadata import png_with_recipe
from chatcanvas.types import GeneratedImage, ImageSpec, Mode, Recipe

__all__ = ["ColourwayBackend", "ColourwayInput", "colourway_finish", "colourway_inputs", "median_delta_e"]

ENGINE = "colourway-oklab"  # the recipe's model name: the engine is deterministic, no weights


def _open(images_dir: Path, ref: str, mode: str) -> Image.Image:
    from chatcanvas.store.db import read_image_ref

    with Image.open(io.BytesIO(read_image_ref(images_dir, ref))) as im:
        return im.convert(mode)


def _target(spec: ImageSpec) -> tuple[int, int, int]:
    if spec.colourway is None:
        raise SpecError(m.COLOURWAY_NEEDS_COLOUR)
    code = spec.colourway.hex
    return int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16)


def median_delta_e(image: Image.Image, product: np.ndarray, target: tuple[int, int, int]) -> float:
    """CIEDE2000 between the median CIELAB colour of the ``product`` pixels and ``target``."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    pixels = np.asarray(image.convert("RGB"))[product]
    if not len(pixels):
        return 0.0
    lab = rgb2lab(pixels[None].astype(np.float64) / 255.0)[0]
    want = rgb2lab(np.array(target, dtype=np.float64)[None, None] / 255.0)[0, 0]
    return float(deltaE_ciede2000(np.median(lab, axis=0), want))


class ColourwayBackend(Backend):
    name: ClassVar[str] = "colourway"
    supports_img2img: ClassVar[bool] = True
    supports_inpaint: ClassVar[bool] = True
    max_batch: ClassVar[int] = 8

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def model_name(self) -> str:
        return ENGINE

    def resolve(self, spec: ImageSpec) -> ImageSpec:
        if spec.colourway is None or not spec.init_image:
            raise SpecError(m.COLOURWAY_NEEDS_COLOUR)
        return spec.model_copy(update={"model": ENGINE, "backend": self.name})

    def batch_key(self, spec: ImageSpec) -> tuple[object, ...]:
        return (self.name,)

    async def generate(
        self, specs: list[ImageSpec], on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        return await asyncio.to_thread(self._generate_sync, specs, on_step)

    def _generate_sync(self, specs: list[ImageSpec], on_step: StepCallback | None) -> list[GeneratedImage]:
        from chatcanvas.generation.colourway import recolour

        out: list[GeneratedImage] = []
        total = sum(s.count for s in specs)
        for spec in specs:
            target = _target(spec)
            photo = _open(self.settings.images_dir, spec.init_image or "", "RGB")
            mask = _open(self.settings.images_dir, spec.mask_image, "L") if spec.mask_image else None
            t0 = time.perf_counter()
            result = recolour(photo, mask, target)
            seconds = time.perf_counter() - t0
            recipe = Recipe(
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                width=photo.width,
                height=photo.height,
                seed=spec.seed or 0,
                steps=1,  # one deterministic pass
                guidance=0.0,
                sampler="none",
                model=ENGINE,
                backend=self.name,
                mode=Mode.INPAINT if spec.mask_image else Mode.IMG2IMG,
                init_image=spec.init_image,
                mask_image=spec.mask_image,
                colourway=spec.colourway,
                colour_delta_e=round(median_delta_e(result.image, result.product, target), 2),
            )
            png = png_with_recipe(result.image, recipe, settings=self.settings)
            for _ in range(spec.count):  # deterministic: every copy is the same picture
                out.append(GeneratedImage(png=png, recipe=recipe, seconds=seconds))
                if on_step is not None:
                    on_step(StepInfo(step=len(out), total=total))
        return out


# ---------------------------------------------------------------- the local backend's hook


@dataclass(frozen=True)
class ColourwayInput:
    """What the diffusion pass of a colourway with a material needs to finish."""

    photo: Image.Image  # the original, its own size
    cover: np.ndarray  # the product's alpha at the photo's size
    product: np.ndarray
    target: tuple[int, int, int]


def colourway_inputs(
    spec: ImageSpec, images_dir: Path, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image, ColourwayInput]:
    """The init image (the photo recoloured) and the inpainting mask at the pipeline's ``size``."""
    from scipy import ndimage

    from chatcanvas.generation.colourway import recolour

    target = _target(spec)
    photo = _open(images_dir, spec.init_image or "", "RGB")
    mask = _open(images_dir, spec.mask_image, "L") if spec.mask_image else None
    result = recolour(photo, mask, target)
    grown = ndimage.binary_dilation(result.alpha > 0, iterations=max(2, min(photo.size) // 64))
    inpaint = Image.fromarray(np.where(grown, 255, 0).astype(np.uint8), mode="L")
    init = result.image.resize(size, Image.Resampling.LANCZOS)
    inpaint = inpaint.resize(size, Image.Resampling.BILINEAR)
    return init, inpaint, ColourwayInput(photo=photo, cover=result.alpha, product=result.product, target=target)


def colourway_finish(generated: Image.Image, inp: ColourwayInput) -> Image.Image:
    """The pipeline's picture inside the product, the photo outside it, at the photo's size."""
    full = np.asarray(generated.convert("RGB").resize(inp.photo.size, Image.Resampling.LANCZOS), np.float32)
    src = np.asarray(inp.photo, dtype=np.float32)
    cover = inp.cover[..., None]
    out = np.where(cover > 0, np.rint(full * cover + src * (1.0 - cover)), src)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="RGB")
