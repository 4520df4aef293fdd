"""The progress message against the fake Web API: throttled edits, and 429 + Retry-After obeyed."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from chatcanvas.adapters.slack.progress import StatusMessage, install_retries
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI


@pytest.fixture
def client(slack_api: FakeSlackAPI) -> AsyncWebClient:
    """A client as the adapter sets it up: slack_sdk's own rate-limit retry handler installed."""
    return install_retries(AsyncWebClient(token=BOT_TOKEN, base_url=slack_api.api_url))


async def test_edits_are_coalesced_to_the_latest_text(
    slack_api: FakeSlackAPI, client: AsyncWebClient
) -> None:
    status = StatusMessage(client, "C1", "1700000000.000001", interval=0.5)
    await status.set("Queued: you're next.")
    for pct in range(0, 101, 5):
        await status.set(f"Painting… {pct}%")
    await status.close()
    (post,) = slack_api.calls_to("chat.postMessage")
    assert post.params["thread_ts"] == "1700000000.000001"
    updates = slack_api.calls_to("chat.update")
    assert updates[-1].params["text"] == "Painting… 100%"
    assert all(u.params["ts"] == status.ts for u in updates)
    assert len(updates) < 21  # 21 texts, far fewer edits


async def test_ratelimited_update_waits_retry_after_then_sends_latest(
    slack_api: FakeSlackAPI, client: AsyncWebClient
) -> None:
    status = StatusMessage(client, "C1", None, interval=0.0)
    await status.set("Queued")
    slack_api.rate_limit("chat.update", retry_after=1, times=1)
    await status.set("Painting… 50%")
    await status.set("Painting… 100%")
    await status.close("Done.")
    refused = [c for c in slack_api.calls if c.method == "chat.update" and c.status == 429]
    ok = slack_api.calls_to("chat.update")
    assert len(refused) == 1
    assert ok and ok[-1].params["text"] == "Done."
    assert ok[0].at - refused[0].at >= 0.99  # Retry-After: 1 was obeyed (a protocol deadline)


async def test_ratelimited_first_post_is_retried(slack_api: FakeSlackAPI, client: AsyncWebClient) -> None:
    slack_api.rate_limit("chat.postMessage", retry_after=1, times=1)
    status = StatusMessage(client, "C1", None, interval=0.0)
    await status.set("Queued")
    await status.close()
    assert [c.status for c in slack_api.calls] == [429, 200]
    assert slack_api.calls[1].at - slack_api.calls[0].at >= 0.99
    assert status.ts is not None
