"""The job engine: fairness, batching, limits, cancel, restart recovery (SIGKILL) and SIGTERM drain."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chatcanvas.app import build_app
from chatcanvas.errors import Refusal
from chatcanvas.generation.jobs import JobStatus
from chatcanvas.types import Cancelled, Images, ImageSpec, Place, Progress, Queued, UserRef

HERE = Place(platform="test", channel="c")


def user(name: str, server: str = "s1") -> UserRef:
    return UserRef(platform="test", user=name, server=server)


async def wait_done(engine, job_id: str) -> list[object]:  # type: ignore[no-untyped-def]
    return [ev async for ev in engine.follow(job_id)]


async def test_three_users_single_jobs_finish_before_first_users_third(settings) -> None:  # type: ignore[no-untyped-def]
    """3 users submit 10, 1 and 1 jobs at once; the two single jobs finish before the first user's third."""
    ctx = await build_app(settings.model_copy(update={"batch_size": 1}))
    try:
        eng = ctx.engine
        finished: list[str] = []
        a = [await eng.submit(ImageSpec(prompt=f"a mug {i}"), user("alice"), HERE) for i in range(10)]
        b = await eng.submit(ImageSpec(prompt="a cap"), user("bob"), HERE)
        c = await eng.submit(ImageSpec(prompt="a tote"), user("carol", server="s2"), HERE)

        async def track(job_id: str) -> None:
            await wait_done(eng, job_id)
            finished.append(job_id)

        await asyncio.gather(*(track(j.id) for j in [*a, b, c]))
        assert finished.index(b.id) < finished.index(a[2].id)
        assert finished.index(c.id) < finished.index(a[2].id)
        assert len(finished) == 12
    finally:
        await ctx.aclose()


async def test_queue_positions_are_reported(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings, start=False)  # no workers yet: everything waits
    try:
        ctx.engine._accepting = True
        jobs = [await ctx.engine.submit(ImageSpec(prompt="x"), user("u"), HERE) for _ in range(3)]
        positions = [ctx.engine.position(j.id) for j in jobs]
        assert positions == [0, 1, 2]
        first = [ev async for ev in _take(ctx.engine.follow(jobs[2].id), 1)]
        assert isinstance(first[0], Queued) and first[0].position == 2
    finally:
        await ctx.aclose()


async def _take(it, n):  # type: ignore[no-untyped-def]
    i = 0
    async for ev in it:
        yield ev
        i += 1
        if i >= n:
            return


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


async def test_batched_images_equal_unbatched(settings) -> None:  # type: ignore[no-untyped-def]
    specs = [
        ImageSpec(prompt=p, seed=s, steps=3) for p, s in [("a red mug", 1), ("a blue cap", 2), ("a tote", 3)]
    ]
    alone = []
    ctx = await build_app(settings.model_copy(update={"batch_size": 1}))
    try:
        for s in specs:
            j = await ctx.engine.submit(s, user("u"), HERE)
            evs = await wait_done(ctx.engine, j.id)
            alone.append(evs[-1].images[0].png)  # type: ignore[attr-defined]
    finally:
        await ctx.aclose()

    batched_settings = settings.model_copy(
        update={"batch_size": 4, "batch_wait_ms": 500, "data_dir": settings.data_dir / "b"}
    )
    ctx = await build_app(batched_settings)
    try:
        jobs = [await ctx.engine.submit(s, user(f"u{i}"), HERE) for i, s in enumerate(specs)]
        results = [await wait_done(ctx.engine, j.id) for j in jobs]
        rows = ctx.store.execute("SELECT kind, data FROM job_events WHERE kind = 'started'")
        assert any('"batch": 3' in r["data"] for r in rows), "the three jobs should have run as one batch"
        for evs, png in zip(results, alone, strict=True):
            assert np.array_equal(_pixels(evs[-1].images[0].png), _pixels(png))  # type: ignore[attr-defined]
    finally:
        await ctx.aclose()


async def test_progress_then_images_with_recipe(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings)
    try:
        j = await ctx.engine.submit(
            ImageSpec(prompt="a green sneaker", seed=5, steps=4, count=2), user("u"), HERE
        )
        evs = await wait_done(ctx.engine, j.id)
        steps = [e.step for e in evs if isinstance(e, Progress)]
        assert steps == [1, 2, 3, 4]
        done = evs[-1]
        assert isinstance(done, Images) and len(done.images) == 2
        assert [i.recipe.seed for i in done.images] == [5, 6]
        for img in done.images:
            assert Path(img.path or "").read_bytes() == img.png
        rec = ctx.engine.job(j.id)
        assert rec is not None and rec.status == JobStatus.DONE and len(rec.image_ids) == 2
    finally:
        await ctx.aclose()


async def test_cancel_queued_and_not_others_jobs(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings, start=False)
    try:
        ctx.engine._accepting = True
        j = await ctx.engine.submit(ImageSpec(prompt="x"), user("me"), HERE)
        with pytest.raises(Refusal, match="isn't yours") as err:
            await ctx.engine.cancel(j.id, user("someone-else"))
        assert err.value.rule == "owner"
        assert await ctx.engine.cancel(j.id, user("me"))
        evs = await wait_done(ctx.engine, j.id)
        assert isinstance(evs[-1], Cancelled)
        assert ctx.engine.job(j.id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    finally:
        await ctx.aclose()


async def test_cancel_running_job_stops_at_next_step(settings) -> None:  # type: ignore[no-untyped-def]
    ctx = await build_app(settings)
    try:
        j = await ctx.engine.submit(ImageSpec(prompt="x", steps=50, width=256, height=256), user("me"), HERE)
        async for ev in ctx.engine.follow(j.id):
            if isinstance(ev, Progress):
                await ctx.engine.cancel(j.id, user("me"))
            if isinstance(ev, Cancelled):
                break
        rec = ctx.engine.job(j.id)
        assert rec is not None and rec.status == JobStatus.CANCELLED and not rec.image_ids
    finally:
        await ctx.aclose()


# ---------------------------------------------------------------- real processes

WORKER = textwrap.dedent(
    """
    import asyncio, signal, sys
    from chatcanvas.app import build_app
    from chatcanvas.config import Settings
    from chatcanvas.types import ImageSpec, Place, UserRef

    async def main(model, data, submit):
        s = Settings(model=model, data_dir=data, default_steps=30, batch_size=1, drain_timeout_s=60)
        ctx = await build_app(s)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        if submit:
            for i in range(3):
                rec = await ctx.engine.submit(ImageSpec(prompt=f"mug {i}", seed=i, width=64, height=64, count=2),
                                              UserRef(platform="t", user=f"u{i}"), Place(platform="t"))
                print("submitted", rec.id, flush=True)
        while not stop.is_set() and any(j.status in ("queued", "running") for j in ctx.engine.jobs()):
            await asyncio.sleep(0.1)
        await ctx.aclose()
        print("stopped" if stop.is_set() else "all finished", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "submit"))
    """
)


def _spawn(tmp: Path, model: Path, submit: bool) -> subprocess.Popen[str]:
    script = tmp / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(
        [sys.executable, str(script), str(model), str(tmp / "data"), "submit" if submit else "resume"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _db(tmp: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp / "data" / "chatcanvas.db")


def _wait_for_running(tmp: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if _db(tmp).execute("SELECT COUNT(*) FROM jobs WHERE status = 'running'").fetchone()[0]:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError("no job started running")


def test_kill_9_during_generation_then_restart_loses_nothing(tmp_path: Path, tiny_model_dir: Path) -> None:
    proc = _spawn(tmp_path, tiny_model_dir, submit=True)
    _wait_for_running(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    statuses = [r[0] for r in _db(tmp_path).execute("SELECT status FROM jobs")]
    assert len(statuses) == 3 and "running" in statuses  # killed with work in flight

    again = _spawn(tmp_path, tiny_model_dir, submit=False)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    db = _db(tmp_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT id, status FROM jobs").fetchall()
    assert len(rows) == 3 and all(s == "done" for _, s in rows), rows
    for job_id, _ in rows:
        imgs = db.execute("SELECT path FROM images WHERE job_id = ?", (job_id,)).fetchall()
        assert len(imgs) == 2  # exactly once: count 2, no duplicates
        assert all(Path(p).is_file() for (p,) in imgs)
    files = list((tmp_path / "data" / "images").rglob("*.png"))
    assert len(files) == 6
    assert not list((tmp_path / "data" / "images").rglob("*.tmp"))


def test_sigterm_drains_running_work(tmp_path: Path, tiny_model_dir: Path) -> None:
    proc = _spawn(tmp_path, tiny_model_dir, submit=True)
    _wait_for_running(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped" in out, out
    db = _db(tmp_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The running job was let finish; the rest wait, queued, for the next start.
    statuses = [r[0] for r in db.execute("SELECT status FROM jobs ORDER BY created")]
    assert statuses[0] == "done" and set(statuses[1:]) <= {"queued", "done"}, statuses
    again = _spawn(tmp_path, tiny_model_dir, submit=False)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert {r[0] for r in _db(tmp_path).execute("SELECT status FROM jobs")} == {"done"}
