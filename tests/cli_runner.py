"""Run the `chatcanvas` command inside the test process: the same argv, environment, working folder,
output streams and exit code a subprocess would have, without importing torch and diffusers again for
every call (about 9 s each on a 2-core machine). ``tests/test_cli.py`` keeps real subprocesses for the
checks that need one (the whole command as installed; what ``--help`` imports)."""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Ran:
    """What a finished command left: the fields of ``subprocess.CompletedProcess`` the tests read."""

    returncode: int
    stdout: str
    stderr: str


def chatcanvas(cwd: Path, *args: str, env: dict[str, str]) -> Ran:
    """``chatcanvas ARGS`` in ``cwd`` with exactly ``env`` as its environment; everything the command
    changes in this process (environment, folder, log levels and handlers, warning filters) is put back."""
    from chatcanvas import cli
    from chatcanvas.safety.redact import uninstall_redaction

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    formatters = [(h, h.formatter) for h in root.handlers]
    noisy = {name: logging.getLogger(name).level for name in ("diffusers", "transformers", "httpx")}
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err):
            # the handler ``logging.basicConfig`` gives a fresh process (the root has pytest's here)
            here = logging.StreamHandler(sys.stderr)
            here.setFormatter(logging.Formatter("%(message)s"))
            root.addHandler(here)
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        uninstall_redaction()
        for h in list(root.handlers):
            if h not in saved_handlers:
                root.removeHandler(h)
        for h, f in formatters:
            h.setFormatter(f)
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Ran(code, out.getvalue(), err.getvalue())
