"""The Bolt app over real HTTP, driven by signed requests, against the fake Slack Web API."""

from __future__ import annotations

import json
import time
from typing import Any

from chatcanvas.adapters.slack.blocks import ACTION_RECIPE, ACTION_VARY
from chatcanvas.generation.metadata import parameters_from_png
from chatcanvas.provenance.verify import verify_image
from tests.adapters.slack.conftest import SlackServer, running_server
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_requests import (
    block_actions,
    event_callback,
    form_body,
    form_headers,
    mention_event,
    slash_command,
)


def uploaded_pngs(api: FakeSlackAPI) -> list[bytes]:
    return [api.uploaded[f["id"]] for c in api.completed for f in c["files"]]


def button_values(api: FakeSlackAPI, action_id: str) -> list[str]:
    out = []
    for call in api.calls_to("chat.postMessage"):
        blocks = call.params.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        for block in blocks:
            for el in block.get("elements", []):
                if el.get("action_id") == action_id:
                    out.append(el["value"])
    return out


async def test_slash_command_acks_then_uploads_png_with_prompt(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    status, body, _ = await slack_server.command(slash_command("a red mug"))
    assert status == 200
    assert not [c for c in slack_api.methods() if c.startswith("files.")]  # acknowledged before any image was made
    assert body == ""  # empty ack: the answer goes to the thread, not back to the command

    done = await slack_api.wait_for("files.completeUploadExternal", within=180)
    await slack_server.bridge.drain()
    png = uploaded_pngs(slack_api)[0]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert verify_image(png).manifest == "valid"  # uploaded with its Content Credentials
    params = parameters_from_png(png)
    assert "red mug" in params["prompt"]

    # the thread: the request as its root, then progress, then the image inline with the prompt
    root = slack_api.calls_to("chat.postMessage")[0]
    assert (
        root.params["channel"] == "C1"
        and "a red mug" in root.params["text"]
        and "<@U1>" in root.params["text"]
    )
    thread_ts = done[0].params["thread_ts"]
    assert done[0].params["channel_id"] == "C1"
    assert "red mug" in done[0].params["initial_comment"]
    status_post = slack_api.calls_to("chat.postMessage")[1]
    assert status_post.params["thread_ts"] == thread_ts
    assert "Queued" in status_post.params["text"] or "Painting" in status_post.params["text"]
    updates = slack_api.calls_to("chat.update")
    assert updates and all(u.params["channel"] == "C1" for u in updates)
    assert updates[-1].params["text"].startswith("Done")
    assert root.at <= status_post.at
    # upload flow in the SDK's order: URL, bytes, complete
    methods = [m for m in slack_api.methods() if m.startswith("files.") or m == "upload"]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert int(slack_api.pending_uploads[slack_api.completed[0]["files"][0]["id"]]["length"]) == len(png)
    # buttons under the result, and the job is marked delivered
    image_ids = button_values(slack_api, ACTION_VARY)
    assert len(image_ids) == 1
    jobs = slack_server.ctx.engine.jobs()
    assert len(jobs) == 1 and jobs[0].delivered and jobs[0].where.thread == thread_ts


async def test_forged_or_stale_requests_get_401_and_do_nothing(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    fields = slash_command("a red mug")
    body = form_body(fields)
    for headers in (
        form_headers(body, secret="not-the-secret"),
        form_headers(body, timestamp=int(time.time()) - 6 * 60),  # replayed: older than 5 minutes
        {"Content-Type": "application/x-www-form-urlencoded"},  # unsigned
        {**form_headers(body), "X-Slack-Request-Timestamp": "yesterday"},
    ):
        status, _, _ = await slack_server.post(body, headers)
        assert status == 401
    # a body altered after signing
    headers = form_headers(body)
    status, _, _ = await slack_server.post(body.replace("red", "blue"), headers)
    assert status == 401
    await slack_server.bridge.drain()
    assert slack_api.calls == []
    assert slack_server.ctx.engine.jobs() == []


async def test_event_retry_generates_once(slack_server: SlackServer, slack_api: FakeSlackAPI) -> None:
    payload = event_callback(mention_event("a blue cap"), event_id="EvRETRY1")
    status, _, _ = await slack_server.event(payload)
    assert status == 200 and not [c for c in slack_api.methods() if c.startswith("files.")]
    for attempt in (1, 2):  # Slack's retries of the same event
        status, _, _ = await slack_server.event(payload, retry=attempt)
        assert status == 200
    await slack_api.wait_for("files.completeUploadExternal", within=180)
    await slack_server.bridge.drain()
    assert len(slack_server.ctx.engine.jobs()) == 1
    assert len(slack_api.completed) == 1
    # answered in a thread under the mention
    assert slack_api.completed[0]["thread_ts"] == payload["event"]["ts"]


async def test_vary_and_recipe_buttons(slack_server: SlackServer, slack_api: FakeSlackAPI) -> None:
    await slack_server.command(slash_command("a red mug"))
    await slack_api.wait_for("files.completeUploadExternal", within=180)
    await slack_server.bridge.drain()
    image_id = button_values(slack_api, ACTION_VARY)[0]
    thread_ts = slack_api.completed[0]["thread_ts"]

    press = block_actions(ACTION_VARY, image_id, thread_ts=thread_ts)
    status, _, _ = await slack_server.action(press)
    assert status == 200
    await slack_server.action(press)  # a double delivery of the same click
    await slack_api.wait_for("files.completeUploadExternal", 2, within=180)
    await slack_server.bridge.drain()
    assert len(slack_api.completed) == 2
    assert slack_api.completed[1]["thread_ts"] == thread_ts
    varied = parameters_from_png(uploaded_pngs(slack_api)[1])
    assert "Denoising strength" in varied  # image-to-image from the first image
    assert varied["prompt"] == parameters_from_png(uploaded_pngs(slack_api)[0])["prompt"]
    assert len(slack_server.ctx.engine.jobs()) == 2

    status, _, _ = await slack_server.action(block_actions(ACTION_RECIPE, image_id, thread_ts=thread_ts))
    assert status == 200
    (eph,) = await slack_api.wait_for("chat.postEphemeral")
    assert eph.params["user"] == "U1" and eph.params["thread_ts"] == thread_ts
    assert "Steps:" in eph.params["text"] and "red mug" in eph.params["text"]


async def test_channel_allow_list_refuses_ephemerally(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    policy = slack_server.ctx.assistant.policy  # the allow-list is a rule of the one policy
    policy.settings = policy.settings.model_copy(update={"slack_channels": ["CALLOWED"]})
    status, body, _ = await slack_server.command(slash_command("a red mug", channel="COTHER"))
    assert status == 200
    assert "CHATCANVAS_SLACK_CHANNELS" in body and "(rule: place)" in body  # the ack: the user's alone
    status, body, _ = await slack_server.command(slash_command("", channel="CALLOWED"))
    assert "/imagine" in body  # usage
    await slack_server.bridge.drain()
    assert slack_api.calls_to("chat.postMessage") == []
    assert slack_server.ctx.engine.jobs() == []


async def test_over_the_rate_limit_is_refused_ephemerally_with_the_reason(
    slack_settings: Any, slack_api: FakeSlackAPI
) -> None:
    settings = slack_settings.model_copy(update={"rate_burst": 1, "rate_per_minute": 1.0})
    async with running_server(settings) as server:
        await server.command(slash_command("a red mug"))
        await slack_api.wait_for("files.completeUploadExternal", within=180)
        await server.bridge.drain()
        status, _, _ = await server.command(slash_command("a blue mug"))
        assert status == 200
        (eph,) = await slack_api.wait_for("chat.postEphemeral")
        await server.bridge.drain()
        assert eph.params["user"] == "U1"
        assert "per minute" in eph.params["text"]
        assert len(server.ctx.engine.jobs()) == 1
        assert len(slack_api.completed) == 1
