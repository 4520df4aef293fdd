"""``chatcanvas doctor``: the real command on the defaults and with a broken setting; the live platform
checks against the local fakes of Slack, Discord and OpenAI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from chatcanvas.config import Settings
from chatcanvas.ops.doctor import Check, check_discord, check_openai, check_slack, format_check
from tests.cli_runner import Ran, chatcanvas
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI

DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"


def doctor(tmp: Path, *args: str, **env: str) -> Ran:
    """``chatcanvas doctor ARGS`` (in this process: tests/cli_runner.py)."""
    ours = ("CHATCANVAS_", "SLACK_", "DISCORD_", "OPENAI_")
    e = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    e.update({"HF_HUB_OFFLINE": "1", "CHATCANVAS_DATA_DIR": str(tmp / "data"), **env})
    return chatcanvas(tmp, "doctor", *args, env=e)


def test_doctor_passes_on_the_defaults_demo_model_and_no_tokens(tmp_path: Path) -> None:
    p = doctor(tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("✓ configuration") and "demo model" in lines[0]
    assert any(x.startswith("✓ data folder") and "writable" in x for x in lines)
    assert any(x.startswith("✓ model") and "64x64" in x and "1 step" in x for x in lines)
    for platform, var in (("Slack", "SLACK_BOT_TOKEN"), ("Discord", "DISCORD_TOKEN"), ("OpenAI", "OPENAI_API_KEY")):
        assert any(x.startswith(f"- {platform}: skipped") and var in x for x in lines), platform
    assert lines[-1] == "All required checks passed."


def test_doctor_fails_naming_every_broken_setting(tmp_path: Path) -> None:
    p = doctor(tmp_path, CHATCANVAS_MAX_STEPS="-3", CHATCANVAS_LOG_FORMAT="yaml")
    assert p.returncode == 1, p.stdout + p.stderr
    first = p.stdout.splitlines()[0]
    assert first.startswith("✗ configuration") and "CHATCANVAS_MAX_STEPS" in first and "CHATCANVAS_LOG_FORMAT" in first
    assert "fix: set CHATCANVAS_" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr
    assert p.stdout.splitlines()[-1] == "1 required check(s) failed."


def test_doctor_fails_on_an_unwritable_data_folder(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file, not a folder")
    p = doctor(tmp_path, "--skip-model", "--offline")
    assert p.returncode == 1
    (line,) = [x for x in p.stdout.splitlines() if x.startswith("✗ data folder")]
    assert str(tmp_path / "data") in line and "CHATCANVAS_DATA_DIR" in p.stdout


async def test_slack_auth_test_live_and_refused(tmp_path: Path) -> None:
    async with FakeSlackAPI() as api:
        s = Settings(data_dir=tmp_path, slack_bot_token=BOT_TOKEN, slack_signing_secret="s3cret-s", slack_api_url=api.api_url)
        ok = await check_slack(s, live=True)
        assert ok.ok is True and "team Test" in ok.detail
        assert api.calls_to("auth.test")

        bad = await check_slack(s.model_copy(update={"slack_bot_token": "xoxb-revoked"}), live=True)
        assert bad.ok is False and "invalid_auth" in bad.detail and bad.fix
        offline = await check_slack(s, live=False)
        assert offline.ok is None and "--offline" in offline.detail

    shape = await check_slack(Settings(data_dir=tmp_path, slack_bot_token="xoxp-user-token"), live=True)
    assert shape.ok is False and "xoxb-" in shape.detail
    gone = await check_slack(
        Settings(data_dir=tmp_path, slack_bot_token=BOT_TOKEN, slack_app_token="xapp-1", slack_api_url="http://127.0.0.1:9/api/"),
        live=True,
    )
    assert gone.ok is None and "127.0.0.1" in gone.detail  # no network: a note, not a failure


async def test_discord_users_me_live(tmp_path: Path) -> None:
    from tests.fakes.discord_wire import FakeDiscord

    fake = await FakeDiscord().start()
    try:
        c = await check_discord(Settings(data_dir=tmp_path, discord_token=DISCORD_TOKEN), True, fake.api_base)
        assert c.ok is True and "chatcanvas" in c.detail
    finally:
        await fake.stop()
    shape = await check_discord(Settings(data_dir=tmp_path, discord_token="not-a-token"), True)
    assert shape.ok is False and "Developer Portal" in shape.fix


def test_openai_models_live(tmp_path: Path) -> None:
    import asyncio

    with FakeOpenAI(model="dall-e-3") as fake:
        key = "sk-test-0123456789abcdef"
        s = Settings(data_dir=tmp_path, backend="openai", openai_api_key=key, openai_base_url=fake.base_url)
        ok = asyncio.run(check_openai(s, live=True))
        assert ok.ok is True and "dall-e-3 among them" in ok.detail
        missing = asyncio.run(check_openai(s.model_copy(update={"openai_image_model": "gpt-image-1"}), live=True))
        assert missing.ok is False and "gpt-image-1" in missing.detail
        fake.route("GET", "/v1/models", lambda rec: Reply(status=401, body={"error": {"message": "bad key"}}))
        refused = asyncio.run(check_openai(s, live=True))
        assert refused.ok is False and "401" in refused.detail
    no_key = asyncio.run(check_openai(Settings(data_dir=tmp_path, backend="openai"), live=True))
    assert no_key.ok is False and "OPENAI_API_KEY" in no_key.detail


@pytest.mark.parametrize(
    ("check", "start"),
    [
        (Check("model", True, "fine"), "✓ model: fine"),
        (Check("Slack", None, "not configured", required=False), "- Slack: skipped: not configured"),
        (Check("data folder", False, "full", "free some space"), "✗ data folder: full\n    fix: free some space"),
    ],
)
def test_one_line_per_check(check: Check, start: Any) -> None:
    assert format_check(check) == start
