"""Images per second through Ray Serve with 1 and 2 replicas against the in-process backend, and the
latency Ray adds to one job.

One local Ray instance (``ray.init(num_cpus=N)``, CPU replicas of one core each, one torch thread each;
the in-process backend gets ``--threads``, 1 by default, so one replica and the local backend compare
like for like); the bot side is the real engine in this process, with ``CHATCANVAS_BACKEND=local`` or
``ray``. Throughput: ``--n`` users ask for one image each at once. Latency: ``--k`` single jobs one after
another, the first left out; the added latency is the 1-replica median minus the in-process one, both
taken around the pipeline call (end to end minus the pipeline's own seconds, so the compute, noisy on a
shared machine, is left out). The last line is
``inprocess=X/s ray1=Y/s ray2=Z/s added_latency=W ms``; ``--record`` appends a section to bench/RESULTS.md.

    .venv/bin/python bench/ray_throughput.py [--model DIR] [--n 16] [--k 9] [--steps N] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

APP = "chatcanvas-bench"


def settings(model: str | None, data: Path, backend: str, address: str = "", steps: int | None = None):  # type: ignore[no-untyped-def]
    from chatcanvas.config import Settings

    return Settings(
        model=model,
        data_dir=data,
        backend=backend,
        ray_address=address or None,
        ray_app=APP,
        batch_size=4,
        batch_wait_ms=20,
        default_steps=steps,
        max_queued_per_user=100,
        provenance=False,  # the same for both sides; signing is not what is measured
    )


async def measure(s, n: int, k: int) -> tuple[float, list[float], list[float]]:  # type: ignore[no-untyped-def]
    from chatcanvas.generation.engine import Engine
    from chatcanvas.store import Store
    from chatcanvas.types import Images, ImageSpec, Place, UserRef

    s.data_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(s, Store(s.data_dir))
    await engine.start()
    where = Place(platform="bench", channel="c")

    async def one(prompt: str, seed: int, user: str) -> float:
        """Submit to images; returns the pipeline's own seconds for it (the backend's timing)."""
        rec = await engine.submit(ImageSpec(prompt=prompt, seed=seed), UserRef(platform="bench", user=user), where)
        seconds = 0.0
        async for ev in engine.follow(rec.id):
            if isinstance(ev, Images):
                seconds = ev.images[0].seconds
        return seconds

    try:
        await one("a mug", 0, "warm")  # the model loaded, the link joined
        lat, over = [], []
        for i in range(k + 1):
            t0 = time.perf_counter()
            pipeline = await one(f"a {['red', 'navy', 'sage'][i % 3]} cap", i, "solo")
            lat.append(time.perf_counter() - t0)
            over.append(lat[-1] - pipeline)
        colours = ["red", "blue", "green", "pink", "black", "white", "teal", "mustard"]
        t0 = time.perf_counter()
        await asyncio.gather(*(one(f"a {colours[i % 8]} tote", i, f"u{i}") for i in range(n)))
        return n / (time.perf_counter() - t0), lat[1:], over[1:]
    finally:
        await engine.shutdown(drain_timeout=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    ap.add_argument("--n", type=int, default=16, help="concurrent one-image requests")
    ap.add_argument("--k", type=int, default=9, help="sequential single jobs for the latency")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--cpus", type=int, default=2, help="the local Ray instance's CPUs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in process (a replica has one per CPU)")
    ap.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads; replicas: Ray sets one per CPU

    import ray
    from ray import serve

    from chatcanvas.generation.ray_app import WorkerOptions, application

    results: dict[str, tuple[float, list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["inprocess"] = asyncio.run(
            measure(settings(args.model, Path(tmp) / "local", "local", steps=args.steps), args.n, args.k)
        )
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            serve.start(proxy_location="Disabled")
            address = str(ray.get_runtime_context().gcs_address)
            replica_settings = {"model": args.model} if args.model else {}
            if args.steps:
                replica_settings["default_steps"] = args.steps
            for replicas in (1, 2):
                opts = WorkerOptions(settings=replica_settings, replicas=replicas, max_batch=4, batch_wait_s=0.02)
                serve.run(application(opts), name=APP, route_prefix=None)
                s = settings(args.model, Path(tmp) / f"ray{replicas}", "ray", address, args.steps)
                results[f"ray{replicas}"] = asyncio.run(measure(s, args.n, args.k))
                serve.delete(APP)
        finally:
            serve.shutdown()
            ray.shutdown()

    med = {name: statistics.median(lat) * 1000 for name, (_, lat, _) in results.items()}
    # time around the pipeline call (queue, transport, PNG, signing): the compute itself left out
    around = {name: statistics.median(over) * 1000 for name, (_, _, over) in results.items()}
    added = around["ray1"] - around["inprocess"]
    machine = f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}, ray {ray.__version__}"
    lines = [
        f"machine: {machine}",
        f"model {args.model or 'demo'}, {args.n} concurrent one-image requests, {args.k} sequential for latency, "
        f"{args.threads} torch thread(s) in process, CPU replicas of 1 CPU each on a {args.cpus}-CPU Ray",
    ]
    for name, (ips, lat, _) in results.items():
        lines.append(
            f"{name:9} {ips:6.2f} img/s   one job: median {med[name]:7.1f} ms (min {min(lat) * 1000:.1f}), "
            f"of which around the pipeline {around[name]:6.1f} ms"
        )
    summary = (
        f"inprocess={results['inprocess'][0]:.2f}/s ray1={results['ray1'][0]:.2f}/s "
        f"ray2={results['ray2'][0]:.2f}/s added_latency={added:.0f} ms"
    )
    print("\n".join(lines))
    print(summary)
    if args.record:
        out = Path(__file__).parent / "RESULTS.md"
        with out.open("a") as f:
            when = time.strftime("%a %b %d %H:%M UTC %Y", time.gmtime())
            f.write(f"\n## Ray Serve workers: throughput and added latency — {when}\n\n")
            f.write("`python bench/ray_throughput.py --record`\n\n```\n" + "\n".join(lines) + "\n" + summary + "\n```\n")


if __name__ == "__main__":
    main()
