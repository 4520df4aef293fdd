"""Bans, pauses, backend-time usage and the GPU-seconds cap: the Admin facade, the policy's rules, the
engine holding a paused backend's queue, and ``chatcanvas admin`` on the same store from another process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chatcanvas.app import build_app
from chatcanvas.bot.controls import share_batch_seconds
from chatcanvas.generation.jobs import JobStatus
from chatcanvas.types import Accepted, Images, ImageSpec, Place, Refused, UserRef
from tests.conftest import outcome

OPERATOR = UserRef(platform="cli", user="operator")
GUILD_ADMIN = UserRef(platform="discord", user="900", server="g1", admin=True)
MAYA = UserRef(platform="discord", user="42", server="g1")
MAYA_ELSEWHERE = UserRef(platform="discord", user="42", server="g2")
CHANNEL = Place(platform="discord", channel="c1")


async def ask(ctx: Any, who: UserRef, prompt: str = "a navy tote bag", **spec: Any) -> Any:
    where = Place(platform=who.platform, channel="c1")
    return await outcome(ctx.assistant.generate(ImageSpec(prompt=prompt, **spec), who, where))


async def test_a_server_ban_holds_there_only_and_survives_a_restart(settings: Any) -> None:
    ctx = await build_app(settings, start=False)
    try:
        said = ctx.assistant.admin.ban(UserRef(platform="discord", user="42"), GUILD_ADMIN, "spam")
        assert said == "Banned discord:42 in this server: their requests are refused until `unban`."
        assert ctx.assistant.admin.ban(UserRef(platform="discord", user="900"), GUILD_ADMIN).startswith("You can't ban yourself")
    finally:
        await ctx.aclose()
    ctx = await build_app(settings)  # a new process, the same data folder
    try:
        refused = ctx.assistant.precheck(MAYA, CHANNEL)
        assert refused is not None and refused.rule == "banned" and "rule: banned" in refused.reason
        assert ctx.assistant.precheck(MAYA_ELSEWHERE, CHANNEL) is None  # another guild: not banned there
        ev = await ask(ctx, MAYA)
        assert isinstance(ev, Refused) and ev.rule == "banned"
        assert ctx.assistant.admin.unban(UserRef(platform="discord", user="42"), GUILD_ADMIN) == "Unbanned discord:42."
        assert ctx.assistant.precheck(MAYA, CHANNEL) is None
    finally:
        await ctx.aclose()


async def test_an_everywhere_ban_from_the_command_line(settings: Any) -> None:
    ctx = await build_app(settings, start=False)
    try:
        assert "everywhere" in ctx.assistant.admin.ban(UserRef(platform="discord", user="42"), OPERATOR)
        for who in (MAYA, MAYA_ELSEWHERE, UserRef(platform="discord", user="42")):
            refused = ctx.assistant.precheck(who, CHANNEL)
            assert refused is not None and refused.rule == "banned", who
        # a guild admin cannot lift a ban the operator set everywhere
        assert "isn't banned here" in ctx.assistant.admin.unban(UserRef(platform="discord", user="42"), GUILD_ADMIN)
        assert ctx.assistant.precheck(MAYA, CHANNEL) is not None
    finally:
        await ctx.aclose()


async def test_pause_refuses_new_requests_and_holds_queued_jobs_until_resumed(settings: Any) -> None:
    ctx = await build_app(settings)
    try:
        await ctx.engine.warm_up()
        admin = ctx.assistant.admin
        assert admin.pause("local", OPERATOR, "maintenance").startswith("Paused local")
        assert admin.pause("LOCAL", OPERATOR) == "local is already paused."
        ev = await ask(ctx, MAYA)
        assert isinstance(ev, Refused) and ev.rule == "paused" and "paused by an admin" in ev.reason

        # work already let in (or queued by the operator) waits while the backend is paused
        rec = await ctx.engine.submit(ImageSpec(prompt="a beige cap", seed=4), MAYA, CHANNEL)
        await asyncio.sleep(2.5)  # longer than the workers take to look again
        job = ctx.engine.job(rec.id)
        assert job is not None and job.status == JobStatus.QUEUED
        assert "Paused: local" in admin.queue_text(OPERATOR) and rec.id in admin.queue_text(OPERATOR)

        assert admin.resume("local", OPERATOR).startswith("Resumed local")
        events = [e async for e in ctx.engine.follow(rec.id)]
        assert isinstance(events[-1], Images)
        assert isinstance(await ask(ctx, MAYA), Accepted)
        assert "no backend 'midjourney'" in admin.pause("midjourney", OPERATOR)
    finally:
        await ctx.aclose()


def test_batch_seconds_are_shared_by_image_count() -> None:
    assert share_batch_seconds(8.0, [1, 3]) == [2.0, 6.0]
    assert share_batch_seconds(3.0, [2, 2, 2]) == [1.0, 1.0, 1.0]
    assert share_batch_seconds(1.0, []) == []


async def test_gpu_seconds_per_user_and_server_shared_in_a_batch(settings: Any) -> None:
    ctx = await build_app(settings.model_copy(update={"batch_size": 4, "batch_wait_ms": 3000}))
    try:
        a = await ctx.engine.submit(ImageSpec(prompt="a red mug", count=1, seed=1), MAYA, CHANNEL)
        b = await ctx.engine.submit(  # one batch with the first: it waits for compatible work
            ImageSpec(prompt="a blue mug", count=3, seed=2), UserRef(platform="discord", user="7", server="g1"), CHANNEL
        )
        for rec in (a, b):
            assert isinstance([e async for e in ctx.engine.follow(rec.id)][-1], Images)
        rows = ctx.store.execute("SELECT job_id, images, seconds FROM backend_usage ORDER BY images")
        assert [(r[0], r[1]) for r in rows] == [(a.id, 1), (b.id, 3)]
        assert rows[1][2] == 3 * rows[0][2] > 0

        table = ctx.assistant.admin.usage_text(GUILD_ADMIN)
        lines = {line.split()[1]: line.split() for line in table.splitlines()[1:]}
        assert lines["42"][2:4] == ["1", "1"] and lines["7"][2:4] == ["3", "3"]
        assert float(lines["everyone"][4]) > 0
        only = ctx.assistant.admin.usage_text(GUILD_ADMIN, UserRef(platform="discord", user="42"))
        assert " 7 " not in only and "42" in only
        assert "No usage recorded" in ctx.assistant.admin.usage_text(UserRef(platform="discord", user="1", server="g9"))
    finally:
        await ctx.aclose()


async def test_a_job_cancelled_mid_run_still_counts_its_backend_time(settings: Any) -> None:
    """GPU time spent on a call that made no images (cancelled, failed, timed out) is still used."""
    from chatcanvas.types import Progress

    ctx = await build_app(settings)
    try:
        rec = await ctx.engine.submit(ImageSpec(prompt="a teal lamp", seed=3, steps=50), MAYA, CHANNEL)
        async for ev in ctx.engine.follow(rec.id):
            if isinstance(ev, Progress) and ev.step >= 2:
                assert await ctx.assistant.cancel(rec.id, MAYA)
        assert ctx.engine.table.get(rec.id).status == JobStatus.CANCELLED
        rows = ctx.store.execute("SELECT job_id, images, seconds FROM backend_usage")
        assert [(r[0], r[1]) for r in rows] == [(rec.id, 0)] and rows[0][2] > 0
        table = ctx.assistant.admin.usage_text(GUILD_ADMIN)
        assert "42" in table
    finally:
        await ctx.aclose()


async def test_the_daily_gpu_seconds_cap_refuses_until_midnight(settings: Any) -> None:
    ctx = await build_app(settings.model_copy(update={"gpu_seconds_limit_user_daily": 0.001}))
    try:
        web = UserRef(platform="web", user="shopper", server="local")
        first = await ask(ctx, web, seed=1)
        assert isinstance(first, Accepted)
        assert isinstance([e async for e in ctx.assistant.follow(first.job_ids)][-1], Images)
        again = await ask(ctx, web, seed=2)
        assert isinstance(again, Refused) and again.rule == "gpu_seconds"
        assert "daily limit" in again.reason and again.retry_after is not None and 0 < again.retry_after <= 86400
        assert isinstance(await ask(ctx, UserRef(platform="web", user="someone-else", server="local")), Accepted)
        assert isinstance(await ask(ctx, OPERATOR), Accepted)  # the machine's own user has no cap
    finally:
        await ctx.aclose()


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCANVAS_")}
    env.update(CHATCANVAS_DATA_DIR=str(tmp / "data"), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "chatcanvas.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp, timeout=300)


async def test_the_command_line_works_on_the_running_apps_store(settings: Any, tmp_path: Path) -> None:
    ctx = await build_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    try:
        p = cli(tmp_path, "admin", "ban", "slack:T1:U123", "--reason", "abuse")
        assert p.returncode == 0 and "Banned slack:U123" in p.stdout, p.stderr
        refused = ctx.assistant.precheck(UserRef(platform="slack", user="U123", server="T1"), Place(platform="slack"))
        assert refused is not None and refused.rule == "banned"

        p = cli(tmp_path, "admin", "pause", "openai")
        assert p.returncode == 0 and "Paused openai" in p.stdout
        assert ctx.assistant.admin.controls.is_paused("openai")
        p = cli(tmp_path, "admin", "queue")
        assert p.returncode == 0 and "Paused: openai" in p.stdout

        p = cli(tmp_path, "admin", "ban", "someone")
        assert p.returncode == 2 and "platform:user" in p.stderr
        p = cli(tmp_path, "admin", "cancel")
        assert p.returncode == 2 and "needs a job id" in p.stderr
        p = cli(tmp_path, "admin", "cancel", "0000000000000000")
        assert p.returncode == 0 and "There is no job 0000000000000000" in p.stdout

        p = cli(tmp_path, "usage")
        assert p.returncode == 0 and "By server:" in p.stdout and "GPU-s" in p.stdout
        actions = [r[0] for r in ctx.store.execute("SELECT action FROM admin_actions ORDER BY id")]
        assert actions == ["ban", "pause"]
    finally:
        await ctx.aclose()
