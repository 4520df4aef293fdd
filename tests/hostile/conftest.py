"""Shared pieces of the hostile-input battery: settings for a module's one server, test pictures,
and the checks every case ends with (the exact outcome, no traceback, the audit row)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from chatcanvas.config import Settings

BLOCKED = "zorblax"  # CHATCANVAS_BLOCKED_TERMS in these tests: a word nobody uses for anything else


def hostile_settings(tmp: Path, model_dir: Path, **over: Any) -> Settings:
    """The tiny model at 2 steps, a private data folder, generous rates (a case tightens its own)."""
    base: dict[str, Any] = dict(
        model=str(model_dir),
        data_dir=tmp / "data",
        default_steps=2,
        batch_wait_ms=0,
        blocked_terms=BLOCKED,
        rate_per_minute=600.0,
        rate_burst=200,
        server_rate_per_minute=6000.0,
        server_rate_burst=2000,
        max_queued_per_user=500,
        max_queued_per_server=1000,
        max_queue=2000,
    )
    base.update(over)
    return Settings(**base)


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def product_photo(seed: int = 11, colour: str = "red") -> bytes:
    """A mug on a light backdrop, drawn here (not a file of the project)."""
    from chatcanvas.generation.demo.draw import draw_product

    return encode(draw_product("mug", colour, np.random.default_rng(seed), size=64).resize((64, 64)))


def tote_photo() -> bytes:
    """A navy tote bag shape on off-white: a rectangle body and a handle arc."""
    img = Image.new("RGB", (64, 64), (244, 242, 236))
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    d.rectangle((16, 24, 48, 58), fill=(20, 30, 80))
    d.arc((22, 8, 42, 34), 180, 360, fill=(20, 30, 80), width=3)
    return encode(img)


def huge_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit PNG: a few kB on disk, 400 megapixels decoded."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


ZIP_TAIL = b"PK\x03\x04\x14\x00\x00\x00\x08\x00secret.txt" + b"\x00" * 16 + b"PK\x05\x06" + b"\x00" * 18
HTML_TAIL = b"<html><body><script>alert(document.cookie)</script></body></html>"
GIF_JS = b"GIF89a/*\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,*/=1;alert(1)//"


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


def audit_rules(store: Any, user_key: str | None = None) -> list[str]:
    """The refusals written to the audit table, newest first, by rule."""
    from chatcanvas.safety.audit import refusals

    return [r.rule for r in refusals(store, limit=500, user=user_key)]
