"""Hostile input to the Discord extension: the real discord.py on the local fake Discord
(tests/fakes/discord_wire.py), one bot and one app for the module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.discord_wire import MANAGE_GUILD, MEMBER_PERMISSIONS, OTHER_USER_ID, Wire, iter_png_files
from tests.fakes.openai_server import FakeOpenAI
from tests.hostile.conftest import GIF_JS, hostile_settings, huge_png, no_traceback, product_photo

pytestmark = pytest.mark.asyncio(loop_scope="module")

FLOODER = OTHER_USER_ID + 40  # a member who has not asked yet (a rate bucket of their own)
ADMIN = str(int(MEMBER_PERMISSIONS) | MANAGE_GUILD)
DEADLINE_S = 3.0


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wire(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[Wire]:
    import discord
    from discord.ext import commands

    from chatcanvas.app import build_app

    settings = hostile_settings(
        tmp_path_factory.mktemp("hostile-discord"),
        tiny_model_dir,
        openai_api_key="sk-discord-hostile",  # OpenAI is configured, but members may use only local
        openai_base_url=fake_openai.base_url,
        moderation="off",
    )
    ctx = await build_app(settings)
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
    bot.chatcanvas = ctx  # type: ignore[attr-defined]
    try:
        async with Wire(bot) as w:
            await bot.load_extension("chatcanvas.adapters.discord")
            yield w
            await asyncio.sleep(0)
    finally:
        await ctx.aclose()


async def answer(wire: Wire, iid: str, token: str) -> tuple[str, list[Any], bool]:
    """What the user sees: an immediate answer, or after "thinking" a follow-up or the final edit."""
    (ack,) = await wire.wait_for(lambda r: r.is_callback(iid), within=DEADLINE_S)
    if ack.json["type"] == 4:
        no_traceback(ack.content)
        return ack.content, [], ack.ephemeral
    (end,) = await wire.wait_for(
        lambda r: r.is_followup(token) or (r.is_original_edit(token) and any(True for _ in iter_png_files(r))),
        within=120,
    )
    no_traceback(end.content)
    return end.content, list(iter_png_files(end)), end.ephemeral


async def imagine(wire: Wire, options: dict[str, Any], **kw: Any) -> tuple[str, list[Any], bool]:
    iid, token = wire.slash("imagine", options, **kw)
    return await answer(wire, iid, token)


async def still_works(wire: Wire, **kw: Any) -> None:
    text, pngs, _ = await imagine(wire, {"prompt": "a small blue mug on a desk"}, **kw)
    assert len(pngs) == 1, text


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("backend-openai-member", {"prompt": "a mug", "backend": "openai"}, "(rule: backend)"),
    ("backend-openai-prefix", {"prompt": "a mug --backend openai", "backend": "local"}, ""),
    ("blocked-bom", {"prompt": "a zorb\ufefflax mug"}, "(rule: blocked_terms#1)"),
    ("blocked-greek", {"prompt": "a z\u03bfrbl\u03b1x mug"}, "(rule: blocked_terms#1)"),
    ("blocked-caps-and-joiner", {"prompt": "a ZOR\u2060BLAX mug"}, "(rule: blocked_terms#1)"),
    ("count-over-the-limit", {"prompt": "a mug", "count": 10}, "10 images is over the limit"),
    ("unknown-style", {"prompt": "a mug", "style": "../../etc/passwd"}, "Unknown style"),
]


@pytest.mark.parametrize(("options", "expect"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_imagine_refusals(wire: Wire, options: dict[str, Any], expect: str) -> None:
    # an ordinary member (the guild owner, USER_ID, has every permission)
    text, pngs, ephemeral = await imagine(wire, options, user_id=OTHER_USER_ID)
    if not expect:  # words in the prompt never pick a backend
        assert len(pngs) == 1 and "openai" not in text.split("·")[-1], text
        return
    assert expect in text and pngs == [] and ephemeral, text
    await still_works(wire)


async def test_a_member_with_manage_server_may_use_the_openai_backend(wire: Wire, fake_openai: FakeOpenAI) -> None:
    # The guild owner (USER_ID) has Manage Server. (A member given it by the interaction's resolved
    # permissions alone is not seen as one: who_of reads guild_permissions, computed from cached roles.)
    before = len(fake_openai.requests_to("/v1/images/generations"))
    text, pngs, _ = await imagine(wire, {"prompt": "a navy tote", "backend": "openai"}, permissions=ADMIN)
    assert len(pngs) == 1, text
    assert len(fake_openai.requests_to("/v1/images/generations")) == before + 1
    await still_works(wire)


def with_button(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """The bot's result message with its buttons replaced by one carrying ``custom_id``."""
    row = {"type": 1, "components": [{"type": 2, "style": 2, "label": "Vary", "custom_id": custom_id}]}
    return {**message, "components": [row]}


_RESULT: dict[str, dict[str, Any]] = {}


async def press(wire: Wire, custom_id: str, within: float = DEADLINE_S) -> tuple[Any, list[Any]]:
    if "message" not in _RESULT:  # one real result message whose buttons the cases replace
        _, token = wire.slash("imagine", {"prompt": "a red cap", "seed": 3})
        await wire.wait_for(lambda r: r.is_original_edit(token) and any(True for _ in iter_png_files(r)), within=120)
        _RESULT["message"] = wire.fake.original(token)
    n = len(wire.fake.requests)
    biid, _ = wire.button(custom_id, message=with_button(_RESULT["message"], custom_id))
    try:
        (ack,) = await wire.wait_for(lambda r: r.is_callback(biid), within=within)
    except TimeoutError:
        ack = None
    await asyncio.sleep(0.2)
    later = wire.fake.requests[n:]
    shown = " ".join(r.content for r in later)
    no_traceback(shown)
    assert "root:" not in shown and "daemon:" not in shown
    assert not any(any(True for _ in iter_png_files(r)) for r in later)  # nothing was made
    return ack, later


@pytest.mark.parametrize(
    "custom_id",
    ["cc:v:../../etc/passwd", "cc:u:/etc/passwd", "cc:i:%2Fetc%2Fshadow", "cc:r:u" + "0" * 31],
    ids=["vary-traversal", "upscale-abs", "recipe-encoded", "reroll-upload-id"],
)
async def test_buttons_whose_id_is_a_path_match_no_handler(wire: Wire, custom_id: str) -> None:
    ack, later = await press(wire, custom_id, within=0.5)
    assert ack is None and later == []  # not ours: never dispatched, nothing read, nothing said
    await still_works(wire)


@pytest.mark.parametrize("action", ["v", "u", "r", "i"], ids=["vary", "upscale", "reroll", "recipe"])
async def test_buttons_with_an_unknown_image_id_say_so(wire: Wire, action: str) -> None:
    ack, later = await press(wire, f"cc:{action}:" + "f" * 32)
    assert ack is not None
    shown = " ".join(r.content for r in later)
    assert "f" * 32 in shown or "can't find" in shown.lower() or "no image" in shown.lower(), shown
    await still_works(wire)


@pytest.mark.parametrize(
    ("data", "ctype", "expect"),
    [
        (GIF_JS, "image/gif", "PNG, JPEG or WebP"),
        (product_photo()[:80], "image/png", "PNG, JPEG or WebP"),
        (b"MZ\x90\x00" + b"\x00" * 64, "application/octet-stream", "PNG, JPEG or WebP"),
        (huge_png(), "image/png", "20000x20000"),
    ],
    ids=["gif-js-polyglot", "truncated-png", "windows-exe", "20000x20000"],
)
async def test_vary_refuses_bad_files(wire: Wire, data: bytes, ctype: str, expect: str) -> None:
    att = wire.attachment("upload.png", data, content_type=ctype)
    iid, token = wire.slash("vary", {"image": {"attachment": att["id"]}, "variations": "navy"}, attachments={att["id"]: att})
    text, pngs, ephemeral = await answer(wire, iid, token)
    assert expect in text and pngs == [] and ephemeral, text
    await still_works(wire)


async def test_a_flood_from_one_member_is_refused_with_the_rate_rule(wire: Wire) -> None:
    policy = wire.bot.chatcanvas.assistant.policy  # type: ignore[attr-defined]
    saved = policy.settings
    policy.settings = saved.model_copy(update={"rate_burst": 1, "rate_per_minute": 0.5})
    try:
        first = await imagine(wire, {"prompt": "mug one"}, user_id=FLOODER)
        second = await imagine(wire, {"prompt": "mug two"}, user_id=FLOODER)
    finally:
        policy.settings = saved
    assert len(first[1]) == 1
    assert "faster than the limit" in second[0] and second[2] and second[1] == []
    await still_works(wire)
