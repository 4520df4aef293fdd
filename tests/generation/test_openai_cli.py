"""`chatcanvas generate` and `usage` on the openai backend, against the fake server."""

from __future__ import annotations

import base64
import io
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from chatcanvas.generation.metadata import parameters_from_png, recipe_from_png
from tests.cli_runner import Ran, chatcanvas
from tests.fakes.openai_server import FakeOpenAI, Fault, Reply, tiny_png

GEN = "/v1/images/generations"
REVISED = "A red fox in round spectacles reading a broadsheet newspaper at a café table."


@pytest.fixture
def fake() -> Any:
    with FakeOpenAI() as f:
        yield f


def run_cli(tmp_path: Path, fake: FakeOpenAI, *args: str, **env: str) -> Ran:
    """``chatcanvas ARGS`` on the openai backend (in this process: tests/cli_runner.py)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCANVAS_", "OPENAI_"))}
    clean.update(
        CHATCANVAS_BACKEND="openai",
        OPENAI_BASE_URL=fake.base_url,
        CHATCANVAS_DATA_DIR=str(tmp_path / "data"),
        **env,
    )
    return chatcanvas(tmp_path, *args, env=clean)


def idat(png: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        if png[pos + 4 : pos + 8] == b"IDAT":
            out.append(png[pos + 8 : pos + 8 + n])
        pos += 12 + n
    return out


def decoded(png: bytes) -> tuple[tuple[int, int], str, bytes]:
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        return im.size, im.mode, im.tobytes()


def test_generate_writes_the_server_png_with_the_revised_prompt_after_two_429s(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    served = tiny_png(40, 24, (10, 120, 200))
    fake.faults.append(Fault(status=429, headers={"Retry-After": "0"}, path=GEN))
    fake.faults.append(Fault(status=429, headers={"Retry-After": "0"}, path=GEN))
    fake.images_script.append(
        Reply(
            body={
                "created": 1,
                "data": [{"b64_json": base64.b64encode(served).decode(), "revised_prompt": REVISED}],
            }
        )
    )

    res = run_cli(tmp_path, fake, "generate", "a fox reading a newspaper", "-o", "out.png")

    assert res.returncode == 0, res.stdout + res.stderr
    out = (tmp_path / "out.png").read_bytes()
    assert decoded(out) == decoded(served)  # the server's pixels...
    assert idat(out) == idat(served)  # ...and its image data, byte for byte
    params = parameters_from_png(out)
    assert params["prompt"] == "a fox reading a newspaper"
    assert params["Revised prompt"] == REVISED and params["Backend"] == "openai"
    recipe = recipe_from_png(out)
    assert (recipe.revised_prompt, recipe.model, recipe.cost_usd) == (REVISED, "dall-e-3", 0.04)
    assert REVISED in res.stdout + res.stderr  # shown to the user
    assert len(fake.requests_to(GEN)) == 3

    usage = run_cli(tmp_path, fake, "usage")
    assert usage.returncode == 0, usage.stderr
    row = next(line for line in usage.stdout.splitlines() if line.startswith("cli "))
    assert row.split()[2:] == ["1", "$0.040", "$0.040", "$0.040"]


def test_content_policy_refusal_exits_1_with_a_clear_message(tmp_path: Path, fake: FakeOpenAI) -> None:
    why = "Your request was rejected as a result of our safety system."
    body = {
        "error": {
            "message": why,
            "type": "invalid_request_error",
            "param": None,
            "code": "content_policy_violation",
        }
    }
    fake.faults.append(Fault(status=400, body=body, path=GEN))

    res = run_cli(tmp_path, fake, "generate", "something not allowed", "-o", "out.png")

    output = res.stdout + res.stderr
    assert res.returncode == 1, output
    assert "The request was refused by the provider's content policy" in output and why in output
    assert "Traceback" not in output
    assert not (tmp_path / "out.png").exists()
    assert len(fake.requests_to(GEN)) == 1


def test_spending_limit_refuses_before_any_request(tmp_path: Path, fake: FakeOpenAI) -> None:
    res = run_cli(
        tmp_path,
        fake,
        "generate",
        "a fox",
        "--count",
        "2",
        "-o",
        "out.png",
        CHATCANVAS_SPEND_LIMIT_USER_DAILY="0.05",
    )

    output = res.stdout + res.stderr
    assert res.returncode != 0, output
    assert "over your daily spending limit of $0.05" in output
    assert "Traceback" not in output
    assert fake.requests == []
