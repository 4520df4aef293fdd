"""Signed image URLs: valid until they expire, for one image id, made with one key per data folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from chatcanvas.config import Settings, load_settings
from chatcanvas.safety.signing import key_path, sign_image_url, verify_image_signature

IMAGE = "3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c"
OTHER = "u0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5"


def _query(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    return parts.path, q["exp"][0], q["sig"][0]


def test_round_trip_and_tampering(cfg: Settings) -> None:
    url = sign_image_url(f"/images/{IMAGE}.png", IMAGE, cfg, ttl=600)
    path, exp, sig = _query(url)
    assert path == f"/images/{IMAGE}.png" and int(exp) > time.time() + 590
    assert verify_image_signature(IMAGE, exp, sig, cfg)
    assert not verify_image_signature(OTHER, exp, sig, cfg)  # another image
    assert not verify_image_signature(IMAGE, str(int(exp) + 1), sig, cfg)  # a later expiry
    assert not verify_image_signature(IMAGE, exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"), cfg)
    for bad_exp, bad_sig in [(None, sig), (exp, None), ("12e9", sig), ("-5", sig), ("", ""), (exp, "ü" * 43)]:
        assert not verify_image_signature(IMAGE, bad_exp, bad_sig, cfg)


def test_expired_url_is_refused(cfg: Settings) -> None:
    _, exp, sig = _query(sign_image_url("/i.png", IMAGE, cfg, ttl=60, now=1_000_000.0))
    assert verify_image_signature(IMAGE, exp, sig, cfg, now=1_000_059.0)
    assert not verify_image_signature(IMAGE, exp, sig, cfg, now=1_000_061.0)


def test_existing_query_and_default_ttl(cfg: Settings) -> None:
    url = sign_image_url("/images/x.png?download=1", IMAGE, cfg.model_copy(update={"image_url_ttl_s": 30}))
    assert url.startswith("/images/x.png?download=1&exp=")
    _, exp, _ = _query(url)
    assert int(exp) <= time.time() + 31


def test_key_is_private_and_per_data_folder(cfg: Settings, tmp_path: Path) -> None:
    _, exp, sig = _query(sign_image_url("/i.png", IMAGE, cfg))
    mode = stat.S_IMODE(key_path(cfg).stat().st_mode)
    assert mode == 0o600
    other = load_settings(data_dir=tmp_path / "elsewhere")
    assert not verify_image_signature(IMAGE, exp, sig, other)


def test_processes_started_together_agree_on_one_key(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    code = (
        "import sys; from chatcanvas.config import load_settings; from chatcanvas.safety.signing import signing_key;"
        "print(signing_key(load_settings(data_dir=sys.argv[1])).hex())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCANVAS_")}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        for _ in range(6)
    ]
    keys = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    assert [p.name for p in data.iterdir()] == ["url_signing.key"]  # no temporary files left
