"""Does a long-running server keep its memory? ``--n`` sequential generations (one job at a time, each
through the engine: queue, pipeline, PNG with recipe and provenance, fsynced file, SQLite) on the demo
model; the process's resident memory after 50 and after ``--n``. Goal: within 5 %. Prints one summary
line and appends the figures to bench/RESULTS.md.

    .venv/bin/python bench/memory.py [--n 500] [--steps N] [--model DIR] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

from _common import append_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    ap.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    from chatcanvas.app import build_app
    from chatcanvas.config import Settings
    from chatcanvas.types import Images, ImageSpec, Place, UserRef

    marks: dict[int, float] = {}
    colours = ["red", "navy", "olive", "beige", "white", "black", "forest green", "pink"]
    products = ["mug", "cap", "tote bag", "sneaker", "t-shirt"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(model=args.model, data_dir=Path(tmp), default_steps=args.steps, max_queued_per_user=10**6)
        ctx = await build_app(s)
        await ctx.engine.warm_up()
        where = Place(platform="bench", channel="memory")
        try:
            for i in range(1, args.n + 1):
                spec = ImageSpec(prompt=f"a {colours[i % 8]} {products[i % 5]}", seed=i)
                rec = await ctx.engine.submit(spec, UserRef(platform="bench", user=f"u{i % 7}"), where)
                last = None
                async for ev in ctx.engine.follow(rec.id):
                    last = ev
                assert isinstance(last, Images), last
                if i in (10, 50, 100, 200, 300, 400, args.n) or i % 100 == 0:
                    gc.collect()
                    marks[i] = rss_mb()
                    print(f"{i:4d} images: {marks[i]:.1f} MiB", flush=True)
        finally:
            await ctx.aclose()
    took = time.perf_counter() - t0
    growth = (marks[args.n] - marks[50]) / marks[50] * 100
    summary = f"rss@50={marks[50]:.1f}MiB rss@{args.n}={marks[args.n]:.1f}MiB growth={growth:+.1f}% goal<=5%"
    print(summary)
    if args.no_append:
        return
    rows = "\n".join(f"| {i} | {mb:.1f} MiB |" for i, mb in sorted(marks.items()))
    body = (
        f"`bench/memory.py --n {args.n}`, model {args.model or 'demo'}: {args.n} jobs one after another "
        f"through the engine in one process ({took / 60:.1f} min).\n\n| images | resident memory |\n|---|---|\n"
        f"{rows}\n\nGrowth from 50 to {args.n} images: **{growth:+.1f} %** (goal: within 5 %).\n\nSummary: {summary}"
    )
    append_results("Memory over a long run (memory.py)", body)


if __name__ == "__main__":
    asyncio.run(main())
