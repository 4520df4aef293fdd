"""``/imagine admin ...`` through real Bolt over HTTP: admins checked with ``users.info`` against the fake Web
API (or listed in CHATCANVAS_SLACK_ADMINS), answers on the command's response_url, bans and pauses enforced."""

from __future__ import annotations

from typing import Any

import pytest

from tests.adapters.slack.conftest import SlackServer, running_server
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_requests import slash_command


async def admin_says(server: SlackServer, api: FakeSlackAPI, user: str, text: str) -> str:
    """Send ``/imagine admin <text>`` as ``user``; the ephemeral answer that came back on response_url."""
    before = len(api.responses)
    status, body, _ = await server.command(slash_command(f"admin {text}", user=user, response_url=api.response_url()))
    assert status == 200 and body == ""  # an empty ack; the answer comes after it
    await api.wait_for("response_url", count=before + 1, within=60)
    answer = api.responses[before]
    assert answer.get("response_type") == "ephemeral"
    return str(answer["text"])


@pytest.mark.parametrize("role", ["is_admin", "is_owner", "is_primary_owner"])
async def test_a_workspace_admin_bans_someone_who_is_then_refused(
    slack_server: SlackServer, slack_api: FakeSlackAPI, role: str
) -> None:
    slack_api.users["UBOSS"] = {role: True}
    said = await admin_says(slack_server, slack_api, "UBOSS", "ban <@U2|pat> posting spam")
    assert "Banned slack:U2" in said
    (check,) = slack_api.calls_to("users.info")
    assert check.params["user"] == "UBOSS"

    status, body, _ = await slack_server.command(slash_command("a red mug", user="U2"))
    assert status == 200 and "blocked you" in body and "rule: banned" in body
    status, body, _ = await slack_server.command(slash_command("a red mug", user="U3"))
    assert body == ""  # someone else still may

    assert "Unbanned slack:U2" in await admin_says(slack_server, slack_api, "UBOSS", "unban U2")
    status, body, _ = await slack_server.command(slash_command("a red mug", user="U2"))
    assert body == ""
    await slack_server.bridge.drain()


async def test_a_plain_member_is_refused_and_nothing_changes(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    said = await admin_says(slack_server, slack_api, "U7", "pause openai")
    assert "Only workspace admins and owners" in said
    said = await admin_says(slack_server, slack_api, "U7", "ban <@U2>")
    assert "Only workspace admins and owners" in said
    controls = slack_server.ctx.assistant.admin.controls
    assert controls.paused() == {} and controls.bans() == []


async def test_an_admin_listed_in_settings_pauses_a_backend_and_sees_the_queue(
    slack_settings: Any, slack_api: FakeSlackAPI
) -> None:
    async with running_server(slack_settings.model_copy(update={"slack_admins": ["U9"]})) as server:
        said = await admin_says(server, slack_api, "U9", "pause local the GPU needs a rest")
        assert "Paused local" in said
        assert slack_api.calls_to("users.info") == []  # listed: no need to ask Slack

        status, body, _ = await server.command(slash_command("a blue cap", user="U1"))
        assert body == ""
        refusal = await slack_api.wait_for("chat.postEphemeral", within=60)
        assert "rule: paused" in refusal[0].params["text"] and refusal[0].params["user"] == "U1"

        queue = await admin_says(server, slack_api, "U9", "queue")
        assert "Paused: local" in queue and "Nothing is running or waiting" in queue
        assert "Resumed local" in await admin_says(server, slack_api, "U9", "resume local")
        assert "no backend 'dalle'" in await admin_says(server, slack_api, "U9", "pause dalle")
        assert "Usage:" in await admin_says(server, slack_api, "U9", "reboot")
        assert "Name the user" in await admin_says(server, slack_api, "U9", "ban pat")
        usage = await admin_says(server, slack_api, "U9", "usage")
        assert "No usage recorded" in usage
        await server.bridge.drain()
