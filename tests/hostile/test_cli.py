"""Hostile arguments to the ``chatcanvas`` command. Every case runs the command in this process
(tests/cli_runner.py: its environment, folder and logging put back after each), with
CHATCANVAS_BLOCKED_TERMS=zorblax; the last command is an ordinary one on the same data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import chatcanvas
from tests.hostile.conftest import GIF_JS, HTML_TAIL, huge_png, product_photo

# (id, arguments after "generate", exit code, stderr holds)
CASES: list[tuple[str, list[str], int, str]] = [
    ("empty-prompt", [""], 1, "Give a prompt"),
    ("5000-char-prompt", ["x" * 5000], 1, "at most 4000 characters"),
    ("steps-10^6", ["a mug", "--steps", "1000000"], 1, "steps: Input should be less than or equal to 500"),
    ("steps-word", ["a mug", "--steps", "lots"], 2, "invalid int value: 'lots'"),
    ("size-0", ["a mug", "--size", "0x0"], 1, "width: Input should be greater than or equal to 8"),
    ("size-minus-1", ["a mug", "--size=-1x-1"], 1, "expected WxH like 512x512"),
    ("size-10^9", ["a mug", "--size", "1000000000x1000000000"], 1, "less than or equal to 4096"),
    ("count-minus-1", ["a mug", "--count", "-1"], 1, "count: Input should be greater than or equal to 1"),
    ("count-64", ["a mug", "--count", "64"], 1, "64 images is over the limit"),
    ("seed-negative", ["a mug", "--seed", "-5"], 1, "seed"),
    ("guidance-nan", ["a mug", "--guidance", "nan"], 1, "guidance"),
    ("strength-7", ["a mug", "--init-image", "mug.png", "--strength", "7"], 1, "strength"),
    ("blocked-upper", ["a ZORBLAX mug"], 1, "(rule: blocked_terms#1)"),
    ("blocked-zero-width", ["a zor\u200bblax mug"], 1, "(rule: blocked_terms#1)"),
    ("blocked-cyrillic", ["a z\u043erblax mug"], 1, "(rule: blocked_terms#1)"),
    ("init-etc-passwd", ["a mug", "--init-image", "/etc/passwd"], 1, "isn't an image"),
    ("init-missing-traversal", ["a mug", "--init-image", "../../../../no/such/file.png"], 1, ""),
    ("init-html-as-png", ["a mug", "--init-image", "page.png"], 1, "isn't an image"),
    ("init-gif-js", ["a mug", "--init-image", "poly.gif"], 1, "isn't an image"),
    ("init-20000x20000", ["a mug", "--init-image", "huge.png"], 1, "20000x20000"),
    ("mask-etc-passwd", ["a mug", "--init-image", "mug.png", "--mask", "/etc/passwd"], 1, "isn't an image"),
    ("from-png-etc-passwd", ["--from-png", "/etc/passwd"], 1, "--from-png /etc/passwd"),
    ("backend-openai-without-key", ["a mug", "--backend", "openai"], 1, "OPENAI_API_KEY"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile-cli")
    (tmp / "mug.png").write_bytes(product_photo())
    (tmp / "page.png").write_bytes(HTML_TAIL)
    (tmp / "poly.gif").write_bytes(GIF_JS)
    (tmp / "huge.png").write_bytes(huge_png())
    model = ["--model", str(tiny_model_dir)]
    runs = [["generate", *args, *model, "-o", f"{cid}.png"] for cid, args, _, _ in CASES]
    runs.append(["generate", "a small blue mug", *model, "--steps", "1", "-o", "after.png"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCANVAS_", "OPENAI_"))}
    env.update(HF_HUB_OFFLINE="1", CHATCANVAS_DATA_DIR=str(tmp / "data"), CHATCANVAS_BLOCKED_TERMS="zorblax")
    got = []
    for argv in runs:
        try:
            ran = chatcanvas(tmp, *argv, env=env)
            got.append({"rc": ran.returncode, "stdout": ran.stdout, "stderr": ran.stderr})
        except BaseException as exc:  # the command must never go down: recorded as that case's failure
            got.append({"rc": -1, "stdout": "", "stderr": repr(exc)})
    out = {cid: r for (cid, *_), r in zip(CASES, got, strict=False)}
    out["after"] = {**got[-1], "png": (tmp / "after.png").is_file(), "made": sorted(x.name for x in tmp.glob("*.png"))}
    return out


@pytest.mark.parametrize(("case", "rc", "says"), [(c[0], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_arguments_get_one_clear_line(results: dict[str, dict[str, Any]], case: str, rc: int, says: str) -> None:
    r = results[case]
    assert r["rc"] == rc, r
    assert says in r["stderr"], r["stderr"][-400:]
    assert "Traceback" not in r["stderr"] and "root:" not in r["stderr"] and "root:" not in r["stdout"]
    if rc == 1:
        last = r["stderr"].strip().splitlines()[-1]
        assert last.startswith(("error: ", "refused: ")), last
    assert "BytesIO object at" not in r["stderr"] or case == "from-png-etc-passwd"


def test_the_command_after_them_makes_its_image(results: dict[str, dict[str, Any]]) -> None:
    r = results["after"]
    assert r["rc"] == 0 and r["png"], r
    assert r["made"] == ["after.png", "huge.png", "mug.png", "page.png"]  # no hostile case wrote an image
