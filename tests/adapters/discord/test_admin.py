"""``/chatcanvas-admin`` through the real discord.py client on the fake wire: who sees it, who may run it,
and what a ban or a pause does to the next ``/imagine``."""

from __future__ import annotations

from typing import Any

import pytest

from chatcanvas.types import UserRef
from tests.adapters.discord.conftest import Control
from tests.fakes.discord_wire import (
    MANAGE_GUILD,
    MEMBER_PERMISSIONS,
    OTHER_USER_ID,
    USER_ID,
    Wire,
    iter_png_files,
)

ADMIN = str(int(MEMBER_PERMISSIONS) | MANAGE_GUILD)
BOB = {OTHER_USER_ID: "bob"}


def callback(iid: str):  # type: ignore[no-untyped-def]
    return lambda r: r.is_callback(iid)


def admin(wire: Wire, sub: str, options: dict[str, Any] | None = None, **kw: Any) -> tuple[str, str]:
    kw.setdefault("permissions", ADMIN)
    return wire.slash("chatcanvas-admin", options, subcommand=sub, **kw)


async def answer(wire: Wire, iid: str) -> Any:
    (ans,) = await wire.wait_for(callback(iid), within=60.0)
    assert ans.json["type"] == 4 and ans.ephemeral
    return ans


async def test_the_group_is_synced_for_manage_server_members_only(wire: Wire) -> None:
    assert "chatcanvas-admin" in [c.name for c in wire.bot.tree.get_commands()]
    await wire.bot.tree.sync()
    (put,) = wire.fake.matching(lambda r: r.method == "PUT" and r.path.endswith("/commands"))
    (group,) = [c for c in put.json if c["name"] == "chatcanvas-admin"]
    assert int(group["default_member_permissions"]) == MANAGE_GUILD
    assert group.get("contexts") == [0] or group.get("dm_permission") is False  # not in DMs
    subs = sorted(o["name"] for o in group["options"])
    assert subs == ["ban", "cancel", "pause", "queue", "resume", "unban", "usage"]


async def test_a_member_without_manage_server_is_refused_and_nothing_changes(wire: Wire) -> None:
    iid, _ = admin(wire, "ban", {"user": {"user": USER_ID}}, user_id=OTHER_USER_ID, permissions=MEMBER_PERMISSIONS,
                   users={USER_ID: "alice"})
    ans = await answer(wire, iid)
    assert "Manage Server" in ans.content
    ctx = wire.bot.chatcanvas  # type: ignore[attr-defined]
    assert ctx.assistant.admin.controls.bans() == []

    iid, _ = admin(wire, "pause", {"backend": "local"}, user_id=OTHER_USER_ID, permissions=MEMBER_PERMISSIONS)
    assert "Manage Server" in (await answer(wire, iid)).content
    assert ctx.assistant.admin.controls.paused() == {}


async def test_a_banned_member_is_refused_until_unbanned(wire: Wire) -> None:
    iid, _ = admin(wire, "ban", {"user": {"user": OTHER_USER_ID}, "reason": "spamming the channel"}, users=BOB)
    assert f"Banned discord:{OTHER_USER_ID}" in (await answer(wire, iid)).content

    iid, _ = wire.slash("imagine", {"prompt": "a green cap"}, user_id=OTHER_USER_ID)
    refused = await answer(wire, iid)
    assert "blocked you" in refused.content and "rule: banned" in refused.content

    iid, _ = wire.slash("imagine", {"prompt": "a green cap"})  # alice is not banned
    (ack,) = await wire.wait_for(callback(iid), within=60.0)
    assert ack.json["type"] == 5

    iid, _ = admin(wire, "unban", {"user": {"user": OTHER_USER_ID}}, users=BOB)
    assert "Unbanned" in (await answer(wire, iid)).content
    iid, token = wire.slash("imagine", {"prompt": "a green cap", "seed": 3}, user_id=OTHER_USER_ID)
    (ack,) = await wire.wait_for(callback(iid), within=60.0)
    assert ack.json["type"] == 5
    await wire.wait_for(lambda r: r.is_original_edit(token) and any(True for _ in iter_png_files(r)))

    iid, _ = admin(wire, "usage", {"user": {"user": OTHER_USER_ID}}, users=BOB)
    table = (await answer(wire, iid)).content
    row = next(line for line in table.splitlines() if str(OTHER_USER_ID) in line)
    assert row.split()[:4] == ["discord", str(OTHER_USER_ID), "1", "1"]  # one image today, this month
    used = wire.bot.chatcanvas.assistant.admin.controls.gpu_seconds(  # type: ignore[attr-defined]
        UserRef(platform="discord", user=str(OTHER_USER_ID)), since=0
    )
    assert used > 0 and float(row.split()[4]) == pytest.approx(used, rel=0.2, abs=0.005)  # GPU-seconds, however short


async def test_pause_refuses_new_work_and_the_queue_says_so(wire: Wire, control: Control) -> None:
    control.hold(step=1)
    iid, token = wire.slash("imagine", {"prompt": "a navy tote bag"})
    await wire.wait_for(lambda r: r.is_original_edit(token) and "50%" in r.content)

    iid, _ = admin(wire, "queue")
    queue = (await answer(wire, iid)).content
    assert "1 running" in queue and "navy tote bag" in queue

    iid, _ = admin(wire, "pause", {"backend": "local", "reason": "the GPU is overheating"})
    assert "Paused local" in (await answer(wire, iid)).content
    _, token2 = wire.slash("imagine", {"prompt": "a white mug"}, user_id=OTHER_USER_ID)
    (refused,) = await wire.wait_for(lambda r: r.is_followup(token2))  # the backend is known after the defer
    assert refused.ephemeral and "paused by an admin" in refused.content and "rule: paused" in refused.content
    iid, _ = admin(wire, "queue")
    assert "Paused: local" in (await answer(wire, iid)).content

    iid, _ = admin(wire, "pause", {"backend": "midjourney"})
    assert "no backend 'midjourney'" in (await answer(wire, iid)).content

    control.release()
    iid, _ = admin(wire, "resume", {"backend": "local"})
    assert "Resumed local" in (await answer(wire, iid)).content
    iid, _ = wire.slash("imagine", {"prompt": "a white mug"}, user_id=OTHER_USER_ID)
    (ack,) = await wire.wait_for(callback(iid), within=60.0)
    assert ack.json["type"] == 5


async def test_cancel_stops_a_running_job_of_this_server(wire: Wire, control: Control) -> None:
    control.hold(step=1)
    _, token = wire.slash("imagine", {"prompt": "a beige sneaker"}, user_id=OTHER_USER_ID)
    await wire.wait_for(lambda r: r.is_original_edit(token) and "50%" in r.content)
    ctx = wire.bot.chatcanvas  # type: ignore[attr-defined]
    (entry,) = ctx.assistant.admin.queue(_cli())
    iid, _ = admin(wire, "cancel", {"job": entry.job_id})
    assert f"Cancelled job {entry.job_id}" in (await answer(wire, iid)).content
    control.release()
    await wire.wait_for(lambda r: r.is_followup(token) and "Cancelled." in r.content)

    iid, _ = admin(wire, "cancel", {"job": "0123456789abcdef"})
    assert "no job 0123456789abcdef" in (await answer(wire, iid)).content


def _cli() -> Any:
    from chatcanvas.types import UserRef

    return UserRef(platform="cli", user="operator")
