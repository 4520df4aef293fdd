"""How fast a real ``chatcanvas run`` answers: a Slack ``/imagine`` (signed, over HTTP) and a web
``POST /v1/generations``, cold and under saturation.

* **cold**: a fresh process each time (demo model unless --model); the first request is sent the
  moment the port accepts a connection, while the model is still loading. ``--cold N`` runs per
  platform (half of them Slack first, half web first: each platform's first request is timed).
* **saturated**: in one warmed-up process, ``--n`` requests per platform (waves of ``--concurrency``,
  distinct users) while the engine works through the backlog they make.

Slack answers through the fake Web API in tests/fakes (a real HTTP server on 127.0.0.1). Goals: cold
under 500 ms, p99 under saturation under 100 ms. Prints one summary line and appends the figures
to bench/RESULTS.md.

    .venv/bin/python bench/ack_latency.py [--cold 6] [--n 60] [--concurrency 6] [--model DIR] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import append_results, clean_env, free_port, median, ms, pct, spawn_run, stop, top, wait_port

from tests.fakes.slack_api import BOT_TOKEN, FakeSlackAPI
from tests.fakes.slack_requests import SIGNING_SECRET, form_body, form_headers, slash_command

PROMPTS = ["a red mug", "a navy tote bag", "a forest green cap", "a beige sneaker", "a black t-shirt"]


def _env(data: Path, web: int, slack: int, api: FakeSlackAPI, model: str | None) -> dict[str, str]:
    extra = dict(
        CHATCANVAS_DATA_DIR=str(data), CHATCANVAS_WEB_PORT=str(web), CHATCANVAS_SLACK_PORT=str(slack),
        CHATCANVAS_SLACK_HOST="127.0.0.1", SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api.api_url, CHATCANVAS_DRAIN_TIMEOUT_S="1",
        CHATCANVAS_MAX_QUEUE="100000", CHATCANVAS_MAX_QUEUED_PER_USER="100000",
        CHATCANVAS_MAX_QUEUED_PER_SERVER="100000", CHATCANVAS_RATE_PER_MINUTE="100000",
        CHATCANVAS_RATE_BURST="100000", CHATCANVAS_SERVER_RATE_PER_MINUTE="100000",
        CHATCANVAS_SERVER_RATE_BURST="100000",
    )
    if model:
        extra["CHATCANVAS_MODEL"] = model
    return clean_env(**extra)


def _warming_note(call: object) -> bool:
    return "Warming up" in str(getattr(call, "params", {}).get("text"))


async def slack_ack(http: aiohttp.ClientSession, port: int, i: int) -> float:
    body = form_body(slash_command(PROMPTS[i % len(PROMPTS)], user=f"U{i:05d}"))
    t0 = time.perf_counter()
    async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=form_headers(body)) as r:
        await r.read()
        assert r.status == 200, r.status
    return time.perf_counter() - t0


async def web_answer(http: aiohttp.ClientSession, port: int, i: int) -> tuple[float, bool]:
    """Seconds to the 202, and whether it said the model was still warming up."""
    t0 = time.perf_counter()
    payload = {"text": PROMPTS[i % len(PROMPTS)], "conversation": f"c{i}"}
    async with http.post(f"http://127.0.0.1:{port}/v1/generations", json=payload) as r:
        data = await r.json()
        assert r.status in (200, 202), (r.status, data)
    return time.perf_counter() - t0, any("Warming up" in t for t in data.get("texts", []))


async def cold_run(first: str, model: str | None) -> tuple[float, float, bool]:
    """One fresh process: (seconds to listening, the first request's answer, sent while warming up?)."""
    async with FakeSlackAPI() as api:
        with tempfile.TemporaryDirectory() as tmp:
            web, slack = free_port(), free_port()
            t0 = time.perf_counter()
            proc = await spawn_run(_env(Path(tmp), web, slack, api, model), Path(tmp))
            try:
                port = slack if first == "slack" else web
                await wait_port(port, proc)
                listening = time.perf_counter() - t0
                async with aiohttp.ClientSession() as http:
                    if first == "slack":
                        took = await slack_ack(http, port, 0)
                        warming = True
                        try:
                            await api.wait_for("chat.postMessage", where=_warming_note, within=10)
                        except TimeoutError:
                            warming = False
                    else:
                        took, warming = await web_answer(http, port, 0)
            finally:
                proc.kill()
                await proc.wait()
            return listening, took, warming


async def _waves(
    http: aiohttp.ClientSession, slack: int, web: int, ids: range, concurrency: int
) -> tuple[list[float], list[float]]:
    slack_t: list[float] = []
    web_t: list[float] = []
    for start in range(ids.start, ids.stop, concurrency):
        wave = range(start, min(ids.stop, start + concurrency))
        s, w = await asyncio.gather(
            asyncio.gather(*(slack_ack(http, slack, i) for i in wave)),
            asyncio.gather(*(web_answer(http, web, i) for i in wave)),
        )
        slack_t += s
        web_t += [t for t, _ in w]
    return slack_t, web_t


async def saturated(n: int, concurrency: int, model: str | None) -> tuple[dict[str, list[float]], int]:
    """In one warmed-up process, with a backlog: ``n`` rounds of one Slack and one web request at once
    ("steady"), then ``n`` per platform in bursts of ``concurrency`` each ("burst")."""
    async with FakeSlackAPI() as api:
        with tempfile.TemporaryDirectory() as tmp:
            web, slack = free_port(), free_port()
            proc = await spawn_run(_env(Path(tmp), web, slack, api, model), Path(tmp))
            try:
                await wait_port(slack, proc)
                await wait_port(web, proc)
                async with aiohttp.ClientSession() as http:
                    for _ in range(600):  # warmed up: the model loaded
                        async with http.get(f"http://127.0.0.1:{web}/readyz") as r:
                            if r.status == 200:
                                break
                        await asyncio.sleep(0.5)
                    await _waves(http, slack, web, range(90000, 90012), 6)  # a backlog for the engine
                    steady = await _waves(http, slack, web, range(0, n), 1)
                    burst = await _waves(http, slack, web, range(n, 2 * n), concurrency)
                    async with http.get(f"http://127.0.0.1:{web}/metrics") as r:
                        metrics = await r.text()
                backlog = _queued(metrics)
            finally:
                await stop(proc)
            out = {"slack steady": steady[0], "web steady": steady[1], "slack burst": burst[0], "web burst": burst[1]}
            return out, backlog


def _queued(metrics: str) -> int:
    for line in metrics.splitlines():
        if line.startswith("chatcanvas_queue_depth{"):
            try:
                return int(float(line.rsplit(" ", 1)[1]))
            except ValueError:
                pass
    return -1


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", type=int, default=6, help="fresh processes per platform")
    ap.add_argument("--n", type=int, default=60, help="requests per platform under saturation")
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    cold: dict[str, list[tuple[float, float, bool]]] = {"slack": [], "web": []}
    for i in range(args.cold * 2):
        first = "slack" if i % 2 == 0 else "web"
        cold[first].append(await cold_run(first, args.model))
        print(f"cold {first}: listening after {cold[first][-1][0]:.2f}s, answered in {ms(cold[first][-1][1])}"
              f"{' (model still loading)' if cold[first][-1][2] else ''}", flush=True)
    sat, backlog = await saturated(args.n, args.concurrency, args.model)

    def line(name: str, xs: list[float]) -> str:
        return f"| {name} | {len(xs)} | {ms(median(xs))} | {ms(pct(xs, 99))} | {ms(top(xs))} |"

    cs = [t for _, t, _ in cold["slack"]]
    cw = [t for _, t, _ in cold["web"]]
    ss, ws = sat["slack steady"], sat["web steady"]
    summary = (
        f"cold slack p50={ms(median(cs))} max={ms(top(cs))} web p50={ms(median(cw))} max={ms(top(cw))} | "
        f"saturated slack p50={ms(median(ss))} p99={ms(pct(ss, 99))} web p50={ms(median(ws))} p99={ms(pct(ws, 99))}"
        f" | bursts of {args.concurrency}+{args.concurrency}: slack p99={ms(pct(sat['slack burst'], 99))} "
        f"web p99={ms(pct(sat['web burst'], 99))} (goals: cold < 500 ms, p99 < 100 ms)"
    )
    print(summary)
    if args.no_append:
        return
    warm_s = sum(w for *_, w in cold["slack"])
    warm_w = sum(w for *_, w in cold["web"])
    listen = [x for runs in cold.values() for x, _, _ in runs]
    body = "\n".join(
        [
            f"`bench/ack_latency.py --cold {args.cold} --n {args.n} --concurrency {args.concurrency}`, "
            f"model {args.model or 'demo'}: a real `chatcanvas run --adapters web,slack` per cold sample "
            f"(listening {median(listen):.1f} s after spawn, median), signed Slack slash commands, "
            f"`POST /v1/generations` with text. Saturated: one warmed-up process whose engine has a "
            f"backlog the whole time (every request queues a job); \"steady\": a Slack and a web request "
            f"at once, {args.n} times; \"bursts\": {args.concurrency} of each at once.",
            "",
            "| requests | n | p50 | p99 | max |",
            "|---|---|---|---|---|",
            line("cold: Slack /imagine ack (first request)", cs),
            line("cold: web POST answer (first request)", cw),
            line("saturated, steady: Slack /imagine ack", ss),
            line("saturated, steady: web POST answer", ws),
            line(f"saturated, bursts of {args.concurrency}+{args.concurrency}: Slack ack", sat["slack burst"]),
            line(f"saturated, bursts of {args.concurrency}+{args.concurrency}: web answer", sat["web burst"]),
            "",
            f"Cold requests that arrived while the model was still loading: Slack {warm_s}/{len(cs)}, "
            f"web {warm_w}/{len(cw)}. {backlog if backlog >= 0 else 'An unknown number of'} jobs were still "
            f"queued at the end. Goals: cold < 500 ms, saturated p99 < 100 ms.",
            "",
            f"Summary: {summary}",
        ]
    )
    append_results("Acknowledgement latency (ack_latency.py)", body)


if __name__ == "__main__":
    asyncio.run(main())
