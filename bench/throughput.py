"""Throughput of the job engine with micro-batching on and off, in one run.

16 users each ask for one image at once (as in a busy Discord server); the engine either runs
compatible jobs together (batch size 8) or one at a time. Prints images per second for both and
the ratio; the last line is ``batched=X/s unbatched=Y/s speedup=Z``.

    .venv/bin/python bench/throughput.py [--model DIR] [--n 16] [--batch 8] [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        off = asyncio.run(run_once(args.model, args.n, 1, args.steps, Path(tmp) / "off"))
        on = asyncio.run(run_once(args.model, args.n, args.batch, args.steps, Path(tmp) / "on"))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"{args.n} concurrent requests, model {args.model or 'demo'}")
    print(f"batched={on:.2f}/s unbatched={off:.2f}/s speedup={on / off:.2f}")


if __name__ == "__main__":
    main()
