"""Must-show: POST /v1/variations with a red mug on white and ["blue", "green"] gives a blue and a
green mug on a background that stays white. Needs the trained demo model (64x64 product photos)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from chatcanvas.config import DEMO_MODEL_DIR, Settings
from chatcanvas.generation.demo.draw import draw_product
from chatcanvas.generation.demo.score import dominant_color_name
from chatcanvas.generation.product_mask import product_mask
from tests.adapters.web.conftest import png_bytes, running, sse_events

pytestmark = pytest.mark.skipif(
    not (DEMO_MODEL_DIR / "model_index.json").is_file(),
    reason=f"the demo model is not trained yet ({DEMO_MODEL_DIR} has no model_index.json)",
)


async def test_red_mug_in_blue_and_green_keeps_white_background(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    photo = draw_product("mug", "red", np.random.default_rng(21), size=64)
    assert dominant_color_name(photo) == "red"
    settings = make_settings(model=None, default_steps=None)  # the bundled demo model, its own defaults
    async with running(settings) as srv:
        c = srv.client
        resp = await c.post(
            "/v1/variations",
            files={"image": ("red-mug.png", png_bytes(photo), "image/png")},
            data={"variations": '["blue", "green"]', "subject": "mug"},
        )
        assert resp.status_code in (200, 202), resp.text
        done = (await sse_events(c, f"/v1/jobs/{resp.json()['id']}/events"))[-1][1]
        assert done["status"] == "done", done
        assert [i["prompt"] for i in done["images"]] == ["a blue mug", "a green mug"]

        mask = product_mask(photo)
        inside = np.asarray(mask.filter(ImageFilter.MinFilter(5))) > 127  # well inside the mug
        outside = np.asarray(mask.filter(ImageFilter.MaxFilter(5))) == 0  # clearly background
        for im, want in zip(done["images"], ["blue", "green"], strict=True):
            png = (await c.get(im["url"])).content
            with Image.open(io.BytesIO(png)) as raw:
                out = raw.convert("RGB").resize(photo.size)
            out.save(tmp_path / f"{want}.png")
            rgb = np.asarray(out, dtype=np.float32)
            product = Image.fromarray(np.where(inside[..., None], rgb, 255).astype(np.uint8))
            assert dominant_color_name(product) == want, f"product region is not {want}: {tmp_path}"
            bg = rgb[outside]
            assert bg.mean() > 225, f"background darkened to {bg.mean():.0f}"
            assert (bg.max(axis=-1) - bg.min(axis=-1)).mean() < 20, "background is no longer neutral white"
            assert np.median(bg.min(axis=-1)) > 230
