"""What the latency benchmarks share: the machine line, RESULTS.md, a ``chatcanvas run`` process."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import signal
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
CHATCANVAS = str(Path(sys.executable).with_name("chatcanvas"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = [f"Python {platform.python_version()}"]
    for name in ("torch", "diffusers", "transformers", "fastapi", "uvicorn", "slack-bolt"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def machine() -> str:
    return f"{platform.node()} ({cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()})"


def append_results(title: str, body: str) -> None:
    """A section in bench/RESULTS.md: the title with the date, the machine, versions and load, the body."""
    now = dt.datetime.now(dt.UTC).strftime("%a %b %d %H:%M UTC %Y")
    text = (
        f"\n## {title} — {now}\n\nMachine: {machine()}; {versions()}. "
        f"Load average at the end (1/5/15 min): {load_average()} (the machine is shared).\n\n{body.rstrip()}\n"
    )
    with RESULTS.open("a") as f:
        f.write(text)


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def top(values: Sequence[float]) -> float:
    return max(values) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    ours = ("CHATCANVAS_", "SLACK_", "OPENAI_", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


async def wait_port(port: int, proc: asyncio.subprocess.Process | None = None, within: float = 300) -> float:
    """Seconds until 127.0.0.1:port accepts a connection (polled every 10 ms)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < within:
        if proc is not None and proc.returncode is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return time.perf_counter() - t0
        except OSError:
            await asyncio.sleep(0.01)
    raise TimeoutError(f"nothing listens on {port}")


async def spawn_run(env: dict[str, str], cwd: Path, adapters: str = "web,slack") -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        CHATCANVAS, "run", "--adapters", adapters, env=env, cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return (err or b"").decode(errors="replace")
