"""load_upload: the byte cap, the pixel cap read from the header, formats, modes."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from chatcanvas import messages as m
from chatcanvas.config import Settings, load_settings
from chatcanvas.errors import InputImageError
from chatcanvas.images import ImageTooLarge, load_upload


def bomb_png(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of ``width`` x ``height`` black pixels: tiny on disk, huge decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, max_upload_bytes=2_000_000, max_upload_pixels=1000 * 1000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepts_png_jpeg_webp(cfg: Settings, fmt: str) -> None:
    img = load_upload(encode(Image.new("RGB", (40, 30), (200, 10, 10)), fmt), cfg)
    assert img.size == (40, 30)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((20, 15))  # type: ignore[misc]
    assert r > 150 and g < 60 and b < 60


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_refuses_other_formats(cfg: Settings, fmt: str) -> None:
    with pytest.raises(InputImageError) as info:
        load_upload(encode(Image.new("RGB", (8, 8)), fmt), cfg)
    assert str(info.value) == m.NOT_AN_IMAGE
    assert not isinstance(info.value, ImageTooLarge)


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_refuses_garbage_and_truncated(cfg: Settings, data: bytes) -> None:
    with pytest.raises(InputImageError, match="isn't an image"):
        load_upload(data, cfg)


def test_truncated_body_is_not_an_image(cfg: Settings) -> None:
    data = encode(Image.effect_noise((200, 200), 50).convert("RGB"), "PNG")
    with pytest.raises(InputImageError, match="isn't an image"):
        load_upload(data[: len(data) // 2], cfg)


def test_byte_cap(cfg: Settings) -> None:
    data = encode(Image.new("RGB", (8, 8)), "PNG") + b"\x00" * 2_000_000
    with pytest.raises(ImageTooLarge, match="too large") as info:
        load_upload(data, cfg)
    assert "2.0 MB" in str(info.value)


def test_pixel_cap_from_header_refuses_a_bomb(cfg: Settings) -> None:
    data = bomb_png(20000, 20000)
    assert len(data) < cfg.max_upload_bytes  # the bytes pass; only the pixels are too many
    with pytest.raises(ImageTooLarge) as info:
        load_upload(data, cfg)
    assert "20000x20000" in str(info.value)


def test_pil_bomb_guard_is_caught(tmp_path: Path) -> None:
    # Even with our own pixel cap lifted past PIL's, PIL's guard ends up as a clear error.
    cfg = load_settings(data_dir=tmp_path, max_upload_pixels=10**12)
    with pytest.raises(ImageTooLarge):
        load_upload(bomb_png(20000, 20000), cfg)


def test_transparency_goes_on_white_and_mask_mode(cfg: Settings) -> None:
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.putpixel((5, 5), (0, 0, 255, 255))
    out = load_upload(encode(img, "PNG"), cfg)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((5, 5)) == (0, 0, 255)
    mask = load_upload(encode(Image.new("L", (10, 10), 255), "PNG"), cfg, mode="L")
    assert mask.mode == "L" and mask.getpixel((3, 3)) == 255


def test_exif_orientation_is_applied(cfg: Settings) -> None:
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert load_upload(buf.getvalue(), cfg).size == (20, 40)
