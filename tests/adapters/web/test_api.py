"""The HTTP API through a real uvicorn server on 127.0.0.1, with httpx."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from chatcanvas.adapters.web.auth import key_id
from chatcanvas.config import Settings
from chatcanvas.generation.demo.draw import draw_product
from chatcanvas.generation.metadata import parameters_from_png
from chatcanvas.provenance.verify import verify_image
from tests.adapters.web.conftest import Server, png_bytes, running, sse_events
from tests.test_images import bomb_png

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(resp: Any, status: int, contains: str = "") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert PROBLEM_KEYS <= body.keys() and body["status"] == status
    assert "Traceback" not in resp.text
    assert contains.lower() in body["detail"].lower()
    return body


def mug_photo(size: tuple[int, int] = (64, 64)) -> bytes:
    img = draw_product("mug", "red", np.random.default_rng(11), size=max(size))
    return png_bytes(img.resize(size))


async def test_openapi_page_and_static(server: Server) -> None:
    c = server.client
    schema = (await c.get("/v1/openapi.json")).json()
    for path in (
        "/v1/generations",
        "/v1/variations",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/images/{image_id}.png",
    ):
        assert path in schema["paths"], path
    assert "delete" in schema["paths"]["/v1/jobs/{job_id}"]
    page = await c.get("/")
    assert page.status_code == 200 and 'id="prompt"' in page.text and "static/app.js" in page.text
    js = await c.get("/static/app.js")
    assert js.status_code == 200 and "EventSource" in js.text
    info = (await c.get("/v1")).json()
    assert info["api_keys_required"] is False and info["demo_model"] is False


async def test_spec_generation_events_job_and_png(server: Server) -> None:
    c = server.client
    resp = await c.post("/v1/generations", json={"spec": {"prompt": "a blue mug", "seed": 7, "count": 2}})
    assert resp.status_code in (200, 202), resp.text
    job = resp.json()
    assert job["id"].startswith("w") and resp.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["prompts"] == ["a blue mug"]
    events = await sse_events(c, f"/v1/jobs/{job['id']}/events")
    names = [n for n, _ in events]
    assert names[0] == "queued" and names[-1] == "done"
    assert "progress" in names and "images" in names
    pct = [d["percent"] for n, d in events if n == "progress"]
    assert pct == sorted(pct)
    done = events[-1][1]
    assert done["status"] == "done" and len(done["images"]) == 2
    got = (await c.get(f"/v1/jobs/{job['id']}")).json()
    assert got["status"] == "done" and [i["id"] for i in got["images"]] == [i["id"] for i in done["images"]]
    img = got["images"][0]
    png = await c.get(img["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert parameters_from_png(png.content)["prompt"] == "a blue mug"
    assert verify_image(png.content).manifest == "valid"  # served with its Content Credentials
    dl = await c.get(img["url"], params={"download": "1"})
    assert dl.headers["content-disposition"].startswith("attachment")
    # A bare ImageSpec body works too; replaying events after the end gives the same terminal event.
    again = await c.post("/v1/generations", json={"prompt": "a red cap", "seed": 1})
    assert again.status_code in (200, 202)
    await sse_events(c, f"/v1/jobs/{again.json()['id']}/events")
    replay = await sse_events(c, f"/v1/jobs/{again.json()['id']}/events")
    assert replay[-1][0] == "done"


async def test_reroll_and_vary_buttons(server: Server) -> None:
    c = server.client
    job = (await c.post("/v1/generations", json={"prompt": "a green tote bag", "seed": 3})).json()
    done = (await sse_events(c, f"/v1/jobs/{job['id']}/events"))[-1][1]
    first = done["images"][0]
    for action in ("reroll", "vary"):
        r = await c.post(f"/v1/images/{first['id']}/{action}")
        assert r.status_code in (200, 202), r.text
        end = (await sse_events(c, f"/v1/jobs/{r.json()['id']}/events"))[-1][1]
        assert end["status"] == "done" and end["images"][0]["prompt"] == "a green tote bag"
        if action == "vary":
            assert end["images"][0]["mode"] == "img2img"
    assert_problem(await c.post("/v1/images/" + "0" * 32 + "/reroll"), 404)


async def test_bad_requests_are_problem_details(server: Server) -> None:
    c = server.client
    assert_problem(await c.post("/v1/generations", json={"spec": {"prompt": "x", "width": 12}}), 422, "width")
    assert_problem(await c.post("/v1/generations", json={"spec": {"prompt": "x", "count": 40}}), 422, "limit")
    assert_problem(await c.post("/v1/generations", json={}), 422, "either text")
    assert_problem(
        await c.post("/v1/generations", content=b"{nope", headers={"content-type": "application/json"}), 422
    )
    assert_problem(await c.get("/v1/jobs/wnope"), 404, "no job")
    assert_problem(await c.get("/v1/jobs/wnope/events"), 404)
    assert_problem(await c.delete("/v1/jobs/wnope"), 404)
    assert_problem(await c.get("/v1/images/" + "a" * 32 + ".png"), 404, "no image")
    assert_problem(await c.get("/v1/images/../../etc/passwd.png"), 404)
    assert_problem(await c.get("/no/such/page"), 404)


async def test_decompression_bomb_gets_413_and_server_keeps_serving(server: Server) -> None:
    c = server.client
    bomb = bomb_png(20000, 20000)
    resp = await c.post(
        "/v1/variations",
        files={"image": ("huge.png", bomb, "image/png")},
        data={"variations": '["blue", "green"]'},
    )
    body = assert_problem(resp, 413, "too large")
    assert "20000x20000" in body["detail"]
    assert (await c.get("/v1")).status_code == 200
    ok = await c.post("/v1/generations", json={"prompt": "a mug", "seed": 1})
    assert ok.status_code in (200, 202)
    assert (await sse_events(c, f"/v1/jobs/{ok.json()['id']}/events"))[-1][0] == "done"


async def test_upload_formats_and_byte_caps(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(max_upload_bytes=200_000)) as srv:
        c = srv.client
        gif = png_bytes(Image.new("RGB", (32, 32), (255, 0, 0)), "GIF")
        assert_problem(
            await c.post(
                "/v1/variations", files={"image": ("a.gif", gif, "image/gif")}, data={"variations": "red"}
            ),
            415,
            "png, jpeg or webp",
        )
        assert_problem(
            await c.post(
                "/v1/variations",
                files={"image": ("a.png", b"not an image at all", "application/octet-stream")},
                data={"variations": "red"},
            ),
            415,
            "isn't an image",
        )
        noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
        big = png_bytes(Image.fromarray(noise))  # ~480 kB: over the per-file cap, under the body cap
        assert len(big) > 200_000
        assert_problem(
            await c.post(
                "/v1/variations", files={"image": ("b.png", big, "image/png")}, data={"variations": "red"}
            ),
            413,
            "too large",
        )
        huge = b"\x00" * 1_000_000  # over the whole-body cap: refused before it is read
        assert_problem(
            await c.post(
                "/v1/variations", files={"image": ("c.png", huge, "image/png")}, data={"variations": "red"}
            ),
            413,
        )
        assert_problem(
            await c.post(
                "/v1/variations",
                files={"image": ("m.png", mug_photo(), "image/png")},
                data={"variations": "[]"},
            ),
            422,
        )
        assert (await c.get("/v1")).status_code == 200


async def test_variations_keep_aspect_and_count(server: Server) -> None:
    c = server.client
    resp = await c.post(
        "/v1/variations",
        files={"image": ("mug.png", mug_photo((96, 64)), "image/png")},
        data={"variations": '["blue", "green"]', "subject": "mug"},
    )
    assert resp.status_code in (200, 202), resp.text
    job = resp.json()
    assert job["kind"] == "variations" and len(job["job_ids"]) == 2
    assert job["prompts"] == ["a blue mug", "a green mug"]
    done = (await sse_events(c, f"/v1/jobs/{job['id']}/events"))[-1][1]
    assert done["status"] == "done" and len(done["images"]) == 2
    for im in done["images"]:
        assert im["mode"] == "inpaint"
        assert abs(im["width"] / im["height"] - 1.5) < 0.25
        png = (await c.get(im["url"])).content
        with Image.open(io.BytesIO(png)) as out:
            assert out.size == (im["width"], im["height"])
    # A user-supplied mask of the wrong size is refused clearly.
    r = await c.post(
        "/v1/variations",
        files={
            "image": ("mug.png", mug_photo((96, 64)), "image/png"),
            "mask": ("mask.png", png_bytes(Image.new("L", (10, 10), 255)), "image/png"),
        },
        data={"variations": "blue"},
    )
    assert_problem(r, 422, "mask is 10x10")


async def test_cancel_queued_and_running_jobs(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(max_steps=500, workers=1)) as srv:
        c = srv.client
        # A long job holds the only worker; a second one (other steps: no shared batch) waits behind it.
        long = (await c.post("/v1/generations", json={"prompt": "a cap", "seed": 2, "steps": 500})).json()
        waiting = (await c.post("/v1/generations", json={"prompt": "a mug", "seed": 3, "steps": 3})).json()
        assert waiting["status"] == "queued"
        resp = await c.delete(f"/v1/jobs/{waiting['id']}")
        assert resp.status_code == 200
        events = await sse_events(c, f"/v1/jobs/{waiting['id']}/events")
        assert events[-1][0] == "cancelled" and not events[-1][1]["images"]
        assert (await c.get(f"/v1/jobs/{waiting['id']}")).json()["status"] == "cancelled"
        # The running one stops at its next step.
        await c.delete(f"/v1/jobs/{long['id']}")
        end = (await sse_events(c, f"/v1/jobs/{long['id']}/events"))[-1]
        assert end[0] == "cancelled", end


async def test_api_keys_and_daily_quota(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(api_keys="sekrit-key-4f9a2c,other-key-8b1d3e7", api_key_quota_per_day=2)) as srv:
        c = srv.client
        spec = {"prompt": "a mug", "seed": 1}
        assert_problem(await c.post("/v1/generations", json=spec), 401, "api key")
        assert_problem(
            await c.post("/v1/generations", json=spec, headers={"Authorization": "Bearer nope"}), 401
        )
        me = {"Authorization": "Bearer sekrit-key-4f9a2c"}
        first = await c.post("/v1/generations", json={**spec, "count": 2}, headers=me)
        assert first.status_code in (200, 202), first.text
        job_id = first.json()["id"]
        over = await c.post("/v1/generations", json=spec, headers=me)
        body = assert_problem(over, 429, "quota")
        assert int(over.headers["retry-after"]) > 0 and body["retry_after"] > 0
        # Another key has its own quota and cannot see this key's jobs.
        them = {"Authorization": "Bearer other-key-8b1d3e7"}
        assert_problem(await c.get(f"/v1/jobs/{job_id}", headers=them), 404)
        assert (await c.get(f"/v1/jobs/{job_id}", headers=me)).status_code == 200
        # The key never travels in a URL: ?access_token= is not read.
        assert_problem(await c.get(f"/v1/jobs/{job_id}", params={"access_token": "sekrit-key-4f9a2c"}), 401)
        # EventSource cannot send headers: the page trades its key for an HttpOnly same-site cookie.
        session = await c.post("/v1/session", headers=me)
        assert session.status_code == 204
        cookie = session.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "sekrit-key-4f9a2c" not in cookie
        events = await sse_events(c, f"/v1/jobs/{job_id}/events")  # the client sends the cookie
        assert events[-1][0] == "done"
        # image links come signed: the link works as given, without it (or altered) it does not
        url = events[-1][1]["images"][0]["url"]
        assert "sig=" in url and "exp=" in url
        c.cookies.clear()
        assert (await c.get(url)).headers["content-type"] == "image/png"
        bare = url.split("?")[0]
        assert (await c.get(bare)).status_code == 401
        assert (await c.get(url.replace("sig=", "sig=A"))).status_code == 401
        ok = await c.post("/v1/generations", json=spec, headers=them)
        assert ok.status_code in (200, 202)


async def test_text_request_counts_every_planned_image(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(api_keys="sekrit-key-4f9a2c", api_key_quota_per_day=4)) as srv:
        c = srv.client
        me = {"Authorization": "Bearer sekrit-key-4f9a2c"}
        r = await c.post("/v1/generations", json={"text": "three pictures of a blue mug"}, headers=me)
        assert r.status_code in (200, 202), r.text
        job = r.json()
        assert job["prompts"] and "blue mug" in job["prompts"][0]
        done = (await sse_events(c, f"/v1/jobs/{job['id']}/events", headers=me))[-1][1]
        assert done["status"] == "done" and len(done["images"]) == 3
        assert srv.web.keys.used(key_id("sekrit-key-4f9a2c")) == 3
        one_more = await c.post("/v1/generations", json={"prompt": "a cap"}, headers=me)
        assert one_more.status_code in (200, 202)
        assert_problem(await c.post("/v1/generations", json={"prompt": "a cap"}, headers=me), 429, "quota")


async def test_progress_events_carry_previews(server: Server) -> None:
    import base64

    c = server.client
    job = (await c.post("/v1/generations", json={"prompt": "a pink sneaker", "seed": 5, "steps": 9})).json()
    events = await sse_events(c, f"/v1/jobs/{job['id']}/events")
    previews = [d["preview"] for n, d in events if n == "progress" and "preview" in d]
    assert previews, [n for n, _ in events]
    head, _, b64 = previews[0].partition(",")
    assert head == "data:image/png;base64" and base64.b64decode(b64).startswith(b"\x89PNG")


async def test_variations_from_webp_with_a_given_mask(server: Server) -> None:
    c = server.client
    photo = draw_product("cap", "yellow", np.random.default_rng(8), size=64)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    resp = await c.post(
        "/v1/variations",
        files={
            "image": ("cap.webp", png_bytes(photo, "WEBP"), "image/jpg"),  # a wrong type; the bytes decide
            "mask": ("mask.png", png_bytes(mask), "image/png"),
        },
        data={"variations": ["red", "purple"], "subject": "cap"},  # the field repeated
    )
    assert resp.status_code in (200, 202), resp.text
    done = (await sse_events(c, f"/v1/jobs/{resp.json()['id']}/events"))[-1][1]
    assert done["status"] == "done" and [i["prompt"] for i in done["images"]] == ["a red cap", "a purple cap"]
    rec = server.ctx.engine.job(resp.json()["job_ids"][0])
    with Image.open(server.ctx.store.image_file(rec.spec.mask_image)) as used:
        assert used.getpixel((32, 32)) == 255 and used.getpixel((4, 4)) == 0
