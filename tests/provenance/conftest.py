"""Provenance tests: the settings the writer signs under, and the c2pa library's own reading of a file."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chatcanvas import provenance
from chatcanvas.config import Settings


@pytest.fixture(autouse=True)
def signing_settings(settings: Settings) -> Iterator[Settings]:
    """The writer's default settings (backends call it without any) are the test's, data dir included."""
    provenance.configure(settings)
    try:
        yield settings
    finally:
        provenance._configured.clear()


def c2pa_store(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    """The manifest store as the c2pa library itself reports it (``Reader.json()``)."""
    import c2pa

    with c2pa.Reader(mime, io.BytesIO(data)) as reader:
        return dict(json.loads(reader.json()))


def active(store: dict[str, Any]) -> dict[str, Any]:
    return dict(store["manifests"][store["active_manifest"]])


def actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [act for a in manifest["assertions"] if a["label"].startswith("c2pa.actions") for act in a["data"]["actions"]]


def failures(store: dict[str, Any]) -> set[str]:
    return {f["code"] for f in store["validation_results"]["activeManifest"].get("failure", [])}


def imwatermark_payload(png: bytes) -> bytes:
    """What invisible-watermark's own decoder reads (dwtDct, 32 bits) from the image."""
    from imwatermark import WatermarkDecoder

    bgr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[:, :, ::-1].copy()
    return bytes(WatermarkDecoder("bytes", 32).decode(bgr, "dwtDct"))


def still_life(size: int = 320, seed: int = 5) -> Image.Image:
    """A picture drawn here: a soft background, a few overlapping shapes, some grain."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (222, 214, 196))
    d = ImageDraw.Draw(img)
    d.rectangle((0, int(size * 0.7), size, size), fill=(140, 110, 90))  # a table
    d.ellipse((size * 0.2, size * 0.3, size * 0.55, size * 0.75), fill=(30, 80, 160))  # a blue bowl
    d.polygon([(size * 0.6, size * 0.75), (size * 0.75, size * 0.2), (size * 0.9, size * 0.75)], fill=(200, 60, 40))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 3, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def png_of(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def repaint_keeping_chunks(png: bytes, change: Any) -> bytes:
    """The same PNG with its pixels changed by ``change(array)`` and re-compressed; every other chunk
    (text, the C2PA manifest) kept byte for byte, the way an editor that keeps metadata saves a file."""
    with Image.open(io.BytesIO(png)) as im:
        arr = np.array(im.convert("RGB"))
    change(arr)
    raw = b"".join(b"\x00" + row.tobytes() for row in arr)
    idat = zlib.compress(raw)
    out, pos, wrote = [png[:8]], 8, False
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind == b"IDAT":
            if not wrote:
                body = b"IDAT" + idat
                out.append(struct.pack(">I", len(idat)) + body + struct.pack(">I", zlib.crc32(body)))
                wrote = True
        else:
            out.append(png[pos:end])
        pos = end
    return b"".join(out)
