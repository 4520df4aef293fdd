"""Hostile input to the Slack app: signed (and forged) requests through the real Bolt HTTP adapter,
answers read from the local fake Web API. One server for the module."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatcanvas.adapters.slack.blocks import ACTION_RECIPE, ACTION_REROLL, ACTION_UPSCALE, ACTION_VARY
from tests.adapters.slack.conftest import SlackServer, running_server
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import (
    SIGNING_SECRET,
    block_actions,
    event_callback,
    form_body,
    form_headers,
    mention_event,
    sign,
    slash_command,
)
from tests.hostile.conftest import audit_rules, hostile_settings, no_traceback

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api() -> AsyncIterator[FakeSlackAPI]:
    async with FakeSlackAPI() as fake:
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, api: FakeSlackAPI
) -> AsyncIterator[SlackServer]:
    settings = hostile_settings(
        tmp_path_factory.mktemp("hostile-slack"),
        tiny_model_dir,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=api.api_url,
        slack_host="127.0.0.1",
        slack_port=0,
        slack_progress_interval_s=0.05,
    )
    async with running_server(settings) as server:
        yield server


def said(api: FakeSlackAPI, since: int) -> str:
    """Everything the app wrote to Slack after the ``since``-th Web API call."""
    out = []
    for call in api.calls[since:]:
        for key in ("text", "initial_comment"):
            if isinstance(call.params.get(key), str):
                out.append(call.params[key])
        blocks = call.params.get("blocks")
        if blocks:
            out.append(blocks if isinstance(blocks, str) else json.dumps(blocks))
    return "\n".join(out)


async def settle(slack: SlackServer) -> None:
    await slack.bridge.drain(within=60)


async def outcome(slack: SlackServer, api: FakeSlackAPI, fields: dict[str, str]) -> tuple[int, str]:
    """Send a signed slash command; the ack and what was said after it, once the work is done."""
    n = len(api.calls)
    status, body, seconds = await slack.command(fields)
    assert seconds < 3.0, "Slack needs the ack within 3 s"
    await settle(slack)
    text = body + "\n" + said(api, n)
    no_traceback(text)
    return status, text


async def still_works(slack: SlackServer, api: FakeSlackAPI, user: str = "U1") -> None:
    """The next ordinary command from the same user makes an image in its thread."""
    done = len(api.completed)
    status, _ = await outcome(slack, api, slash_command("a small blue mug", user=user))
    assert status == 200
    await api.wait_for("files.completeUploadExternal", done + 1, within=120)
    assert len(api.completed) == done + 1


# ---------------------------------------------------------------- signatures

NOW = int(time.time())
FORGED: list[tuple[str, Any]] = [
    ("wrong-secret", lambda body: form_headers(body, secret="guessed-secret")),
    ("replayed-6-min-old", lambda body: form_headers(body, timestamp=int(time.time()) - 6 * 60)),
    ("replayed-a-day-old", lambda body: form_headers(body, timestamp=int(time.time()) - 86_400)),
    ("from-the-future", lambda body: form_headers(body, timestamp=int(time.time()) + 6 * 60)),
    ("unsigned", lambda body: {"Content-Type": "application/x-www-form-urlencoded"}),
    ("timestamp-not-a-number", lambda body: {**form_headers(body), "X-Slack-Request-Timestamp": "yesterday"}),
    ("v1-scheme", lambda body: {**(h := form_headers(body)), "X-Slack-Signature": h["X-Slack-Signature"].replace("v0=", "v1=")}),
    ("empty-signature", lambda body: {**form_headers(body), "X-Slack-Signature": ""}),
    ("signature-of-another-body", lambda body: {"Content-Type": "application/x-www-form-urlencoded", **sign("text=hello")}),
]


@pytest.mark.parametrize("headers_for", [f[1] for f in FORGED], ids=[f[0] for f in FORGED])
async def test_forged_or_replayed_signature_gets_401_and_does_nothing(
    slack: SlackServer, api: FakeSlackAPI, headers_for: Any
) -> None:
    n, jobs = len(api.calls), len(slack.ctx.engine.jobs())
    body = form_body(slash_command("a red mug"))
    status, text, _ = await slack.post(body, headers_for(body))
    assert status == 401
    no_traceback(text)
    await settle(slack)
    assert api.calls[n:] == [] and len(slack.ctx.engine.jobs()) == jobs
    # a properly signed request right after is answered (usage for an empty command: no image needed)
    status, text = await outcome(slack, api, slash_command(""))
    assert status == 200 and "/imagine" in text


async def test_a_body_altered_after_signing_gets_401(slack: SlackServer, api: FakeSlackAPI) -> None:
    body = form_body(slash_command("a red mug"))
    headers = form_headers(body)
    status, _, _ = await slack.post(body.replace("red", "zorblax"), headers)
    assert status == 401
    await still_works(slack, api)


# ---------------------------------------------------------------- what the command says

COMMANDS: list[tuple[str, str, str]] = [
    ("blocked-upper", "a ZORBLAX on a mug", "(rule: blocked_terms#1)"),
    ("blocked-zero-width-space", "a zor\u200bblax on a mug", "(rule: blocked_terms#1)"),
    ("blocked-word-joiner", "a zorb\u2060lax on a mug", "(rule: blocked_terms#1)"),
    ("blocked-bom", "a \ufeffzorblax on a mug", "(rule: blocked_terms#1)"),
    ("blocked-cyrillic", "a z\u043erbl\u0430x on a mug", "(rule: blocked_terms#1)"),
    ("blocked-digits", "a z0rb1ax on a mug", "(rule: blocked_terms#1)"),
]


@pytest.mark.parametrize(("text", "expect"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
async def test_imagine_refusals_name_their_rule(slack: SlackServer, api: FakeSlackAPI, text: str, expect: str) -> None:
    jobs = len(slack.ctx.engine.jobs())
    status, answer = await outcome(slack, api, slash_command(text))
    assert status == 200
    assert expect in answer, answer
    assert "zorblax" not in answer.lower().replace(text.lower(), "")  # the list is never told
    if expect:
        assert len(slack.ctx.engine.jobs()) == jobs
    await still_works(slack, api)


async def test_a_huge_command_text_is_refused_with_the_limit(slack: SlackServer, api: FakeSlackAPI) -> None:
    done = len(api.completed)
    status, answer = await outcome(slack, api, slash_command("a mug " + "x" * 20_000))
    # the rewriter keeps what the model can read and says so; one image, not 20000 characters of work
    assert status == 200 and "reads only the first 75" in answer, answer[-300:]
    await api.wait_for("files.completeUploadExternal", done + 1, within=60)
    await still_works(slack, api)


async def test_a_mention_with_a_disguised_term_is_refused(slack: SlackServer, api: FakeSlackAPI) -> None:
    n = len(api.calls)
    status, _, _ = await slack.event(event_callback(mention_event("draw a z\u03bfrbl\u03b1x mug"), event_id="EvH1"))
    assert status == 200
    await api.wait_for("chat.postEphemeral", len(api.calls_to("chat.postEphemeral")) + 1, within=30)
    await settle(slack)
    text = said(api, n)
    assert "(rule: blocked_terms#1)" in text, text
    assert "blocked_terms#1" in audit_rules(slack.ctx.store)
    await still_works(slack, api)


@pytest.mark.parametrize(
    ("action", "value"),
    [
        (ACTION_VARY, "../../etc/passwd"),
        (ACTION_REROLL, "/etc/passwd"),
        (ACTION_UPSCALE, "u" + "0" * 31),
        (ACTION_RECIPE, "..%2F..%2Fetc%2Fshadow"),
    ],
    ids=["vary-traversal", "reroll-abs-path", "upscale-unknown-upload", "recipe-encoded"],
)
async def test_buttons_with_paths_read_no_file(slack: SlackServer, api: FakeSlackAPI, action: str, value: str) -> None:
    n, jobs = len(api.calls), len(slack.ctx.engine.jobs())
    status, _, _ = await slack.action(block_actions(action, value))
    assert status == 200
    await settle(slack)
    text = said(api, n)
    no_traceback(text)
    assert "root:" not in text and "daemon:" not in text
    assert len(slack.ctx.engine.jobs()) == jobs
    assert text.strip(), "the user is told something"
    await still_works(slack, api)


async def test_a_flood_from_one_user_is_rate_limited_ephemerally(slack: SlackServer, api: FakeSlackAPI) -> None:
    policy = slack.ctx.assistant.policy
    saved = policy.settings
    policy.settings = saved.model_copy(update={"rate_burst": 2, "rate_per_minute": 0.5})
    try:
        answers = [await outcome(slack, api, slash_command(f"mug {i}", user="UFLOOD")) for i in range(4)]
    finally:
        policy.settings = saved
    refused = [a for _, a in answers if "(rule: user_rate)" in a]
    assert len(refused) == 2 and all("per minute" in a for a in refused), answers
    eph = api.calls_to("chat.postEphemeral")
    assert eph[-1].params["user"] == "UFLOOD"
    await still_works(slack, api)
