"""Hostile input to the HTTP API: one real uvicorn server for the module, httpx, the tiny model.

Every case asserts the exact answer (status, what the detail says, the rule) and that the next
ordinary request from the same caller still makes an image."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatcanvas.types import Place, UserRef
from tests.adapters.web.conftest import Server, running, sse_events
from tests.fakes.openai_server import FakeOpenAI, Fault
from tests.hostile.conftest import (
    GIF_JS,
    HTML_TAIL,
    ZIP_TAIL,
    audit_rules,
    hostile_settings,
    huge_png,
    no_traceback,
    product_photo,
    tote_photo,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

USER = "mallory"
HDR = {"x-chatcanvas-user": USER}
_seeds = itertools.count(100)


@dataclass
class World:
    srv: Server
    fake: FakeOpenAI
    own_image: str = ""  # an image mallory made
    alice_upload: str = ""  # a product photo alice uploaded in her own conversation
    alice_image: str = ""  # an image alice made in her conversation
    follow_ups: list[str] = field(default_factory=list)  # web job ids of the ordinary requests after each case


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.moderation_flags["violence"] = ["axe", "machete"]
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("hostile-web")
    settings = hostile_settings(
        tmp,
        tiny_model_dir,
        openai_api_key="sk-hostile-web",  # the operator has OpenAI configured; the web may not use it
        openai_base_url=fake_openai.base_url,
        moderation="openai",
        moderation_max_retries=0,
        moderation_timeout_s=5.0,
    )
    async with running(settings) as srv:
        w = World(srv, fake_openai)
        w.own_image = await make_image(srv, USER, "a plain white mug")
        w.alice_image = await make_image(srv, "alice", "alice's red tote", conversation="alice-tab")
        alice = UserRef(platform="web", user="alice", server="local")
        w.alice_upload = srv.ctx.store.put_upload(
            tote_photo(), owner=alice, place=Place(platform="web", channel="alice-tab")
        )
        yield w


async def make_image(srv: Server, user: str, prompt: str, **body: Any) -> str:
    c = srv.client
    r = await c.post(
        "/v1/generations",
        json={"prompt": prompt, "seed": next(_seeds), **body},
        headers={"x-chatcanvas-user": user},
    )
    assert r.status_code in (200, 202), r.text
    end = (await sse_events(c, f"/v1/jobs/{r.json()['id']}/events"))[-1]
    assert end[0] == "done", end
    return str(end[1]["images"][0]["id"])


async def still_works(w: World, user: str = USER) -> None:
    """The next ordinary request from the same caller is accepted; its image is checked at the end
    of the module (``test_every_follow_up_request_made_its_image``), so the cases do not wait on it."""
    r = await w.srv.client.post(
        "/v1/generations",
        json={"prompt": "a small blue mug on a desk", "seed": next(_seeds)},
        headers={"x-chatcanvas-user": user},
    )
    assert r.status_code in (200, 202), r.text
    w.follow_ups.append(r.json()["id"])


def problem(resp: Any, status: int, contains: str = "", rule: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    no_traceback(resp.text)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert contains.lower() in body["detail"].lower(), body
    if rule is not None:
        assert body.get("rule") == rule, body
        assert f"(rule: {rule})" in body["detail"]
    return body


# ---------------------------------------------------------------- bodies of POST /v1/generations

BIG = "a" * 1_000_000
ZW = {"U+200B": "\u200b", "U+2060": "\u2060", "U+FEFF": "\ufeff"}

# (id, JSON body, status, detail holds, rule)
BODIES: list[tuple[str, Any, int, str, str | None]] = [
    ("empty-object", {}, 422, "either text", None),
    ("empty-text", {"text": ""}, 422, "text", None),
    ("blank-text", {"text": " \t\n "}, 422, "empty", None),
    ("empty-prompt", {"prompt": ""}, 422, "prompt", None),
    ("1MB-prompt", {"prompt": BIG}, 422, "4000 characters", None),
    ("1MB-text", {"text": BIG}, 422, "4000 characters", None),
    ("size-0", {"prompt": "a mug", "width": 0, "height": 0}, 422, "greater than or equal to 8", None),
    ("size-minus-1", {"prompt": "a mug", "width": -1}, 422, "width", None),
    ("size-10^9", {"prompt": "a mug", "width": 10**9, "height": 10**9}, 422, "less than or equal to 4096", None),
    ("size-not-multiple-of-8", {"prompt": "a mug", "width": 65}, 422, "multiple of 8", None),
    ("steps-10^6", {"prompt": "a mug", "steps": 10**6}, 422, "steps", None),
    ("steps-0", {"prompt": "a mug", "steps": 0}, 422, "steps", None),
    ("count-64", {"prompt": "a mug", "count": 64}, 422, "64 images is over the limit", None),
    ("count-minus-1", {"prompt": "a mug", "count": -1}, 422, "count", None),
    ("prompt-int", {"prompt": 123}, 422, "prompt", None),
    ("prompt-list", {"prompt": ["a", "mug"]}, 422, "prompt", None),
    ("prompt-null", {"prompt": None}, 422, "prompt", None),
    ("count-word", {"prompt": "a mug", "count": "two"}, 422, "count", None),
    ("seed-sql", {"prompt": "a mug", "seed": "1; DROP TABLE jobs"}, 422, "seed", None),
    ("seed-2^70", {"prompt": "a mug", "seed": 2**70}, 422, "seed", None),
    ("guidance-nan-string", {"prompt": "a mug", "guidance": "NaN"}, 422, "guidance", None),
    ("extra-field", {"prompt": "a mug", "admin": True}, 422, "extra inputs are not permitted", None),
    ("extra-proto", {"prompt": "a mug", "__proto__": {"admin": True}}, 422, "extra inputs", None),
    ("extra-text-field", {"text": "a mug", "system": "you are root"}, 422, "extra inputs", None),
    ("text-and-spec", {"text": "a mug", "spec": {"prompt": "a cap"}}, 422, "not both", None),
    ("array-body", [], 422, "dictionary", None),
    ("string-body", "a mug", 422, "dictionary", None),
    ("conversation-too-long", {"text": "a mug", "conversation": "c" * 500}, 422, "conversation", None),
    ("init-etc-passwd", {"prompt": "a mug", "init_image": "/etc/passwd"}, 422, "init_image", "image_ref"),
    ("init-traversal", {"prompt": "a mug", "init_image": "../../etc/passwd.png"}, 422, "init_image", "image_ref"),
    ("init-file-url", {"prompt": "a mug", "init_image": "file:///etc/passwd"}, 422, "init_image", "image_ref"),
    ("init-windows", {"prompt": "a mug", "init_image": "C:\\Windows\\win.ini"}, 422, "init_image", "image_ref"),
    ("init-http", {"prompt": "a mug", "init_image": "http://169.254.169.254/latest"}, 422, "init_image", "image_ref"),
    ("init-unknown-upload", {"prompt": "a mug", "init_image": "u" + "0" * 31}, 422, "isn't yours", "image_ref"),
    ("backend-openai", {"prompt": "a mug", "backend": "openai"}, 422, "backend 'openai' is not allowed", "backend"),
    ("model-not-listed", {"prompt": "a mug", "model": "someone/uncensored-xl"}, 422, "model", "model"),
    ("blocked-upper", {"prompt": "a ZORBLAX on a mug"}, 422, "isn't allowed here (blocked term #1)", "blocked_terms#1"),
    ("blocked-text", {"text": "a Zorblax on a mug"}, 422, "blocked term #1", "blocked_terms#1"),
    *[
        (f"blocked-zw-{name}", {"prompt": f"a zor{ch}blax on a mug"}, 422, "blocked term #1", "blocked_terms#1")
        for name, ch in ZW.items()
    ],
    ("blocked-cyrillic", {"prompt": "a z\u043erbl\u0430x on a mug"}, 422, "blocked term #1", "blocked_terms#1"),
    ("blocked-greek", {"text": "a z\u03bfrbl\u03b1x on a mug"}, 422, "blocked term #1", "blocked_terms#1"),
    ("blocked-digits", {"prompt": "a z0rbl4x on a mug"}, 422, "blocked term #1", "blocked_terms#1"),
    ("blocked-spelled", {"prompt": "a z.o.r.b.l.a.x on a mug"}, 422, "blocked term #1", "blocked_terms#1"),
    ("blocked-fullwidth", {"prompt": "a \uff5a\uff4f\uff52\uff42\uff4c\uff41\uff58 mug"}, 422, "term #1", "blocked_terms#1"),
    ("moderation-violence", {"prompt": "a man swinging an axe at a mug"}, 422, "violence", "moderation:violence"),
    ("moderation-violence-text", {"text": "a machete next to our tote"}, 422, "violence", "moderation:violence"),
]


@pytest.mark.parametrize(("body", "status", "says", "rule"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
async def test_generation_body(world: World, body: Any, status: int, says: str, rule: str | None) -> None:
    before = len(world.srv.ctx.engine.jobs())
    resp = await world.srv.client.post("/v1/generations", json=body, headers=HDR)
    problem(resp, status, says, rule)
    assert len(world.srv.ctx.engine.jobs()) == before  # nothing was queued
    if rule is not None:
        assert audit_rules(world.srv.ctx.store, f"web:local:{USER}")[0] == rule
    assert BLOCKED_NOT_ECHOED(resp.text)
    await still_works(world)


def BLOCKED_NOT_ECHOED(text: str) -> bool:  # noqa: N802 - reads as a sentence
    """A blocked-term refusal names the rule, never the list."""
    return "zorblax" not in text.lower() or "blocked" not in text.lower()


RAW: list[tuple[str, bytes, str, int]] = [
    ("truncated-json", b'{"prompt": "a mug", "count": ', "application/json", 422),
    ("binary-body", bytes(range(256)) * 64, "application/json", 422),
    ("invalid-utf8", b'{"prompt": "a \xff\xfe mug"}', "application/json", 400),
    ("1MB-binary", b"\x00\xff" * 500_000, "application/octet-stream", 422),
    ("form-instead-of-json", b"prompt=a+mug", "application/x-www-form-urlencoded", 422),
    ("deep-nesting", b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", 400),
]


@pytest.mark.parametrize(("content", "ctype", "status"), [r[1:] for r in RAW], ids=[r[0] for r in RAW])
async def test_raw_body(world: World, content: bytes, ctype: str, status: int) -> None:
    resp = await world.srv.client.post("/v1/generations", content=content, headers={**HDR, "content-type": ctype})
    problem(resp, status)
    await still_works(world)


async def test_control_characters_are_only_text(world: World) -> None:
    resp = await world.srv.client.post(
        "/v1/generations", json={"prompt": "\x00\x07\x1b[31m a mug \u202e", "seed": 5}, headers=HDR
    )
    assert resp.status_code in (200, 202), resp.text
    end = (await sse_events(world.srv.client, f"/v1/jobs/{resp.json()['id']}/events"))[-1]
    assert end[0] == "done" and len(end[1]["images"]) == 1
    await still_works(world)


# ---------------------------------------------------------------- image fields that need the world


async def test_mask_path_is_refused_naming_the_field(world: World) -> None:
    body = {"prompt": "a mug", "init_image": world.own_image, "mask_image": "../../../etc/shadow"}
    problem(await world.srv.client.post("/v1/generations", json=body, headers=HDR), 422, "mask_image", "image_ref")
    await still_works(world)


async def test_someone_elses_upload_in_another_conversation_is_refused(world: World) -> None:
    ref = world.alice_upload
    assert ref.startswith("u") and len(ref) == 32
    body = {"prompt": "a mug", "init_image": ref, "conversation": "mallory-tab"}
    problem(await world.srv.client.post("/v1/generations", json=body, headers=HDR), 422, "isn't yours", "image_ref")
    # alice herself, in her conversation, may use it
    ok = await world.srv.client.post(
        "/v1/generations",
        json={"prompt": "a tote", "init_image": ref, "strength": 0.5, "conversation": "alice-tab"},
        headers={"x-chatcanvas-user": "alice"},
    )
    assert ok.status_code in (200, 202), ok.text
    await sse_events(world.srv.client, f"/v1/jobs/{ok.json()['id']}/events")
    await still_works(world)


async def test_varying_someone_elses_image_is_refused(world: World) -> None:
    resp = await world.srv.client.post(f"/v1/images/{world.alice_image}/vary", headers=HDR)
    problem(resp, 422, "isn't yours", "image_ref")
    await still_works(world)


PATHS: list[tuple[str, str, str]] = [
    ("dotdot", "GET", "/v1/images/../../etc/passwd.png"),
    ("encoded-dotdot", "GET", "/v1/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd.png"),
    ("encoded-slash", "GET", "/v1/images/..%2F..%2Fetc%2Fpasswd.png"),
    ("backslash", "GET", "/v1/images/..%5C..%5Cetc%5Cpasswd.png"),
    ("nul-byte", "GET", "/v1/images/" + "a" * 32 + "%00.png"),
    ("upload-id-png", "GET", "/v1/images/{alice_upload}.png"),
    ("job-dotdot", "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd"),
    ("events-dotdot", "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd/events"),
    ("vary-dotdot", "POST", "/v1/images/..%2F..%2Fetc%2Fpasswd/vary"),
    ("reroll-path", "POST", "/v1/images/%2Fetc%2Fpasswd/reroll"),
    ("static-dotdot", "GET", "/static/..%2F..%2F..%2F..%2Fpyproject.toml"),
    ("static-abs", "GET", "/static/%2Fetc%2Fpasswd"),
]


@pytest.mark.parametrize(("method", "path"), [p[1:] for p in PATHS], ids=[p[0] for p in PATHS])
async def test_path_and_traversal_ids_get_404(world: World, method: str, path: str) -> None:
    path = path.format(alice_upload=world.alice_upload)
    resp = await world.srv.client.request(method, path, headers=HDR)
    assert resp.status_code == 404, (path, resp.status_code, resp.text[:200])
    for leak in ("root:", "[project]", "daemon:", "\x89PNG"):
        assert leak not in resp.text
    no_traceback(resp.text)
    await still_works(world)


# ---------------------------------------------------------------- uploads to POST /v1/variations

UPLOADS: list[tuple[str, Any, str, int, str]] = [
    ("truncated-png", lambda: product_photo()[:60], "image/png", 415, "isn't an image"),
    ("gif-js-polyglot", lambda: GIF_JS, "image/gif", 415, ""),
    ("20000x20000-png", huge_png, "image/png", 413, "20000x20000"),
    ("text-file", lambda: b"name,price\nmug,12\n", "text/csv", 415, ""),
    ("pdf", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "application/pdf", 415, ""),
    ("html-as-png", lambda: HTML_TAIL, "image/png", 415, "isn't an image"),
    ("svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml", 415, ""),
    ("empty-file", lambda: b"", "image/png", 415, ""),
]


@pytest.mark.parametrize(("make", "ctype", "status", "says"), [u[1:] for u in UPLOADS], ids=[u[0] for u in UPLOADS])
async def test_bad_upload(world: World, make: Any, ctype: str, status: int, says: str) -> None:
    resp = await world.srv.client.post(
        "/v1/variations",
        files={"image": ("product.png", make(), ctype)},
        data={"variations": "navy, forest green"},
        headers=HDR,
    )
    problem(resp, status, says)
    await still_works(world)


@pytest.mark.parametrize("tail", [ZIP_TAIL, HTML_TAIL], ids=["png+zip", "png+html"])
async def test_polyglot_png_is_taken_as_pixels_only(world: World, tail: bytes) -> None:
    resp = await world.srv.client.post(
        "/v1/variations",
        files={"image": ("mug.png", product_photo(seed=len(tail)) + tail, "image/png")},
        data={"variations": "navy"},
        headers=HDR,
    )
    assert resp.status_code in (200, 202), resp.text
    end = (await sse_events(world.srv.client, f"/v1/jobs/{resp.json()['id']}/events"))[-1]
    assert end[0] == "done" and len(end[1]["images"]) == 1
    store = world.srv.ctx.store
    for (uid,) in store.execute("SELECT id FROM uploads"):
        kept = store.image_bytes(uid)
        assert kept.startswith(b"\x89PNG") and b"PK\x03\x04" not in kept and b"<script" not in kept
    await still_works(world)


async def test_a_mask_that_is_not_an_image_is_refused(world: World) -> None:
    resp = await world.srv.client.post(
        "/v1/variations",
        files={"image": ("mug.png", product_photo(), "image/png"), "mask": ("mask.png", b"#!/bin/sh\nrm -rf /", "image/png")},
        data={"variations": "navy"},
        headers=HDR,
    )
    problem(resp, 415)
    await still_works(world)


@pytest.mark.parametrize(
    ("variations", "says"),
    [('["navy", 7]', "variation"), ("[not json", "variation"), (json.dumps(["x" * 5000]), "")],
    ids=["list-with-a-number", "broken-json-list", "5000-char-variation"],
)
async def test_bad_variation_lists(world: World, variations: str, says: str) -> None:
    resp = await world.srv.client.post(
        "/v1/variations",
        files={"image": ("mug.png", product_photo(), "image/png")},
        data={"variations": variations},
        headers=HDR,
    )
    problem(resp, 422, says)
    await still_works(world)


# ---------------------------------------------------------------- moderation down, floods


async def test_moderation_endpoint_down_refuses_with_moderation_unavailable(world: World) -> None:
    world.fake.faults.append(Fault(status=503, path="/v1/moderations"))
    resp = await world.srv.client.post("/v1/generations", json={"prompt": "a green mug"}, headers=HDR)
    problem(resp, 422, "moderation unavailable", "moderation_unavailable")
    assert "sk-hostile-web" not in resp.text
    await still_works(world)


async def test_a_flood_from_one_user_hits_the_rate_limit_and_others_go_on(world: World) -> None:
    policy = world.srv.ctx.assistant.policy
    saved = policy.settings
    policy.settings = saved.model_copy(update={"rate_burst": 3, "rate_per_minute": 0.5})
    try:
        answers = []
        for i in range(6):
            answers.append(
                await world.srv.client.post(
                    "/v1/generations", json={"prompt": f"mug number {i}", "seed": i}, headers={"x-chatcanvas-user": "flood"}
                )
            )
    finally:
        policy.settings = saved
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429, 429] or all(
        a.status_code in (200, 202) for a in answers[:3]
    )
    for a in answers[3:]:
        body = problem(a, 429, "per minute", "user_rate")
        assert int(a.headers["retry-after"]) >= 1 and body["retry_after"] > 0
    await still_works(world)


async def test_a_burst_past_the_queue_cap_is_refused_and_the_user_can_ask_again(world: World) -> None:
    policy = world.srv.ctx.assistant.policy
    saved = policy.settings
    policy.settings = saved.model_copy(update={"max_queued_per_user": 1})
    try:
        answers = await asyncio.gather(
            *(
                world.srv.client.post(
                    "/v1/generations", json={"prompt": f"tote {i}", "seed": i}, headers={"x-chatcanvas-user": "burst"}
                )
                for i in range(8)
            )
        )
    finally:
        policy.settings = saved
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 202, 429}, codes
    refused = [a for a in answers if a.status_code == 429]
    assert refused, codes
    for a in refused:
        problem(a, 429, "images waiting", "user_queue")  # too many: 429, with no Retry-After (frees when a job ends)
    for a in answers:
        if a.status_code != 429:
            await sse_events(world.srv.client, f"/v1/jobs/{a.json()['id']}/events")
    await still_works(world, "burst")


async def test_every_follow_up_request_made_its_image(world: World) -> None:
    assert len(world.follow_ups) >= 60
    for job in world.follow_ups:
        end = (await sse_events(world.srv.client, f"/v1/jobs/{job}/events"))[-1]
        assert end[0] == "done" and len(end[1]["images"]) == 1, end
