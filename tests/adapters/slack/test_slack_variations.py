"""Product variations from a photo shared in one of our threads, downloaded with the bot token."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from chatcanvas.generation.demo.draw import draw_product
from tests.adapters.slack.conftest import SlackServer
from tests.fakes.products import changed_outside, desk_lamp, inside_median
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import event_callback, message_event, slash_command


def product_png() -> bytes:
    buf = io.BytesIO()
    draw_product("mug", "red", np.random.default_rng(21), size=64).save(buf, format="PNG")
    return buf.getvalue()


async def our_thread(slack_server: SlackServer, slack_api: FakeSlackAPI, prompt: str) -> str:
    """A thread the bot answered in (its first image uploaded there): replies in it are ours."""
    await slack_server.command(slash_command(prompt))
    await slack_api.wait_for("files.completeUploadExternal", within=180)
    await slack_server.bridge.drain()
    return str(slack_api.completed[0]["thread_ts"])


async def test_photo_shared_in_thread_gives_one_image_per_variation(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    thread_ts = await our_thread(slack_server, slack_api, "a red mug")

    shared = slack_api.add_file(product_png(), "red-mug.png")
    reply = message_event("variations: navy, forest green", thread_ts=thread_ts, ts="1700000400.000100",
                          files=[shared])  # fmt: skip
    status, _, _ = await slack_server.event(event_callback(reply))
    assert status == 200
    await slack_api.wait_for("files.completeUploadExternal", 3, within=300)
    await slack_server.bridge.drain()

    assert [auth for _, auth in slack_api.downloads] == [f"Bearer {BOT_TOKEN}"]
    jobs = [j for j in slack_server.ctx.engine.jobs() if j.spec.mask_image]
    assert sorted(j.prompt_in for j in jobs) == ["navy, forest green"] * 2
    assert sorted(j.spec.prompt for j in jobs)[0].startswith("a forest green")
    assert all(j.where.thread == thread_ts for j in jobs)
    for c in slack_api.completed[1:]:
        assert c["thread_ts"] == thread_ts

    # later in the thread, without attaching it again: the last shared photo, looked up with files.info
    again = message_event("variations: sand", thread_ts=thread_ts, ts="1700000500.000100")
    await slack_server.event(event_callback(again))
    await slack_api.wait_for("files.completeUploadExternal", 4, within=300)
    await slack_server.bridge.drain()
    (info,) = slack_api.calls_to("files.info")
    assert info.params["file"] == shared["id"]
    assert len(slack_api.downloads) == 2
    assert sum(1 for j in slack_server.ctx.engine.jobs() if j.spec.mask_image) == 3


async def test_a_plain_reply_in_our_thread_continues_the_conversation(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    thread_ts = await our_thread(slack_server, slack_api, "a red mug")
    # a reply elsewhere (not our thread) is left alone for the host app
    await slack_server.event(event_callback(message_event("make it blue", thread_ts="1600000000.000001")))
    await slack_server.event(event_callback(message_event("make it blue", thread_ts=thread_ts)))
    await slack_api.wait_for("files.completeUploadExternal", 2, within=180)
    await slack_server.bridge.drain()
    jobs = slack_server.ctx.engine.jobs()
    assert len(jobs) == 2
    assert all(j.where.thread == thread_ts for j in jobs)


async def test_oversized_shared_file_is_refused_without_downloading(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    slack_server.bridge.settings = slack_server.bridge.settings.model_copy(update={"max_upload_bytes": 2048})
    big = Image.effect_noise((256, 256), 64).convert("RGB")
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    shared = slack_api.add_file(buf.getvalue(), "huge.png")
    dm = message_event("variations: navy", channel="D1", channel_type="im", files=[shared])
    await slack_server.event(event_callback(dm))
    (eph,) = await slack_api.wait_for("chat.postEphemeral")
    await slack_server.bridge.drain()
    assert "limit" in eph.params["text"] and eph.params["user"] == "U1"
    assert slack_api.downloads == []
    assert slack_server.ctx.engine.jobs() == []



async def test_a_mask_shared_with_the_photo_recolours_only_what_it_covers(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    thread_ts = await our_thread(slack_server, slack_api, "a desk lamp")

    photo_png, mask_png, shade = desk_lamp()
    photo = slack_api.add_file(photo_png, "IMG_2041.png")
    mask = slack_api.add_file(mask_png, "IMG_2041 mask.png")
    reply = message_event("this lamp in teal", thread_ts=thread_ts, ts="1700000400.000100", files=[mask, photo])
    await slack_server.event(event_callback(reply))
    await slack_api.wait_for("files.completeUploadExternal", 2, within=300)
    await slack_server.bridge.drain()

    assert len(slack_api.downloads) == 2  # the photo and its mask, both with the bot token
    (png,) = [slack_api.uploaded[f["id"]] for f in slack_api.completed[1]["files"]]
    r, g, b = inside_median(png, shade)
    assert g > r + 40 and b > r + 40  # the shade is teal now
    assert changed_outside(png, photo_png, shade) < 0.02  # the stem and base were not in the mask

    # a follow-up in the thread uses the same photo and mask
    again = message_event("variations: coral", thread_ts=thread_ts, ts="1700000600.000100")
    await slack_server.event(event_callback(again))
    await slack_api.wait_for("files.completeUploadExternal", 3, within=300)
    await slack_server.bridge.drain()
    assert len(slack_api.downloads) == 4
    assert [c.params["file"] for c in slack_api.calls_to("files.info")] == [photo["id"], mask["id"]]
    png2 = slack_api.uploaded[slack_api.completed[2]["files"][0]["id"]]
    assert changed_outside(png2, photo_png, shade) < 0.02


async def test_in_a_dm_the_next_variations_use_the_photo_shared_before(
    slack_server: SlackServer, slack_api: FakeSlackAPI
) -> None:
    photo_png, mask_png, shade = desk_lamp()
    photo = slack_api.add_file(photo_png, "lamp.jpg.png")
    mask = slack_api.add_file(mask_png, "lamp_mask.png")
    dm = message_event("this lamp in teal", channel="D1", channel_type="im", files=[photo, mask])
    await slack_server.event(event_callback(dm))
    await slack_api.wait_for("files.completeUploadExternal", within=300)
    await slack_server.bridge.drain()

    # a DM is answered in place, not in a thread: the next message there is the follow-up
    again = message_event("colours: coral, sage", channel="D1", channel_type="im", ts="1700000700.000100")
    await slack_server.event(event_callback(again))
    await slack_api.wait_for("files.completeUploadExternal", 3, within=300)
    await slack_server.bridge.drain()
    assert [c.params["file"] for c in slack_api.calls_to("files.info")] == [photo["id"], mask["id"]]
    for c in slack_api.completed[1:]:
        png = slack_api.uploaded[c["files"][0]["id"]]
        assert changed_outside(png, photo_png, shade) < 0.02
    jobs = [j for j in slack_server.ctx.engine.jobs() if j.prompt_in == "coral, sage"]
    assert len(jobs) == 2
