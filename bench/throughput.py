"""Throughput of the job engine with micro-batching on and off, in one run.

16 users each ask for one image at once (as in a busy Discord server); the engine either runs
compatible jobs together (batch size 8) or one at a time. Prints images per second for both and
the ratio; the last line is ``batched=X/s unbatched=Y/s speedup=Z``.

    .venv/bin/python bench/throughput.py [--model DIR] [--n 16] [--batch 8] [--steps N]

``--users 1,4,16`` measures instead N users who each ask again as soon as their image comes (a
closed loop, about 24 images per N), batching on (batch size ``--batch``, the default batch wait) and
off, and appends the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


async def run_once(model: str | None, n: int, batch: int, steps: int | None, data: Path) -> float:
    from chatcanvas.app import build_app
    from chatcanvas.config import Settings
    from chatcanvas.types import ImageSpec, Place, UserRef

    s = Settings(
        model=model,
        data_dir=data,
        batch_size=batch,
        batch_wait_ms=50,
        default_steps=steps,
        max_queued_per_user=100,
    )
    ctx = await build_app(s)
    try:
        # warm up: load the pipeline once, outside the timing
        warm = await ctx.engine.submit(
            ImageSpec(prompt="a mug", seed=0), UserRef(platform="b", user="w"), Place(platform="b")
        )
        async for _ in ctx.engine.follow(warm.id):
            pass
        t0 = time.perf_counter()
        jobs = [
            await ctx.engine.submit(
                ImageSpec(prompt=f"a {c} mug", seed=i),
                UserRef(platform="b", user=f"u{i}"),
                Place(platform="b"),
            )
            for i, c in enumerate(["red", "blue", "green", "pink"] * (n // 4 + 1))
            if i < n
        ]

        async def done(job_id: str) -> None:
            async for _ in ctx.engine.follow(job_id):
                pass

        await asyncio.gather(*(done(j.id) for j in jobs))
        return n / (time.perf_counter() - t0)
    finally:
        await ctx.aclose()


async def closed_loop(model: str | None, users: int, batch: int, steps: int | None, data: Path) -> tuple[float, float]:
    """``users`` users, each asking again when their image comes: (images per second, mean batch)."""
    from chatcanvas.app import build_app
    from chatcanvas.config import Settings
    from chatcanvas.types import ImageSpec, Place, UserRef

    s = Settings(model=model, data_dir=data, batch_size=batch, default_steps=steps, max_queued_per_user=100)
    ctx = await build_app(s)
    rounds = max(2, 24 // users)
    colours = ["red", "blue", "green", "pink", "navy", "olive", "beige", "black"]
    try:
        await ctx.engine.warm_up()
        warm = await ctx.engine.submit(ImageSpec(prompt="a mug", seed=0), UserRef(platform="b", user="w"), Place(platform="b"))
        async for _ in ctx.engine.follow(warm.id):
            pass

        async def user(u: int) -> None:
            for r in range(rounds):
                job = await ctx.engine.submit(
                    ImageSpec(prompt=f"a {colours[(u + r) % 8]} mug", seed=u * 100 + r),
                    UserRef(platform="b", user=f"u{u}"), Place(platform="b"),
                )
                async for _ in ctx.engine.follow(job.id):
                    pass

        t0 = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(users)))
        took = time.perf_counter() - t0
        rows = ctx.store.execute("SELECT data FROM job_events WHERE kind = 'started' AND job_id != ?", (warm.id,))
        sizes = [json.loads(r["data"]).get("batch", 1) for r in rows]
        return users * rounds / took, sum(sizes) / max(1, len(sizes))
    finally:
        await ctx.aclose()


def users_table(args: argparse.Namespace) -> None:
    from _common import append_results

    lines = ["| users | batching off | batching on | speedup | mean batch (on) |", "|---|---|---|---|---|"]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.users.split(",")]:
            off, _ = asyncio.run(closed_loop(args.model, n, 1, args.steps, Path(tmp) / f"off{n}"))
            on, mean = asyncio.run(closed_loop(args.model, n, args.batch, args.steps, Path(tmp) / f"on{n}"))
            lines.append(f"| {n} | {off:.2f} img/s | {on:.2f} img/s | {on / off:.2f}x | {mean:.1f} |")
            out.append(f"{n} users: {on / off:.2f}x ({on:.2f} vs {off:.2f} img/s)")
            print(lines[-1], flush=True)
    summary = "; ".join(out)
    print(summary)
    append_results(
        "Micro-batching at 1, 4 and 16 users (throughput.py --users)",
        f"`bench/throughput.py --users {args.users} --batch {args.batch}`, model {args.model or 'demo'}, one "
        "worker: each user asks again as soon as their image comes (about 24 images per row); batching on "
        "is batch size " + str(args.batch) + " with the default batch wait, off is batch size 1.\n\n"
        + "\n".join(lines) + f"\n\nSummary: {summary}",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--users", help="e.g. 1,4,16: closed-loop users, batching on and off (see above)")
    args = ap.parse_args()
    if args.users:
        users_table(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        off = asyncio.run(run_once(args.model, args.n, 1, args.steps, Path(tmp) / "off"))
        on = asyncio.run(run_once(args.model, args.n, args.batch, args.steps, Path(tmp) / "on"))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"{args.n} concurrent requests, model {args.model or 'demo'}")
    print(f"batched={on:.2f}/s unbatched={off:.2f}/s speedup={on / off:.2f}")


if __name__ == "__main__":
    main()
