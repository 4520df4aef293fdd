"""``chatcanvas workers`` and ``CHATCANVAS_BACKEND=ray chatcanvas generate`` as a user runs them: real
processes, a local Ray instance started by the workers command (the module's one Ray start)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray.serve")

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

APP = "chatcanvas-cli-test"


def env_for(tmp: Path, model: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCANVAS_", "RAY_ADDRESS"))}
    e.update(
        {
            "HF_HUB_OFFLINE": "1",
            "CHATCANVAS_MODEL": str(model),
            "CHATCANVAS_DEFAULT_STEPS": "4",
            "CHATCANVAS_RAY_APP": APP,
            **extra,
        }
    )
    return e


class Workers:
    """`chatcanvas workers --replicas 2` in the background; its output read line by line."""

    def __init__(self, tmp: Path, model: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatcanvas.cli", "workers", "--replicas", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(tmp, model, CHATCANVAS_DATA_DIR=str(tmp / "workers")),
            cwd=tmp,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream, to_queue: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            if to_queue:
                self.lines.put(line)
            else:
                self.err.append(line)
        if to_queue:
            self.lines.put(None)

    def wait_ready(self) -> str:
        while True:
            line = self.lines.get(timeout=400)
            if line is None:
                raise AssertionError("workers ended before ready:\n" + "".join(self.err[-30:]))
            if line.startswith("ready"):
                found = re.search(r"on Ray at (\S+?),", line)
                assert found, line
                return found.group(1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[tuple[Workers, str]]:
    w = Workers(tmp_path_factory.mktemp("ray-cli"), tiny_model_dir)
    try:
        yield w, w.wait_ready()
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def generate(tmp: Path, model: Path, out: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatcanvas.cli", "generate", "a green cap", "--seed", "7", "-o", out],
        capture_output=True,
        text=True,
        env=env_for(tmp, model, CHATCANVAS_DATA_DIR=str(tmp / out.removesuffix(".png")), **extra),
        cwd=tmp,
        timeout=400,
    )


def test_generate_through_the_workers_writes_the_in_process_pixels(
    workers: tuple[Workers, str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    _, address = workers
    remote = generate(tmp_path, tiny_model_dir, "ray.png", CHATCANVAS_BACKEND="ray", CHATCANVAS_RAY_ADDRESS=address)
    assert remote.returncode == 0, remote.stderr
    local = generate(tmp_path, tiny_model_dir, "local.png")
    assert local.returncode == 0, local.stderr
    a, b = Image.open(tmp_path / "ray.png"), Image.open(tmp_path / "local.png")
    assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
    assert a.text["parameters"] == b.text["parameters"] and "Seed: 7" in a.text["parameters"]


def test_workers_stop_on_sigterm_and_take_their_ray_with_them(workers: tuple[Workers, str]) -> None:
    w, address = workers
    assert w.stop() == 0, "".join(w.err[-30:])
    assert any("stopped" in line for line in w.err)
    # the local Ray it started is gone: nothing answers at its address any more
    import socket

    host, _, port = address.rpartition(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=5).close()
