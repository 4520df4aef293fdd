"""POST /v1/verify through a real uvicorn server on 127.0.0.1, with httpx."""

from __future__ import annotations

from pathlib import Path

from chatcanvas.config import Settings
from chatcanvas.generation.metadata import png_with_recipe
from tests.adapters.web.conftest import running
from tests.adapters.web.test_api import assert_problem
from tests.provenance.conftest import png_of, repaint_keeping_chunks, still_life
from tests.provenance.test_content_credentials import a_recipe


async def test_verify_upload_raw_body_and_bad_input(settings: Settings, tmp_path: Path) -> None:
    ours = png_with_recipe(still_life(), a_recipe(), settings=settings)
    async with running(settings, start_engine=False) as srv:
        c = srv.client
        resp = await c.post("/v1/verify", files={"image": ("ours.png", ours, "image/png")})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["verdict"] == "ours" and body["ok"] is True and body["made_by_model"] is True
        assert "c2pa.created" in body["actions"] and body["watermark"]["found"] is True
        assert body["signer"]["trusted"] is False and body["recipe"]["model"] == "tiny-test"

        raw = await c.post("/v1/verify", content=png_of(still_life(seed=6)), headers={"content-type": "image/png"})
        assert raw.status_code == 200 and raw.json()["verdict"] == "absent" and raw.json()["ok"] is False

        def scribble(a):  # type: ignore[no-untyped-def]
            a[10:12, 10:30] = 0

        altered = await c.post("/v1/verify", content=repaint_keeping_chunks(ours, scribble))
        assert altered.json()["verdict"] == "altered"

        assert_problem(
            await c.post("/v1/verify", files={"image": ("notes.txt", b"just words", "text/plain")}), 415
        )
        assert_problem(await c.post("/v1/verify", files={"photo": ("x.png", ours, "image/png")}), 422, "image")
        too_big = b"\x89PNG\r\n\x1a\n" + b"\0" * (settings.max_upload_bytes + 10)
        assert_problem(await c.post("/v1/verify", content=too_big), 413)
        schema = (await c.get("/v1/openapi.json")).json()
        assert "multipart/form-data" in schema["paths"]["/v1/verify"]["post"]["requestBody"]["content"]
