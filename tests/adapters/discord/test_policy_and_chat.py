"""Refusals (quota, cooldown, allow-lists, DMs, NSFW), chat, /vary, /settings, /history, 429s, restart."""

from __future__ import annotations

import io
from typing import Any

import discord
from discord.ext import commands
from PIL import Image

from chatcanvas.generation.metadata import parameters_from_png, recipe_from_png
from tests.adapters.discord.conftest import Control
from tests.adapters.discord.test_scenarios import DEADLINE_S, callback, final_edit
from tests.fakes.discord_wire import (
    CHANNEL_ID,
    GUILD_ID,
    NSFW_CHANNEL_ID,
    OTHER_CHANNEL_ID,
    THREAD_ID,
    Wire,
    iter_png_files,
)
from tests.fakes.products import changed_outside, desk_lamp, inside_median


def photo_png(color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    img = Image.new("RGB", (48, 48), (245, 245, 245))
    img.paste(Image.new("RGB", (24, 30), color), (12, 9))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def settings_of(wire: Wire) -> Any:
    return wire.bot.chatcanvas.settings  # type: ignore[attr-defined]


async def test_over_quota_user_gets_an_ephemeral_refusal(wire: Wire) -> None:
    s = settings_of(wire)
    s.rate_burst, s.rate_per_minute = 1, 0.01  # one request, then none for a long while
    _, first = wire.slash("imagine", {"prompt": "a mug"})
    await wire.wait_for(final_edit(first))

    iid, token = wire.slash("imagine", {"prompt": "another mug"})
    (ack,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    (refusal,) = await wire.wait_for(lambda r: r.is_followup(token))
    assert refusal.ephemeral
    assert "faster than the limit" in refusal.content
    assert wire.fake.matching(lambda r: r.is_original_delete(token))
    assert not wire.fake.matching(lambda r: r.is_original_edit(token) and bool(r.files))


async def test_cooldown_refuses_before_deferring(wire: Wire) -> None:
    settings_of(wire).discord_cooldown_s = 600
    _, first = wire.slash("imagine", {"prompt": "a cap"})
    await wire.wait_for(final_edit(first))
    iid, _ = wire.slash("imagine", {"prompt": "a cap again"})
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.json["type"] == 4 and ans.ephemeral  # answered at once, no "thinking"
    assert "ask again in" in ans.content


async def test_allow_lists_dms_and_nsfw_rule_refuse_ephemerally(wire: Wire) -> None:
    s = settings_of(wire)
    s.discord_channels = [str(CHANNEL_ID)]
    iid, _ = wire.slash("imagine", {"prompt": "x"}, channel_id=OTHER_CHANNEL_ID)
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.ephemeral and "not enabled in this channel" in ans.content

    s.discord_channels = []
    s.discord_guilds = [str(GUILD_ID + 1)]
    iid, _ = wire.slash("imagine", {"prompt": "x"})
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.ephemeral and "not enabled in this server" in ans.content

    s.discord_guilds = []
    s.discord_allow_dms = False
    iid, _ = wire.slash("imagine", {"prompt": "x"}, guild=False)
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.ephemeral and "direct messages" in ans.content

    s.discord_nsfw_only = True
    iid, _ = wire.slash("imagine", {"prompt": "x"})
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.ephemeral and "age-restricted" in ans.content
    iid, token = wire.slash("imagine", {"prompt": "x"}, channel_id=NSFW_CHANNEL_ID)
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.json["type"] == 5
    await wire.wait_for(final_edit(token))


async def test_a_mention_goes_through_the_agent_and_a_thread_reply_continues(wire: Wire) -> None:
    wire.message("a canvas tote bag in navy, studio light", mention_bot=True, channel_id=THREAD_ID)
    sent = await wire.wait_for(lambda r: r.is_channel_send(THREAD_ID))
    assert sent[0].json["message_reference"]  # a reply to the user's message
    done = await wire.wait_for(
        lambda r: r.is_channel_edit(THREAD_ID) and bool(r.files) and bool(r.custom_ids())
    )
    (png,) = list(iter_png_files(done[0]))
    first = recipe_from_png(png.data)
    assert "tote" in first.prompt

    # "now in forest green": a reply in the same thread refers to the last picture
    before = len(wire.requests)
    wire.message("now in forest green", mention_bot=True, channel_id=THREAD_ID)
    done2 = await wire.wait_for(
        lambda r: r.is_channel_edit(THREAD_ID) and bool(r.files) and wire.requests.index(r) >= before
    )
    (png2,) = list(iter_png_files(done2[0]))
    second = recipe_from_png(png2.data)
    assert "green" in second.prompt and "tote" in second.prompt


async def test_messages_not_addressed_to_the_bot_are_ignored(wire: Wire) -> None:
    wire.message("just chatting, no mention")
    wire.message("a mug please", mention_bot=True)  # the marker that the first was skipped
    await wire.wait_for(lambda r: r.is_channel_send(CHANNEL_ID))
    assert len(wire.fake.matching(lambda r: r.is_channel_send(CHANNEL_ID))) == 1


async def test_vary_makes_one_image_per_variation_from_the_uploaded_photo(wire: Wire) -> None:
    att = wire.attachment("tote.png", photo_png())
    iid, token = wire.slash(
        "vary",
        {"image": {"attachment": att["id"]}, "variations": "navy, forest green"},
        attachments={att["id"]: att},
    )
    (ack,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ack.json["type"] == 5
    results = await wire.wait_for(
        lambda r: (r.is_original_edit(token) or r.is_followup(token)) and bool(r.files), n=2
    )
    prompts = " | ".join(parameters_from_png(f.data)["prompt"] for r in results for f in iter_png_files(r))
    assert "navy" in prompts and "forest green" in prompts


async def test_vary_with_a_mask_recolours_only_what_the_mask_covers(wire: Wire) -> None:
    photo_png, mask_png, shade = desk_lamp()
    photo, mask = wire.attachment("lamp.png", photo_png), wire.attachment("lamp-mask.png", mask_png)
    iid, token = wire.slash(
        "vary",
        {"image": {"attachment": photo["id"]}, "mask": {"attachment": mask["id"]},
         "variations": "this lamp in teal and #e07b39"},
        attachments={photo["id"]: photo, mask["id"]: mask},
    )  # fmt: skip
    (ack,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ack.json["type"] == 5
    results = await wire.wait_for(
        lambda r: (r.is_original_edit(token) or r.is_followup(token)) and bool(r.files), n=2
    )
    pngs = {parameters_from_png(f.data)["prompt"]: f.data for r in results for f in iter_png_files(r)}
    teal = next(png for prompt, png in pngs.items() if "teal" in prompt)
    r, g, b = inside_median(teal, shade)
    assert g > r + 40 and b > r + 40  # the shade is teal
    for png in pngs.values():
        assert changed_outside(png, photo_png, shade) < 0.02  # the stem and base were not in the mask


async def test_a_mention_with_a_photo_and_its_mask_asks_for_colourways(wire: Wire) -> None:
    """No LLM configured: a photo beside "this lamp in teal and coral" is recoloured, not ignored."""
    photo_png, mask_png, shade = desk_lamp()
    files = [wire.attachment("IMG_0311.png", photo_png), wire.attachment("IMG_0311_mask.png", mask_png)]
    wire.message("can I see this lamp in teal and coral?", mention_bot=True, attachments=files)

    def with_png(r: Any) -> bool:  # each colourway in its own message
        return (r.is_channel_edit(CHANNEL_ID) or r.is_channel_send(CHANNEL_ID)) and any(iter_png_files(r))

    done = await wire.wait_for(with_png, n=2)
    pngs = {parameters_from_png(f.data)["prompt"]: f.data for r in done for f in iter_png_files(r)}
    assert sorted(pngs) == ["a coral lamp", "a teal lamp"]  # the lamp: the product words of the request
    for png in pngs.values():
        assert changed_outside(png, photo_png, shade) < 0.02
    r, g, b = inside_median(pngs["a teal lamp"], shade)
    assert g > r + 40 and b > r + 40

    # "now in burnt orange": the same photo and mask again, in the new colour
    before = len(wire.requests)
    wire.message("ok now in burnt orange", mention_bot=True)
    (again,) = await wire.wait_for(lambda r: with_png(r) and wire.requests.index(r) >= before)
    (png,) = list(iter_png_files(again))
    assert parameters_from_png(png.data)["prompt"] == "a burnt orange lamp"
    r, g, b = inside_median(png.data, shade)
    assert r > g + 40 > b + 40  # orange, not the teal of before
    assert changed_outside(png.data, photo_png, shade) < 0.02


async def test_imagine_reads_midjourney_parameters_at_the_end_of_the_prompt(wire: Wire) -> None:
    _, token = wire.slash("imagine", {"prompt": "a lighthouse at dusk --ar 16:9 --no people, boats --seed 42 --v 6.1"})
    (done,) = await wire.wait_for(final_edit(token))
    (png,) = list(iter_png_files(done))
    r = recipe_from_png(png.data)
    assert r.prompt == "a lighthouse at dusk" and r.seed == 42
    assert "people, boats" in r.negative_prompt and r.width > r.height
    said = " ".join(x.content or "" for x in wire.fake.matching(lambda x: x.is_original_edit(token)))
    assert "--v 6.1" in said  # the parameter left out is named


async def test_vary_refuses_a_file_that_is_not_an_image(wire: Wire) -> None:
    att = wire.attachment("notes.txt", b"hello", content_type="text/plain")
    iid, _ = wire.slash(
        "vary", {"image": {"attachment": att["id"]}, "variations": "navy"}, attachments={att["id"]: att}
    )
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.ephemeral and "PNG, JPEG or WebP" in ans.content


async def test_settings_are_saved_per_user_and_used_by_imagine(wire: Wire) -> None:
    iid, _ = wire.slash("settings", {"aspect": "wide", "count": 2})
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert ans.ephemeral and "wide" in ans.content and "count" in ans.content

    _, token = wire.slash("imagine", {"prompt": "a sneaker"})
    (done,) = await wire.wait_for(final_edit(token))
    pngs = [f for f in iter_png_files(done) if f.filename != "grid.png"]
    assert len(pngs) == 2
    r = recipe_from_png(pngs[0].data)
    assert r.width > r.height  # 16:9

    iid, _ = wire.slash("history")
    (hist,) = await wire.wait_for(lambda r: r.is_followup(f"tok-{iid}"))
    assert hist.ephemeral and "a sneaker" in hist.content and f"seed {r.seed}" in hist.content

    iid, _ = wire.slash("settings", {"reset": True})
    (ans,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    assert "cleared" in ans.content


async def test_a_429_on_an_edit_is_waited_out_and_the_result_still_lands(
    wire: Wire, control: Control
) -> None:
    wire.fake.rate_limit("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", retry_after=0.3, count=2)
    _, token = wire.slash("imagine", {"prompt": "a mug"})
    (done,) = await wire.wait_for(final_edit(token))
    assert len(wire.fake.matching(lambda r: r.status == 429)) == 2
    assert list(iter_png_files(done))


async def test_buttons_keep_working_after_a_restart(wire: Wire, discord_app: Any) -> None:
    _, token = wire.slash("imagine", {"prompt": "a blue cap", "seed": 99})
    (done,) = await wire.wait_for(final_edit(token))
    message = wire.fake.original(token)
    (png,) = list(iter_png_files(done))
    image_id = png.filename.removeprefix("chatcanvas-").removesuffix(".png")

    # a brand-new bot process (same store): the old message's buttons still resolve
    await wire.bot.close()
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
    bot.chatcanvas = discord_app  # type: ignore[attr-defined]
    async with Wire(bot) as wire2:
        await bot.load_extension("chatcanvas.adapters.discord")
        biid, btoken = wire2.button(f"cc:r:{image_id}", message=message)
        (ack,) = await wire2.wait_for(callback(biid), within=DEADLINE_S)
        assert ack.json["type"] == 5
        (rerolled,) = await wire2.wait_for(final_edit(btoken))
        (png2,) = list(iter_png_files(rerolled))
        r = recipe_from_png(png2.data)
        assert "blue cap" in r.prompt and r.seed != 99


async def test_results_owed_after_a_restart_are_posted_finished_failed_and_still_queued(
    settings: Any,
) -> None:
    """A restart owes: a job done but never shown, a failure never told, a job still in the queue.

    The first two are posted when the bot comes back, the third is followed and posted when it ends;
    none is posted twice (a failure was re-posted with an @mention after every restart)."""
    import asyncio

    from chatcanvas.adapters.discord.views import COG_NAME
    from chatcanvas.app import build_app
    from chatcanvas.generation.jobs import JobStatus
    from chatcanvas.types import ImageSpec, Place, UserRef

    who = UserRef(platform="discord", user="4242", server=str(GUILD_ID))
    here = Place(platform="discord", channel=str(CHANNEL_ID))
    first = await build_app(settings)  # the process before the restart
    rec = await first.engine.submit(ImageSpec(prompt="a pink tote"), who, here)
    async for _ in first.engine.follow(rec.id):
        pass
    failed = first.engine.table.insert("f" * 16, ImageSpec(prompt="a teal mug"), who, here, "")
    first.engine.table.set_status(failed.id, JobStatus.FAILED, "the model ran out of memory")
    queued = first.engine.table.insert("q" * 16, ImageSpec(prompt="an olive cap", seed=5), who, here, "")
    await first.aclose()

    ctx = await build_app(settings)  # after the restart: the queued job is taken up again
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
    bot.chatcanvas = ctx  # type: ignore[attr-defined]
    try:
        async with Wire(bot) as wire:
            await bot.load_extension("chatcanvas.adapters.discord")
            sends = await wire.wait_for(lambda r: r.is_channel_send(CHANNEL_ID), within=60, n=3)
            texts = [r.content for r in sends]
            assert all("<@4242>" in t for t in texts)
            assert any("ran out of memory" in t for t in texts)
            posted = [parameters_from_png(p.data)["prompt"] for r in wire.requests for p in iter_png_files(r)]
            assert "a pink tote" in posted
            for _ in range(200):  # the queued job's status message ends holding its image
                posted = [parameters_from_png(p.data)["prompt"] for r in wire.requests for p in iter_png_files(r)]
                if "an olive cap" in posted:
                    break
                await asyncio.sleep(0.1)
            assert "an olive cap" in posted
            for _ in range(50):
                if ctx.engine.owed("discord") == [] or ctx.engine.job(queued.id).delivered:  # type: ignore[union-attr]
                    break
                await asyncio.sleep(0.1)
            assert [ctx.engine.job(j).delivered for j in (rec.id, failed.id, queued.id)] == [True] * 3  # type: ignore[union-attr]
            before = len(wire.requests)
            cog = bot.get_cog(COG_NAME)
            assert await cog.deliver_pending() == 0  # type: ignore[union-attr]
            assert not any(r.is_channel_send(CHANNEL_ID) for r in wire.requests[before:])
    finally:
        await ctx.aclose()
