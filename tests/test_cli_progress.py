"""``chatcanvas generate`` shows a progress bar from the start (loading, then steps) on a terminal, and
none when stderr is a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, model: Path) -> dict[str, str]:
    ours = ("CHATCANVAS_", "SLACK_", "OPENAI_", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(PYTHONPATH=str(REPO), CHATCANVAS_DATA_DIR=str(tmp_path / "data"))
    return env


def _argv(model: Path, out: Path) -> list[str]:
    exe = str(Path(sys.executable).with_name("chatcanvas"))
    return [exe, "generate", "a teal cap", "--count", "2", "--steps", "6", "--model", str(model), "-o", str(out)]


def _run_on_a_terminal(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 wide
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=300)
    os.close(master)
    assert proc.stdout is not None
    proc.stdout.close()
    return proc.returncode, seen.decode(errors="replace")


def test_generate_shows_a_bar_on_a_terminal(tmp_path: Path, tiny_model_dir: Path) -> None:
    code, err = _run_on_a_terminal(_argv(tiny_model_dir, tmp_path / "cap.png"), _env(tmp_path, tiny_model_dir), tmp_path)
    assert code == 0, err[-2000:]
    assert "6/6" in err or "5/6" in err, err[-2000:]  # the steps, drawn as they come
    assert "step" in err
    assert "loading model" in err or "queued" in err or "generating" in err  # something before the first step
    assert (tmp_path / "cap-1.png").is_file() and (tmp_path / "cap-2.png").is_file()


def test_generate_draws_no_bar_into_a_pipe(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Output that is not a terminal (here: the command in this process, writing into buffers)."""
    from tests.cli_runner import chatcanvas

    proc = chatcanvas(tmp_path, *_argv(tiny_model_dir, tmp_path / "cap.png")[1:], env=_env(tmp_path, tiny_model_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "6/6" not in proc.stderr and "step/s" not in proc.stderr
    assert "cap-1.png" in proc.stdout
