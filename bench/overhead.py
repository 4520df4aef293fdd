"""What serving adds to a generation: a direct diffusers pipeline call against the same image made as
a web-API job (``POST /v1/generations`` with an exact spec to a real ``chatcanvas run``, followed over
server-sent events until done), alternated, on the same model, steps, guidance, size and threads.

The job's time covers everything a user waits for: HTTP, the policy, the SQLite job record, the
queue, the pipeline call with its step callbacks and previews, the PNG with its recipe, watermark and
Content Credentials, the fsynced file and the done event. The direct call makes a PIL image only;
the "direct + PNG" line adds a plain PNG encode to it, for scale. Goal: job / direct <= 1.05 on the
demo model. Prints one summary line and appends the figures to bench/RESULTS.md.

    .venv/bin/python bench/overhead.py [--pairs 20] [--steps 20] [--model DIR] [--provenance on|off] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import tempfile
import time
from pathlib import Path

from _common import append_results, clean_env, free_port, median, ms, pct, spawn_run, stop, wait_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--model", help="checkpoint folder (default: the bundled demo model)")
    ap.add_argument("--provenance", choices=("on", "off"), default="on")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    import httpx
    import torch
    from diffusers import AutoPipelineForText2Image

    from chatcanvas.config import DEMO_MODEL_DIR, Settings
    from chatcanvas.generation import acceleration
    from chatcanvas.generation.diffusers_backend import DiffusersBackend

    model = args.model or str(DEMO_MODEL_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(model=model, data_dir=Path(tmp))
        be = DiffusersBackend(settings)
        size = be.native_size()
        guidance = float(be.defaults.get("default_guidance", 7.0))
        threads = acceleration.torch_threads(settings) or torch.get_num_threads()

        pipe = AutoPipelineForText2Image.from_pretrained(model, safety_checker=None)
        pipe.set_progress_bar_config(disable=True)

        torch.set_num_threads(threads)  # what the server's worker uses

        def direct(seed: int, encode: bool, frozen: bool = False) -> float:
            """The pipeline called plainly on this thread; ``frozen``: with what is loaded kept out of
            the garbage collector's rounds, as the server does after loading."""
            if frozen:
                gc.collect()
                gc.freeze()
            t0 = time.perf_counter()
            with torch.inference_mode():
                img = pipe(
                    "a red mug", num_inference_steps=args.steps, guidance_scale=guidance, width=size,
                    height=size, generator=torch.Generator().manual_seed(seed),
                ).images[0]
            if encode:
                img.save(io.BytesIO(), format="PNG")
            took = time.perf_counter() - t0
            if frozen:
                gc.unfreeze()
            return took

        async def job(client: httpx.AsyncClient, seed: int) -> float:
            spec = {"prompt": "a red mug", "seed": seed, "steps": args.steps, "guidance": guidance}
            t0 = time.perf_counter()
            r = await client.post("/v1/generations", json=spec)
            assert r.status_code in (200, 202), r.text
            async with client.stream("GET", f"/v1/jobs/{r.json()['id']}/events") as resp:
                name = ""
                async for line in resp.aiter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:") and name in ("done", "failed", "cancelled"):
                        assert name == "done", json.loads(line[5:])
                        break
            return time.perf_counter() - t0

        port = free_port()
        env = {"CHATCANVAS_DATA_DIR": str(Path(tmp) / "server"), "CHATCANVAS_WEB_PORT": str(port),
               "CHATCANVAS_MODEL": model, "CHATCANVAS_PROVENANCE": "true" if args.provenance == "on" else "false",
               "CHATCANVAS_TORCH_THREADS": str(threads), "CHATCANVAS_MAX_QUEUED_PER_USER": "1000",
               "CHATCANVAS_RATE_PER_MINUTE": "100000", "CHATCANVAS_RATE_BURST": "100000"}
        proc = await spawn_run(clean_env(**env), Path(tmp), adapters="web")
        d: list[float] = []
        dp: list[float] = []
        df: list[float] = []
        j: list[float] = []
        try:
            await wait_port(port, proc)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
                for _ in range(600):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.5)
                for seed in range(2):  # warm both paths up
                    direct(seed, False)
                    await job(client, seed)
                for i in range(args.pairs):  # ABBA order: slow drifts of the shared machine cancel out
                    seed = 100 + i
                    if i % 2 == 0:
                        d.append(direct(seed, False))
                        j.append(await job(client, seed))
                    else:
                        j.append(await job(client, seed))
                        d.append(direct(seed, False))
                    dp.append(direct(seed, True))
                    df.append(direct(seed, False, frozen=True))
                    print(f"pair {i}: direct {d[-1]:.2f}s job {j[-1]:.2f}s frozen direct {df[-1]:.2f}s", flush=True)
        finally:
            await stop(proc)

    ratio = median(j) / median(d)
    ratio_f = median(j) / median(df)
    pairs = sorted(b / a for a, b in zip(d, j, strict=True))
    summary = (
        f"direct={ms(median(d))} job={ms(median(j))} ratio={ratio:.3f} (pairwise median {median(pairs):.3f}, "
        f"p90 {pct(pairs, 90):.3f}) direct+png={ms(median(dp))} frozen-gc direct={ms(median(df))} "
        f"ratio to it={ratio_f:.3f} provenance={args.provenance} goal<=1.05"
    )
    print(summary)
    if args.no_append:
        return
    body = "\n".join(
        [
            f"`bench/overhead.py --pairs {args.pairs} --steps {args.steps} --provenance {args.provenance}`, model "
            f"{'demo' if not args.model else args.model} at {size}x{size}, guidance {guidance}, "
            f"{threads} torch threads, one worker; the direct call in the bench's process, the job in a "
            "`chatcanvas run --adapters web` process, alternated (ABBA), never at the same time.",
            "",
            "| path | median | p90 |",
            "|---|---|---|",
            f"| direct pipeline call | {ms(median(d))} | {ms(pct(d, 90))} |",
            f"| direct call + plain PNG encode | {ms(median(dp))} | {ms(pct(dp, 90))} |",
            f"| direct call, loaded objects frozen out of gc (as the server) | {ms(median(df))} | {ms(pct(df, 90))} |",
            f"| web-API job (POST → SSE done) | {ms(median(j))} | {ms(pct(j, 90))} |",
            "",
            f"Job / direct: **{ratio:.3f}** (median of pairs {median(pairs):.3f}); job / frozen-gc direct: "
            f"**{ratio_f:.3f}**; goal ≤ 1.05.",
            "",
            f"Summary: {summary}",
        ]
    )
    append_results(f"Serving overhead (overhead.py, provenance {args.provenance})", body)


if __name__ == "__main__":
    asyncio.run(main())
