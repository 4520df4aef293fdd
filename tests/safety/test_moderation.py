"""OpenAI moderation through the real SDK against the local fake server, over a socket."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from chatcanvas.config import Settings, load_settings
from chatcanvas.safety.moderation import Moderator
from tests.fakes.openai_server import FakeOpenAI, Fault


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.moderation_flags["violence"] = ["axe", "stab"]
        server.moderation_flags["harassment"] = ["idiot"]
        yield server


def settings_for(tmp_path: Path, fake: FakeOpenAI, **kw: object) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        openai_api_key="sk-test-moderation-key-123456",
        openai_base_url=fake.base_url,
        **kw,
    )


def test_on_by_default_with_an_api_key_only(cfg: Settings) -> None:
    assert not cfg.moderation_enabled
    assert cfg.model_copy(update={"openai_api_key": "sk-x"}).moderation_enabled
    assert not cfg.model_copy(update={"openai_api_key": "sk-x", "moderation": "off"}).moderation_enabled
    assert cfg.model_copy(update={"moderation": "openai"}).moderation_enabled


async def test_flagged_request_is_refused_naming_categories(tmp_path: Path, fake: FakeOpenAI) -> None:
    mod = Moderator(settings_for(tmp_path, fake))
    try:
        verdict = await mod.check("a knight with an AXE, calling the dragon an idiot")
        ok = await mod.check("a red mug on a wooden table")
    finally:
        await mod.aclose()
    assert not verdict.allowed and verdict.flagged
    assert verdict.categories == ("harassment", "violence")
    assert verdict.reason is not None and "moderation: harassment, violence" in verdict.reason
    assert verdict.rule == "moderation:harassment,violence"
    assert ok.allowed and ok.checked and ok.reason is None and ok.rule is None
    [first, _] = fake.requests_to("/v1/moderations")
    assert first.json == {"model": "omni-moderation-latest", "input": "a knight with an AXE, calling the dragon an idiot"}
    assert first.headers["authorization"] == "Bearer sk-test-moderation-key-123456"


async def test_images_go_with_the_text(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.moderation_flag_images.append("sexual")
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), (10, 120, 200)).save(buf, format="JPEG")
    mod = Moderator(settings_for(tmp_path, fake))
    try:
        verdict = await mod.check("recolour this", images=[buf.getvalue()])
    finally:
        await mod.aclose()
    assert not verdict.allowed and verdict.categories == ("sexual",)
    parts = fake.requests_to("/v1/moderations")[0].json["input"]
    assert parts[0] == {"type": "text", "text": "recolour this"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


async def test_endpoint_failure_refuses_as_unavailable(
    tmp_path: Path, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.faults.append(Fault(status=500, path="/v1/moderations"))
    mod = Moderator(settings_for(tmp_path, fake, moderation_max_retries=0))
    try:
        with caplog.at_level(logging.WARNING):
            verdict = await mod.check("a red mug")
    finally:
        await mod.aclose()
    assert not verdict.allowed and not verdict.flagged and not verdict.checked
    assert verdict.reason is not None and "moderation unavailable" in verdict.reason
    assert verdict.rule == "moderation_unavailable"
    assert "moderation unavailable" in caplog.text


async def test_endpoint_failure_allowed_when_configured(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.faults.append(Fault(status=503, path="/v1/moderations"))
    mod = Moderator(settings_for(tmp_path, fake, moderation_max_retries=0, moderation_on_error="allow"))
    try:
        verdict = await mod.check("a knight with an axe")
    finally:
        await mod.aclose()
    assert verdict.allowed and not verdict.checked and verdict.error


async def test_sdk_retries_from_settings(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.faults.append(Fault(status=500, path="/v1/moderations", headers={"retry-after-ms": "10"}))
    mod = Moderator(settings_for(tmp_path, fake, moderation_max_retries=1))
    try:
        verdict = await mod.check("a knight with an axe")
    finally:
        await mod.aclose()
    assert len(fake.requests_to("/v1/moderations")) == 2
    assert verdict.flagged and verdict.categories == ("violence",)


async def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(
        data_dir=tmp_path, moderation="openai", openai_base_url=f"http://127.0.0.1:{port}/v1", moderation_max_retries=0
    )
    mod = Moderator(settings)
    try:
        verdict = await mod.check("a red mug")
    finally:
        await mod.aclose()
    assert not verdict.allowed and verdict.rule == "moderation_unavailable"


async def test_off_makes_no_request(tmp_path: Path, fake: FakeOpenAI) -> None:
    mod = Moderator(settings_for(tmp_path, fake, moderation="off"))
    verdict = await mod.check("a knight with an axe")
    assert verdict.allowed and not verdict.checked
    assert fake.requests_to("/v1/moderations") == []
