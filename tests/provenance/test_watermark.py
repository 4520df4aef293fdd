"""The invisible watermark: read back by invisible-watermark's own decoder, invisible, absent from others."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chatcanvas.provenance import watermark
from tests.provenance.conftest import imwatermark_payload, png_of, still_life


def sky(w: int, h: int) -> Image.Image:
    """A smooth evening sky, the kind of picture where imwatermark's own encoder loses the payload."""
    y = np.linspace(0.0, 1.0, h)[:, None] * np.ones((1, w))
    rgb = np.stack([40 + 170 * y, 60 + 90 * y, 150 - 40 * y], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def product_on_white(size: int = 384) -> Image.Image:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((size * 0.3, size * 0.25, size * 0.7, size * 0.8), radius=20, fill=(20, 90, 60))  # a green tote
    d.arc((size * 0.38, size * 0.08, size * 0.62, size * 0.4), 180, 360, fill=(20, 90, 60), width=10)
    return img


@pytest.mark.parametrize(
    "picture",
    [still_life(), sky(512, 320), product_on_white(), still_life(256)],
    ids=["still life", "sky, 512x320", "tote on white", "256x256"],
)
def test_imwatermark_reads_the_payload_and_nobody_sees_it(picture: Image.Image) -> None:
    marked = watermark.embed(picture)
    assert imwatermark_payload(png_of(marked)) == b"CCAI"
    before, after = np.asarray(picture, float), np.asarray(marked, float)
    psnr = 10 * np.log10(255**2 / np.mean((after - before) ** 2))
    assert psnr > 34  # a change of a few levels, spread over the picture
    assert watermark.detect(marked) == 32


def test_pictures_without_it_are_not_mistaken_for_ours() -> None:
    for picture in (still_life(seed=1), sky(400, 400), product_on_white()):
        bits = watermark.detect(picture)
        assert bits is not None and bits < watermark.MIN_BITS_FOUND
        assert imwatermark_payload(png_of(picture)) != b"CCAI"


def test_alpha_is_kept_and_small_images_are_left_alone() -> None:
    rgba = still_life().convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 200))
    marked = watermark.embed(rgba)
    assert marked.mode == "RGBA" and marked.getchannel("A").getextrema() == (200, 200)
    assert watermark.detect(marked) == 32
    assert watermark.detect(still_life(128)) is None
    with pytest.raises(ValueError):
        watermark.embed(still_life(128))


def test_survives_saving_again_without_metadata() -> None:
    marked = watermark.embed(still_life(seed=3))
    resaved = io.BytesIO()
    marked.save(resaved, format="PNG", optimize=True)
    assert watermark.detect(Image.open(io.BytesIO(resaved.getvalue()))) == 32


def _local_serial(folder: str, barrier: object) -> str:
    from chatcanvas.provenance import credentials

    barrier.wait()  # type: ignore[attr-defined]
    return credentials.local(Path(folder)).serial


def test_first_use_certificate_is_made_once_when_processes_race(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 4
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            serials = pool.starmap(_local_serial, [(str(tmp_path), barrier)] * n)
    assert len(set(serials)) == 1
    assert [p.name for p in (tmp_path / "c2pa").iterdir()] == ["signer.pem"]
    assert (tmp_path / "c2pa" / "signer.pem").stat().st_mode & 0o077 == 0  # the key is private
