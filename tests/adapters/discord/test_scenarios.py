"""Scenario tests: the real discord.py client, gateway-shaped payloads in, REST calls out to a local fake."""

from __future__ import annotations

from typing import Any

from chatcanvas.generation.metadata import parameters_from_png, recipe_from_png
from chatcanvas.provenance.verify import verify_image
from tests.adapters.discord.conftest import Control
from tests.fakes.discord_wire import Wire, iter_png_files

DEADLINE_S = 60.0  # a generous wait on a shared machine; how fast the ack is: bench/ack_latency.py


def callback(iid: str):  # type: ignore[no-untyped-def]
    return lambda r: r.is_callback(iid)


def original_edit(token: str):  # type: ignore[no-untyped-def]
    return lambda r: r.is_original_edit(token)


def final_edit(token: str):  # type: ignore[no-untyped-def]
    return lambda r: r.is_original_edit(token) and any(True for _ in iter_png_files(r)) and r.custom_ids()


async def test_extension_registers_the_commands(wire: Wire) -> None:
    names = sorted(c.name for c in wire.bot.tree.get_commands())
    assert names == ["Check image", "chatcanvas-admin", "history", "imagine", "settings", "vary"]
    assert wire.bot.get_cog("Chatcanvas") is not None


async def test_imagine_defers_shows_progress_and_delivers_a_png_with_its_recipe(
    wire: Wire, control: Control
) -> None:
    control.hold(step=1)
    iid, token = wire.slash("imagine", {"prompt": "a navy canvas tote bag, studio light", "seed": 1234})

    (ack,) = await wire.wait_for(callback(iid), within=DEADLINE_S)
    # deferred first: nothing was edited into the reply before the ack (order, not wall-clock time)
    assert not any(r.is_original_edit(token) for r in wire.requests[: wire.requests.index(ack)])
    assert ack.json["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: "thinking"
    assert not ack.ephemeral

    # held after step 1: the reply must show the percentage before anything else happens
    await wire.wait_for(lambda r: r.is_original_edit(token) and "50%" in r.content)
    assert control.calls == 1
    control.release()

    (done,) = await wire.wait_for(final_edit(token))
    pngs = list(iter_png_files(done))
    assert len(pngs) == 1 and pngs[0].filename.startswith("chatcanvas-")
    params = parameters_from_png(pngs[0].data)
    assert "navy canvas tote bag" in params["prompt"]
    assert verify_image(pngs[0].data).manifest == "valid"  # posted with its Content Credentials
    assert params["Seed"] == "1234"
    assert "navy canvas tote bag" in done.content
    ids = done.custom_ids()
    image_id = pngs[0].filename.removeprefix("chatcanvas-").removesuffix(".png")
    assert f"cc:v:{image_id}" in ids and f"cc:u:{image_id}" in ids and f"cc:r:{image_id}" in ids
    assert f"cc:i:{image_id}" in ids

    # every request about this interaction came after the acknowledgement, edits at most one a second
    edits = wire.fake.matching(original_edit(token))
    assert all(e.at >= ack.at for e in edits)
    gaps = [b.at - a.at for a, b in zip(edits, edits[1:], strict=False)]
    assert all(g >= 0.9 for g in gaps), gaps


async def test_variation_button_runs_image_to_image_from_that_image(wire: Wire) -> None:
    iid, token = wire.slash("imagine", {"prompt": "a ceramic mug", "count": 2})
    (done,) = await wire.wait_for(final_edit(token))
    pngs = list(iter_png_files(done))
    assert pngs[0].filename == "grid.png" and len(pngs) == 3
    second = pngs[2].filename.removeprefix("chatcanvas-").removesuffix(".png")
    assert f"cc:v:{second}" in done.custom_ids()

    biid, btoken = wire.button(f"cc:v:{second}", message=wire.fake.original(token))
    (ack,) = await wire.wait_for(callback(biid), within=DEADLINE_S)
    assert ack.json["type"] == 5
    (vdone,) = await wire.wait_for(final_edit(btoken))
    (vpng,) = list(iter_png_files(vdone))
    recipe = recipe_from_png(vpng.data)
    assert recipe.mode.value == "img2img"
    assert recipe.init_image == second


async def test_recipe_button_answers_ephemeral(wire: Wire) -> None:
    _, token = wire.slash("imagine", {"prompt": "a red sneaker", "seed": 7})
    (done,) = await wire.wait_for(final_edit(token))
    (png,) = list(iter_png_files(done))
    image_id = png.filename.removeprefix("chatcanvas-").removesuffix(".png")
    biid, _ = wire.button(f"cc:i:{image_id}", message=wire.fake.original(token))
    (ans,) = await wire.wait_for(callback(biid), within=DEADLINE_S)
    assert ans.json["type"] == 4 and ans.ephemeral
    assert "red sneaker" in ans.content and "Seed: 7" in ans.content


async def test_backend_failure_is_an_ephemeral_error_and_the_bot_lives_on(
    wire: Wire, control: Control
) -> None:
    control.fail = "The image service is down for maintenance."
    iid, token = wire.slash("imagine", {"prompt": "a cap"})
    (err,) = await wire.wait_for(lambda r: r.is_followup(token))
    assert err.ephemeral
    assert "down for maintenance" in err.content
    assert wire.fake.matching(lambda r: r.is_original_delete(token))  # the public "thinking" reply is gone

    control.fail = None
    _, token2 = wire.slash("imagine", {"prompt": "a cap"})
    await wire.wait_for(final_edit(token2))


async def test_progress_shows_a_low_resolution_preview(wire: Wire, control: Control) -> None:
    wire.bot.chatcanvas.settings.default_steps = 6  # type: ignore[attr-defined]
    control.hold(step=4)  # the local backend makes a preview every 4 steps
    _, token = wire.slash("imagine", {"prompt": "a white mug"})
    (prev,) = await wire.wait_for(
        lambda r: r.is_original_edit(token) and any(f.filename == "preview.png" for f in r.files)
    )
    assert "66%" in prev.content
    control.release()
    (done,) = await wire.wait_for(final_edit(token))
    assert [f.filename for f in done.files] != ["preview.png"]


async def test_the_extension_builds_its_own_app_when_the_host_has_none(
    tiny_model_dir: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    import discord
    from discord.ext import commands

    monkeypatch.setenv("CHATCANVAS_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CHATCANVAS_DATA_DIR", str(tmp_path / "ext-data"))
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    await bot.load_extension("chatcanvas.adapters.discord")
    try:
        expected = ["Check image", "chatcanvas-admin", "history", "imagine", "settings", "vary"]
        assert sorted(c.name for c in bot.tree.get_commands()) == expected
        cog = bot.get_cog("Chatcanvas")
        assert cog is not None and cog.owns_ctx  # type: ignore[attr-defined]
        assert (tmp_path / "ext-data" / "chatcanvas.db").exists()
    finally:
        await bot.unload_extension("chatcanvas.adapters.discord")
    assert bot.get_cog("Chatcanvas") is None


async def test_serve_without_a_token_says_which_variable_to_set(discord_app: Any) -> None:
    import pytest

    from chatcanvas.adapters.discord import serve
    from chatcanvas.errors import ConfigError

    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        await serve(discord_app)
