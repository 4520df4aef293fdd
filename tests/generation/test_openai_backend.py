"""The OpenAI image backend against the local OpenAI-compatible fake server (real SDK, real sockets)."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from chatcanvas.config import Settings
from chatcanvas.errors import BackendError, ConfigError, ContentPolicyRefusal, JobCancelled, SpecError
from chatcanvas.generation.base import StepInfo
from chatcanvas.generation.metadata import parameters_from_png, recipe_from_png
from chatcanvas.generation.openai_backend import OpenAIBackend
from chatcanvas.generation.openai_models import MODELS, nearest_size
from chatcanvas.store import Store
from chatcanvas.types import ImageSpec, Mode
from tests.fakes.openai_server import FakeOpenAI, Fault, Recorded, Reply, tiny_png

GEN = "/v1/images/generations"
EDIT = "/v1/images/edits"


@pytest.fixture
def fake() -> Any:
    with FakeOpenAI() as f:
        yield f


def make_settings(tmp_path: Path, fake: FakeOpenAI, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "openai_base_url": fake.base_url,
        "openai_api_key": "sk-test",
        "openai_timeout_s": 10.0,
    }
    base.update(kw)
    return Settings(**base)


def pixels(png: bytes) -> tuple[tuple[int, int], str, bytes]:
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        return im.size, im.mode, im.tobytes()


def chunks(png: bytes, kind: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        if png[pos + 4 : pos + 8] == kind:
            out.append(png[pos : pos + 12 + n])
        pos += 12 + n
    return out


def b64_reply(*pngs: bytes, revised: str | None = None) -> Reply:
    data = [
        {"b64_json": base64.b64encode(p).decode(), **({"revised_prompt": revised} if revised else {})}
        for p in pngs
    ]
    return Reply(body={"created": int(time.time()), "data": data})


def policy_fault(code: str, message: str) -> Fault:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return Fault(status=400, body=body, path=GEN)


# ---------------------------------------------------------------- generations


async def test_b64_generation_keeps_the_server_image_and_the_revised_prompt(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    served = tiny_png(24, 16, (10, 120, 200))
    fake.images_script.append(b64_reply(served, revised="A red fox in a tweed jacket reading a broadsheet."))
    backend = OpenAIBackend(make_settings(tmp_path, fake))

    [img] = await backend.generate([ImageSpec(prompt="a fox reading a newspaper", seed=7)])

    assert pixels(img.png) == pixels(served)
    assert chunks(img.png, b"IDAT") == chunks(served, b"IDAT")  # image data byte for byte
    r = img.recipe
    assert (r.backend, r.model, r.sampler, r.seed) == ("openai", "dall-e-3", "openai", 7)
    assert r.revised_prompt == "A red fox in a tweed jacket reading a broadsheet."
    assert r.cost_usd == pytest.approx(0.04)
    params = parameters_from_png(img.png)
    assert params["prompt"] == "a fox reading a newspaper"
    assert params["Revised prompt"] == r.revised_prompt
    assert recipe_from_png(img.png) == r
    [req] = fake.requests_to(GEN)
    assert req.json == {
        "prompt": "a fox reading a newspaper",
        "model": "dall-e-3",
        "n": 1,
        "size": "1024x1024",
        "quality": "standard",
        "response_format": "b64_json",
    }
    assert req.headers["authorization"] == "Bearer sk-test"


async def test_url_response_is_fetched(tmp_path: Path, fake: FakeOpenAI) -> None:
    served = tiny_png(16, 16, (0, 200, 0))
    fake.route("GET", "/files/fox.png", lambda rec: Reply(body=served, headers={"Content-Type": "image/png"}))
    url = f"http://127.0.0.1:{fake.port}/files/fox.png"
    fake.images_script.append(
        Reply(body={"created": 1, "data": [{"url": url, "revised_prompt": "A green fox."}]})
    )
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_response_format="url"))

    [img] = await backend.generate([ImageSpec(prompt="a fox")])

    assert pixels(img.png) == pixels(served)
    assert img.recipe.revised_prompt == "A green fox."
    assert fake.requests_to(GEN)[0].json["response_format"] == "url"
    assert len(fake.requests_to("/files/fox.png")) == 1


async def test_url_download_is_retried_after_a_503(tmp_path: Path, fake: FakeOpenAI) -> None:
    served = tiny_png(12, 12, (240, 200, 0))
    answers = [Reply(status=503, body="busy"), Reply(body=served, headers={"Content-Type": "image/png"})]
    fake.route("GET", "/files/sun.png", lambda rec: answers.pop(0))
    url = f"http://127.0.0.1:{fake.port}/files/sun.png"
    fake.images_script.append(Reply(body={"created": 1, "data": [{"url": url}]}))
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_response_format="url"))

    [img] = await backend.generate([ImageSpec(prompt="a sunflower")])

    assert pixels(img.png) == pixels(served)
    assert len(fake.requests_to("/files/sun.png")) == 2


async def test_url_download_failing_past_the_budget_says_so(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.route("GET", "/files/gone.png", lambda rec: Reply(status=502, body="bad gateway"))
    url = f"http://127.0.0.1:{fake.port}/files/gone.png"
    fake.images_script.append(Reply(body={"created": 1, "data": [{"url": url}]}))
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_response_format="url", openai_max_retries=1))

    with pytest.raises(BackendError, match="Could not download the image the service made \\(HTTP 502\\)"):
        await backend.generate([ImageSpec(prompt="a sunflower")])
    assert len(fake.requests_to("/files/gone.png")) == 2


async def test_url_download_over_the_cap_fails_clearly(tmp_path: Path, fake: FakeOpenAI) -> None:
    big = tiny_png(512, 512) + b"\0" * 5000
    fake.route("GET", "/files/big.png", lambda rec: Reply(body=big))
    url = f"http://127.0.0.1:{fake.port}/files/big.png"
    fake.images_script.append(Reply(body={"created": 1, "data": [{"url": url}]}))
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_max_download_bytes=2048))

    with pytest.raises(BackendError, match="larger than the 2048 byte download limit"):
        await backend.generate([ImageSpec(prompt="a fox")])


async def test_not_an_image_fails_clearly(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.images_script.append(b64_reply(b"<html>nope</html>"))
    backend = OpenAIBackend(make_settings(tmp_path, fake))
    with pytest.raises(BackendError, match="isn't an image"):
        await backend.generate([ImageSpec(prompt="a fox")])


async def test_dalle3_count_runs_concurrent_single_requests(tmp_path: Path, fake: FakeOpenAI) -> None:
    # Every request waits until all three have arrived: sequential requests would never meet.
    barrier = threading.Barrier(3, timeout=10)

    def meet(rec: Recorded) -> Reply:
        barrier.wait()
        return b64_reply(tiny_png(), revised=f"take {rec.json['n']}")

    fake.images_script.extend([meet, meet, meet])
    steps: list[StepInfo] = []
    backend = OpenAIBackend(make_settings(tmp_path, fake))

    images = await backend.generate([ImageSpec(prompt="a fox", count=3)], steps.append)

    assert len(images) == 3
    assert [r.json["n"] for r in fake.requests_to(GEN)] == [1, 1, 1]
    assert [(s.step, s.total) for s in steps] == [(1, 3), (2, 3), (3, 3)]


async def test_gpt_image_1_batches_n_and_sends_no_response_format(tmp_path: Path, fake: FakeOpenAI) -> None:
    backend = OpenAIBackend(
        make_settings(tmp_path, fake, openai_image_model="gpt-image-1", openai_quality="high")
    )
    assert backend.supports_img2img and backend.supports_inpaint

    images = await backend.generate([ImageSpec(prompt="a tote bag", count=3, width=512, height=768)])

    assert len(images) == 3
    [req] = fake.requests_to(GEN)
    assert req.json == {
        "prompt": "a tote bag",
        "model": "gpt-image-1",
        "n": 3,
        "size": "1024x1536",
        "quality": "high",
    }
    assert images[0].recipe.cost_usd == pytest.approx(0.25)


async def test_dalle3_style_passes_through(tmp_path: Path, fake: FakeOpenAI) -> None:
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_style="natural", openai_quality="hd"))
    await backend.generate([ImageSpec(prompt="a mug", width=1024, height=576)])
    body = fake.requests_to(GEN)[0].json
    assert (body["style"], body["quality"], body["size"]) == ("natural", "hd", "1792x1024")


def test_capabilities_follow_the_model(tmp_path: Path, fake: FakeOpenAI) -> None:
    d3 = OpenAIBackend(make_settings(tmp_path, fake))
    d2 = OpenAIBackend(make_settings(tmp_path, fake, openai_image_model="dall-e-2"))
    assert (d3.supports_img2img, d3.supports_inpaint) == (False, False)
    assert (d2.supports_img2img, d2.supports_inpaint) == (False, True)
    assert OpenAIBackend.supports_inpaint is False  # the class default is untouched


def test_bad_quality_and_missing_key_are_config_errors(tmp_path: Path, fake: FakeOpenAI) -> None:
    with pytest.raises(ConfigError, match="CHATCANVAS_OPENAI_QUALITY.*standard, hd"):
        OpenAIBackend(make_settings(tmp_path, fake, openai_quality="ultra"))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIBackend(make_settings(tmp_path, fake, openai_api_key=None, openai_base_url=None))


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("model", "wh", "expected"),
    [
        ("dall-e-3", (512, 512), (1024, 1024)),
        ("dall-e-3", (768, 512), (1792, 1024)),  # 3:2 -> the wide one
        ("dall-e-3", (576, 1024), (1024, 1792)),
        ("dall-e-3", (1024, 896), (1024, 1024)),
        ("gpt-image-1", (768, 512), (1536, 1024)),
        ("gpt-image-1", (1024, 1792), (1024, 1536)),
        ("dall-e-2", (256, 256), (256, 256)),
        ("dall-e-2", (600, 600), (512, 512)),
        ("dall-e-2", (768, 512), (512, 512)),
        ("dall-e-2", (2048, 2048), (1024, 1024)),
    ],
)
def test_nearest_size(model: str, wh: tuple[int, int], expected: tuple[int, int]) -> None:
    assert nearest_size(*wh, MODELS[model].sizes) == expected


def test_resolve(tmp_path: Path, fake: FakeOpenAI) -> None:
    backend = OpenAIBackend(make_settings(tmp_path, fake, default_size="512x768"))
    r = backend.resolve(ImageSpec(prompt="x"))
    assert (r.width, r.height, r.model, r.backend) == (1024, 1792, "dall-e-3", "openai")
    r = backend.resolve(ImageSpec(prompt="x", model="dall-e-2", width=256))
    assert (r.width, r.height, r.model) == (256, 256, "dall-e-2")
    with pytest.raises(SpecError, match="dall-e-3 can't edit"):
        backend.resolve(ImageSpec(prompt="x", init_image="a.png"))
    with pytest.raises(SpecError, match="dall-e-2 can only edit inside a mask"):
        backend.resolve(ImageSpec(prompt="x", model="dall-e-2", init_image="a.png"))
    with pytest.raises(SpecError, match="dall-e-2 takes at most 1000"):
        backend.resolve(ImageSpec(prompt="x" * 1001, model="dall-e-2"))


# ---------------------------------------------------------------- edits


def _upload(tmp_path: Path, img: Image.Image) -> str:
    """The image stored as an upload in the data dir the tests' settings use; its id."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    store = Store(tmp_path / "data")
    try:
        return store.put_upload(buf.getvalue())
    finally:
        store.close()


def _product(tmp_path: Path) -> tuple[str, str]:
    """A grey tote with a blue square, and a mask over its left half (white = repaint); their ids."""
    img = Image.new("RGB", (64, 64), (200, 200, 200))
    img.paste((30, 30, 160), (16, 16, 48, 48))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    return _upload(tmp_path, img), _upload(tmp_path, mask)


async def test_gpt_image_1_edit_sends_image_and_mask_as_multipart(tmp_path: Path, fake: FakeOpenAI) -> None:
    img_path, mask_path = _product(tmp_path)
    fake.images_script.append(b64_reply(tiny_png(), tiny_png(color=(0, 0, 255)), revised="navy tote"))
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_image_model="gpt-image-1"))

    spec = ImageSpec(prompt="the tote in navy", init_image=img_path, mask_image=mask_path, count=2)
    images = await backend.generate([spec])

    assert len(images) == 2
    assert images[0].recipe.mode is Mode.INPAINT
    assert images[0].recipe.init_image == img_path and images[0].recipe.revised_prompt == "navy tote"
    [req] = fake.requests_to(EDIT)
    fields, files = req.form()
    assert fields["model"] == "gpt-image-1" and fields["n"] == "2" and fields["size"] == "1024x1024"
    assert "response_format" not in fields
    with Image.open(io.BytesIO(files["image"][1])) as sent:
        assert sent.size == (1024, 1024)
    with Image.open(io.BytesIO(files["mask"][1])) as sent_mask:
        alpha = sent_mask.getchannel("A")
        assert sent_mask.size == (1024, 1024)
        assert alpha.getpixel((100, 500)) == 0  # left half: transparent = repaint
        assert alpha.getpixel((900, 500)) == 255  # right half: kept


async def test_edits_are_priced_from_the_edits_table(tmp_path: Path, fake: FakeOpenAI) -> None:
    img_path, mask_path = _product(tmp_path)
    settings = make_settings(
        tmp_path,
        fake,
        openai_image_model="dall-e-2",
        prices={"dall-e-2": {"standard": {"512x512": 0.5}}},  # generations only
        edit_prices={"dall-e-2": {"standard": {"512x512": 0.03}}},
    )
    backend = OpenAIBackend(settings)
    [made] = await backend.generate([ImageSpec(prompt="a tote", width=512, height=512)])
    [edited] = await backend.generate(
        [ImageSpec(prompt="the tote in navy", init_image=img_path, mask_image=mask_path, width=512, height=512)]
    )
    assert made.recipe.cost_usd == pytest.approx(0.5)
    assert edited.recipe.cost_usd == pytest.approx(0.03)

    gpt = OpenAIBackend(make_settings(tmp_path, fake, openai_image_model="gpt-image-1"))
    [variation] = await gpt.generate([ImageSpec(prompt="the tote in forest green", init_image=img_path)])
    # medium 1024x1024: the output image ($0.042) plus the init image as 765 input tokens at $10/M
    assert variation.recipe.cost_usd == pytest.approx(0.042 + 0.00765)


async def test_gpt_image_1_variation_without_mask(tmp_path: Path, fake: FakeOpenAI) -> None:
    img_path, _ = _product(tmp_path)
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_image_model="gpt-image-1"))
    [img] = await backend.generate([ImageSpec(prompt="the tote in forest green", init_image=img_path)])
    assert img.recipe.mode is Mode.IMG2IMG
    _, files = fake.requests_to(EDIT)[0].form()
    assert set(files) == {"image"}


async def test_dalle2_edit_is_square(tmp_path: Path, fake: FakeOpenAI) -> None:
    img_path, mask_path = _product(tmp_path)
    backend = OpenAIBackend(
        make_settings(tmp_path, fake, openai_image_model="dall-e-2", openai_response_format="url")
    )
    spec = ImageSpec(prompt="navy", init_image=img_path, mask_image=mask_path, width=768, height=512)
    [img] = await backend.generate([spec])
    fields, files = fake.requests_to(EDIT)[0].form()
    assert fields["size"] == "512x512" and fields["response_format"] == "url" and "quality" not in fields
    assert img.recipe.cost_usd == pytest.approx(0.018)
    assert len(fake.requests) == 2  # the edit, then the image download


# ---------------------------------------------------------------- faults


QUICK = {"retry-after-ms": "10"}  # a server asking for a 10 ms wait: retries without the backoff


def stamped(arrivals: list[float]) -> Any:
    def reply(rec: Recorded) -> Reply:
        arrivals.append(time.monotonic())
        return b64_reply(tiny_png())

    return reply


async def test_429_with_retry_after_is_retried_after_the_wait_asked_for(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    arrivals: list[float] = []
    fake.faults.append(Fault(status=429, headers={"Retry-After": "2"}, path=GEN))
    fake.faults.append(Fault(status=503, headers={"retry-after-ms": "300"}, path=GEN))
    fake.images_script.append(stamped(arrivals))
    backend = OpenAIBackend(make_settings(tmp_path, fake))

    start = time.monotonic()
    [img] = await backend.generate([ImageSpec(prompt="a fox")])

    assert img.png and img.recipe.cost_usd == pytest.approx(0.04)
    assert len(fake.requests_to(GEN)) == 3
    # A lower bound only: the SDK's own backoff for two retries stays under 1.5 s.
    assert arrivals[0] - start >= 2.3


async def test_500_twice_then_ok_gives_the_image(tmp_path: Path, fake: FakeOpenAI) -> None:
    served = tiny_png(20, 12, (90, 40, 140))
    fake.faults.append(Fault(status=500, path=GEN))
    fake.faults.append(Fault(status=500, path=GEN))
    fake.images_script.append(b64_reply(served))

    [img] = await OpenAIBackend(make_settings(tmp_path, fake)).generate([ImageSpec(prompt="a plum")])

    assert pixels(img.png) == pixels(served)
    assert len(fake.requests_to(GEN)) == 3


async def test_5xx_past_the_budget_fails_clearly(tmp_path: Path, fake: FakeOpenAI) -> None:
    for _ in range(5):
        fake.faults.append(Fault(status=503, headers=QUICK, path=GEN))
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_max_retries=2))

    with pytest.raises(BackendError, match="The image service is unavailable .*HTTP 503") as err:
        await backend.generate([ImageSpec(prompt="a fox")])

    assert not isinstance(err.value, ContentPolicyRefusal)
    assert len(fake.requests_to(GEN)) == 3  # the first try + 2 retries


async def test_retry_after_longer_than_the_sdk_waits_gives_up_at_once(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.faults.append(Fault(status=429, headers={"Retry-After": "3600"}, path=GEN))
    with pytest.raises(BackendError, match="unavailable .*HTTP 429.*asked to wait 3600 s"):
        await OpenAIBackend(make_settings(tmp_path, fake)).generate([ImageSpec(prompt="a fox")])
    assert len(fake.requests_to(GEN)) == 1


async def test_insufficient_quota_is_not_retried(tmp_path: Path, fake: FakeOpenAI) -> None:
    body = {
        "error": {"message": "You exceeded your current quota.", "type": "x", "code": "insufficient_quota"}
    }
    fake.faults.append(Fault(status=429, body=body, path=GEN))
    with pytest.raises(BackendError, match="rejected the request: You exceeded your current quota"):
        await OpenAIBackend(make_settings(tmp_path, fake)).generate([ImageSpec(prompt="a fox")])
    assert len(fake.requests_to(GEN)) == 1


@pytest.mark.parametrize("code", ["content_policy_violation", "moderation_blocked"])
async def test_content_policy_refusal_names_why(tmp_path: Path, fake: FakeOpenAI, code: str) -> None:
    why = "Your request was rejected as a result of our safety system."
    fake.faults.append(policy_fault(code, why))
    backend = OpenAIBackend(make_settings(tmp_path, fake))

    with pytest.raises(ContentPolicyRefusal) as err:
        await backend.generate([ImageSpec(prompt="something not allowed")])

    assert str(err.value).startswith("The request was refused by the provider's content policy: ")
    assert why in str(err.value) and code in str(err.value)
    assert len(fake.requests_to(GEN)) == 1  # never retried


async def test_other_400_is_a_clear_rejection(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.faults.append(
        Fault(status=400, body={"error": {"message": "Invalid size.", "code": None}}, path=GEN)
    )
    with pytest.raises(BackendError, match="rejected the request: Invalid size.") as err:
        await OpenAIBackend(make_settings(tmp_path, fake)).generate([ImageSpec(prompt="a fox")])
    assert not isinstance(err.value, ContentPolicyRefusal)
    assert len(fake.requests_to(GEN)) == 1


async def test_bad_key_names_the_variable(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.faults.append(
        Fault(status=401, body={"error": {"message": "Incorrect API key provided."}}, path=GEN)
    )
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        await OpenAIBackend(make_settings(tmp_path, fake)).generate([ImageSpec(prompt="a fox")])


async def test_timeout_is_a_clear_failure(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.faults.append(Fault(delay=5.0, path=GEN))
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_timeout_s=0.5))
    with pytest.raises(BackendError, match="did not answer within 0 s|did not answer within 1 s"):
        await backend.generate([ImageSpec(prompt="a fox")])
    assert len(fake.requests_to(GEN)) == 1  # a timeout is not retried: the image may have been billed


async def test_dropped_connections_are_retried_then_unavailable(tmp_path: Path) -> None:
    # A server that takes each connection and hangs up before answering.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    settings = Settings(
        data_dir=tmp_path / "data",
        openai_base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1",
        openai_api_key="sk-test",
        openai_max_retries=1,
    )
    try:
        with pytest.raises(BackendError, match="unavailable \\(could not connect\\)"):
            await OpenAIBackend(settings).generate([ImageSpec(prompt="a fox")])
    finally:
        listener.close()
    assert len(accepted) == 2  # the first try + 1 retry


# ---------------------------------------------------------------- several calls for one request


async def test_dalle3_partial_failure_returns_and_charges_only_the_images_made(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    fake.faults.append(policy_fault("content_policy_violation", "This one was refused."))
    steps: list[StepInfo] = []
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_quality="hd"))

    images = await backend.generate([ImageSpec(prompt="three foxes in the snow", count=3)], steps.append)

    assert len(fake.requests_to(GEN)) == 3
    assert len(images) == 2
    assert [i.recipe.cost_usd for i in images] == [0.08, 0.08]
    assert [(s.step, s.total) for s in steps] == [(1, 3), (2, 3)]


async def test_dalle3_every_call_failing_raises_the_failure(tmp_path: Path, fake: FakeOpenAI) -> None:
    for _ in range(2):
        fake.faults.append(policy_fault("content_policy_violation", "Refused."))
    with pytest.raises(ContentPolicyRefusal, match="Refused."):
        await OpenAIBackend(make_settings(tmp_path, fake)).generate([ImageSpec(prompt="x", count=2)])
    assert len(fake.requests_to(GEN)) == 2


async def test_cancel_from_on_step_stops_the_rest(tmp_path: Path, fake: FakeOpenAI) -> None:
    release = threading.Event()

    def slow(rec: Recorded) -> Reply:
        release.wait(10)
        return b64_reply(tiny_png())

    fake.images_script.extend([lambda rec: b64_reply(tiny_png()), slow])
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_concurrency=1))

    def on_step(info: StepInfo) -> None:
        raise JobCancelled("stop")

    try:
        with pytest.raises(JobCancelled):
            await backend.generate([ImageSpec(prompt="a fox", count=2)], on_step)
    finally:
        release.set()
    await asyncio.sleep(0)


# ---------------------------------------------------------------- helpers


async def test_a_transparent_mask_is_taken_as_openai_style(tmp_path: Path, fake: FakeOpenAI) -> None:
    img_path, _ = _product(tmp_path)
    mask = Image.new("RGBA", (64, 64), (255, 255, 255, 255))
    mask.paste((0, 0, 0, 0), (32, 0, 64, 64))  # transparent right half = repaint (OpenAI's convention)
    backend = OpenAIBackend(make_settings(tmp_path, fake, openai_image_model="gpt-image-1"))

    spec = ImageSpec(prompt="navy", init_image=img_path, mask_image=_upload(tmp_path, mask))
    await backend.generate([spec])

    _, files = fake.requests_to(EDIT)[0].form()
    with Image.open(io.BytesIO(files["mask"][1])) as sent:
        alpha = sent.getchannel("A")
        assert (alpha.getpixel((100, 500)), alpha.getpixel((900, 500))) == (255, 0)


async def test_a_negative_prompt_is_said_in_words_not_dropped(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.images_script.append(b64_reply(tiny_png(16, 16, (200, 120, 10))))
    backend = OpenAIBackend(make_settings(tmp_path, fake))
    spec = ImageSpec(prompt="a lighthouse at dusk", negative_prompt="people, boats")  # as `--no people, boats` gives
    [img] = await backend.generate([spec])
    [req] = fake.requests_to(GEN)
    assert req.json["prompt"] == "a lighthouse at dusk. Without people, boats."
    assert (img.recipe.prompt, img.recipe.negative_prompt) == ("a lighthouse at dusk", "people, boats")
