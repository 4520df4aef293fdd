"""POST /v1/variations with a drawn product photo: colourways that keep the product and the background."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from PIL import Image

from chatcanvas.colours import resolve_colour
from chatcanvas.config import Settings
from tests.adapters.web.conftest import png_bytes, running, sse_events
from tests.generation.colour_checks import background_psnr, median_delta_e, silhouette_iou
from tests.generation.drawn_products import table_lamp


async def test_navy_forest_green_and_a_hex_code_through_the_api(make_settings: Callable[..., Settings]) -> None:
    background = (236, 236, 236)  # a light grey studio sweep
    photo, cover = table_lamp(300, 500, background, noise=1.0)
    wanted = ["navy", "forest green", "#e07b39"]
    async with running(make_settings()) as srv:
        c = srv.client
        resp = await c.post(
            "/v1/variations",
            files={"image": ("lamp.png", png_bytes(photo), "image/png")},
            data={"variations": json.dumps(wanted), "subject": "table lamp"},
        )
        assert resp.status_code in (200, 202), resp.text
        done = (await sse_events(c, f"/v1/jobs/{resp.json()['id']}/events"))[-1][1]
        assert done["status"] == "done", done
        assert [i["prompt"] for i in done["images"]] == [
            "a navy table lamp",
            "a forest green table lamp",
            "a #e07b39 table lamp",
        ]
        for info, name in zip(done["images"], wanted, strict=True):
            png = (await c.get(info["url"])).content
            with Image.open(io.BytesIO(png)) as raw:
                recipe = json.loads(raw.text["chatcanvas"])
                out = raw.convert("RGB")
            target = resolve_colour(name)
            assert target is not None
            assert out.size == photo.size == (info["width"], info["height"])
            assert recipe["colourway"]["colour"] == name and recipe["colourway"]["hex"] == target.hex
            assert info["backend"] == recipe["backend"] == "colourway"  # no diffusion for a colour alone
            assert recipe["colour_delta_e"] <= 12.0
            assert silhouette_iou(photo, out, cover, background) >= 0.95, name
            assert background_psnr(photo, out, cover) >= 35.0, name
            assert median_delta_e(out, cover >= 0.5, target.rgb) <= 12.0, name


async def test_unknown_colour_is_refused_with_suggestions(make_settings: Callable[..., Settings]) -> None:
    photo, _ = table_lamp(192, 160, (255, 255, 255))
    async with running(make_settings()) as srv:
        resp = await srv.client.post(
            "/v1/variations",
            files={"image": ("lamp.png", png_bytes(photo), "image/png")},
            data={"variations": '["navy", "turqoise"]'},
        )
        assert 400 <= resp.status_code < 500, resp.text
        detail = resp.json()["detail"]
        assert "turqoise" in detail and "turquoise" in detail
