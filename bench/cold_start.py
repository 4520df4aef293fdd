"""Start-up: ``chatcanvas --help`` (goal under 0.5 s: no heavy import at start) and ``chatcanvas run``
to its first image (spawned, then a web ``POST /v1/generations`` the moment the port accepts, timed
to the done event), in fresh processes. Prints one summary line and appends the figures to
bench/RESULTS.md.

    .venv/bin/python bench/cold_start.py [--repeat 5] [--model DIR] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _common import CHATCANVAS, append_results, clean_env, free_port, median, spawn_run, stop, top, wait_port


def help_seconds() -> float:
    t0 = time.perf_counter()
    subprocess.run([CHATCANVAS, "--help"], env=clean_env(), check=True, capture_output=True)
    return time.perf_counter() - t0


async def first_image(model: str | None) -> tuple[float, float, float]:
    """(spawn -> listening, spawn -> the 202, spawn -> the first image done)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        extra = {"CHATCANVAS_DATA_DIR": tmp, "CHATCANVAS_WEB_PORT": str(port), "CHATCANVAS_DRAIN_TIMEOUT_S": "1"}
        if model:
            extra["CHATCANVAS_MODEL"] = model
        t0 = time.perf_counter()
        proc = await spawn_run(clean_env(**extra), Path(tmp), adapters="web")
        try:
            await wait_port(port, proc)
            listening = time.perf_counter() - t0
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
                r = await client.post("/v1/generations", json={"prompt": "a red mug", "seed": 1})
                accepted = time.perf_counter() - t0
                assert r.status_code in (200, 202), r.text
                async with client.stream("GET", f"/v1/jobs/{r.json()['id']}/events") as resp:
                    async for line in resp.aiter_lines():
                        if line.startswith("event:") and line[6:].strip() in ("done", "failed", "cancelled"):
                            assert line[6:].strip() == "done", line
                            break
            done = time.perf_counter() - t0
        finally:
            await stop(proc)
        return listening, accepted, done


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    helps = [help_seconds() for _ in range(args.repeat)]
    runs = [await first_image(args.model) for _ in range(args.repeat)]
    listen = [r[0] for r in runs]
    accepted = [r[1] for r in runs]
    done = [r[2] for r in runs]
    summary = (
        f"help={median(helps):.2f}s (max {top(helps):.2f}s, goal < 0.5 s) run: listening {median(listen):.2f}s, "
        f"first request accepted {median(accepted):.2f}s, first image {median(done):.2f}s after spawn"
    )
    print(summary)
    if args.no_append:
        return
    body = "\n".join(
        [
            f"`bench/cold_start.py --repeat {args.repeat}`, model {args.model or 'demo'}; fresh processes, "
            "medians (max).",
            "",
            "| what | median | max |",
            "|---|---|---|",
            f"| `chatcanvas --help` | {median(helps):.2f} s | {top(helps):.2f} s |",
            f"| `chatcanvas run`: port accepts | {median(listen):.2f} s | {top(listen):.2f} s |",
            f"| `chatcanvas run`: first POST answered (202) | {median(accepted):.2f} s | {top(accepted):.2f} s |",
            f"| `chatcanvas run`: first image done | {median(done):.2f} s | {top(done):.2f} s |",
            "",
            f"Summary: {summary}",
        ]
    )
    append_results("Cold start (cold_start.py)", body)


if __name__ == "__main__":
    asyncio.run(main())
