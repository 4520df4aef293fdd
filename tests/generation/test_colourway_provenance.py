"""A colourway of a large photo is watermarked on the product only: the background stays the photo's."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from chatcanvas.app import build_app
from chatcanvas.provenance.verify import verify_image
from chatcanvas.types import Images, Place, UserRef
from tests.conftest import collect


def kettle(w: int = 360, h: int = 300) -> Image.Image:
    """A shaded kettle on white: body, spout and handle (not a shape the demo model was trained on)."""
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for i in range(60):  # a vertical gradient body
        shade = 150 + i
        d.ellipse((110 + i // 3, 90 + i // 3, 250 - i // 3, 250 - i // 4), fill=(shade, 60, 50))
    d.polygon([(245, 150), (320, 110), (325, 125), (250, 180)], fill=(170, 70, 60))  # spout
    d.arc((120, 40, 240, 160), 180, 360, fill=(120, 40, 35), width=12)  # handle
    return img


async def test_a_large_colourway_keeps_its_background_and_carries_credentials(settings: Any) -> None:
    photo = kettle()
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    ctx = await build_app(settings)
    try:
        events = await collect(
            ctx.assistant.vary_product(
                buf.getvalue(), "navy", UserRef(platform="web", user="u"), Place(platform="web", channel="c")
            )
        )
        (done,) = [e for e in events if isinstance(e, Images)]
        out = done.images[0]
        report = verify_image(out.png)
        assert report.manifest == "valid"
        assert report.recipe is not None and report.recipe.get("watermark") == "dwtDct CCAI, on the product only"
        got = np.asarray(Image.open(io.BytesIO(out.png)).convert("RGB"), dtype=np.int16)
        src = np.asarray(photo, dtype=np.int16)
        assert got.shape == src.shape
        background = np.all(src == 255, axis=-1)
        far = np.ones_like(background)  # pixels at least 6 px from any product pixel
        ys, xs = np.nonzero(~background)
        for dy in range(-6, 7, 3):
            for dx in range(-6, 7, 3):
                far[np.clip(ys + dy, 0, src.shape[0] - 1), np.clip(xs + dx, 0, src.shape[1] - 1)] = False
        assert np.array_equal(got[far & background], src[far & background])
    finally:
        await ctx.aclose()
