"""Uploaded images: the one gate every adapter passes user-supplied pictures through.

:func:`load_upload` refuses, before any pixel is decoded, files over the byte cap, formats other
than PNG / JPEG / WebP, and images whose header declares more pixels than allowed (decompression
bombs). Only then is the image decoded, EXIF-rotated and converted to the requested mode.
"""

from __future__ import annotations

import io
import re
import struct
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from chatcanvas import messages as m
from chatcanvas.errors import InputImageError

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["ALLOWED_FORMATS", "MIME_TYPES", "ImageTooLarge", "load_upload", "megabytes", "sniff_format"]

ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
MIME_TYPES: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class ImageTooLarge(InputImageError):
    """The upload is over the byte or pixel cap (HTTP adapters answer 413)."""


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def _megapixels(n: int) -> str:
    return f"{n / 1_000_000:.1f} megapixels"


def sniff_format(data: bytes) -> str | None:
    """The format from the magic bytes (``"PNG"``, ``"JPEG"``, ``"WEBP"``), or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def load_upload(data: bytes, settings: Settings, *, mode: str = "RGB") -> Image.Image:
    """Check and decode an uploaded image; raise :class:`InputImageError` with a clear message.

    ``mode`` is the PIL mode of the result ("RGB" by default; transparent pixels are laid on
    white; "L" for masks). Raises :class:`ImageTooLarge` (a subclass) for the byte and pixel caps.
    """
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLarge(
            m.IMAGE_TOO_LARGE.format(detail=megabytes(len(data)), limit=megabytes(settings.max_upload_bytes))
        )
    if not data or sniff_format(data) is None:
        raise InputImageError(m.NOT_AN_IMAGE)
    try:
        # Image.open reads only the header: the size is known before anything is decoded.
        opened = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except Image.DecompressionBombError as exc:
        # PIL's own guard fired inside Image.open (over twice Image.MAX_IMAGE_PIXELS).
        raise ImageTooLarge(
            m.IMAGE_TOO_LARGE.format(
                detail=_bomb_detail(data, str(exc)), limit=_megapixels(settings.max_upload_pixels)
            )
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InputImageError(m.NOT_AN_IMAGE) from None
    w, h = opened.size
    if w <= 0 or h <= 0:
        raise InputImageError(m.NOT_AN_IMAGE)
    if w * h > settings.max_upload_pixels:
        raise ImageTooLarge(
            m.IMAGE_TOO_LARGE.format(
                detail=f"{w}x{h}, {_megapixels(w * h)}", limit=_megapixels(settings.max_upload_pixels)
            )
        )
    try:
        opened.seek(0)  # first frame of an animation
        opened.load()
        img: Image.Image = ImageOps.exif_transpose(opened) or opened
    except Image.DecompressionBombError:
        raise ImageTooLarge(
            m.IMAGE_TOO_LARGE.format(detail=f"{w}x{h}", limit=_megapixels(settings.max_upload_pixels))
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise InputImageError(m.NOT_AN_IMAGE) from None
    return _to_mode(img, mode)


def _bomb_detail(data: bytes, error: str) -> str:
    if sniff_format(data) == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return f"{w}x{h}, {_megapixels(w * h)}"
    found = re.search(r"\((\d+) pixels\)", error)
    return _megapixels(int(found.group(1))) if found else "too many pixels"


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    if img.mode == mode:
        return img
    if mode in ("RGB", "L") and ("A" in img.getbands() or img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        bg.alpha_composite(rgba)
        return bg.convert(mode)
    return img.convert(mode)
