"""Uploaded images: the one gate every adapter passes user-supplied pictures through.

:func:`load_upload` refuses, before any pixel is decoded, files over the byte cap, formats other
than PNG / JPEG / WebP, and images whose header declares more pixels than allowed (decompression
bombs). Only then is the image decoded, EXIF-rotated, converted to sRGB (an embedded ICC profile is
applied, then dropped) and to the requested mode, and copied pixel by pixel: what comes out carries
no metadata at all (no EXIF, GPS, XMP, ICC or text), so nothing about the camera or the place a photo
was taken is ever stored or sent on.

Uploads enter the store only as such clean PNGs (:func:`clean_png`, which ``Store.put_upload``
applies to whatever it is given), and are referred to by id from then on. :func:`store_upload` is
the one call for an adapter; :func:`import_image_file` is the local command line's way in for a file.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from chatcanvas import messages as m
from chatcanvas.errors import InputImageError

if TYPE_CHECKING:
    from chatcanvas.config import Settings
    from chatcanvas.types import Place, UserRef


class Store(Protocol):
    """The store's upload side (``chatcanvas.store.Store``, which calls :func:`clean_png`)."""

    def put_upload(
        self, data: bytes, *, owner: UserRef | str | None = None, place: Place | str | None = None
    ) -> str: ...

__all__ = [
    "ALLOWED_FORMATS",
    "MIME_TYPES",
    "ImageTooLarge",
    "clean_png",
    "import_image_file",
    "load_upload",
    "megabytes",
    "sniff_format",
    "store_upload",
    "upload_png",
]

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


def load_upload(data: bytes, settings: Settings, *, mode: str | None = "RGB") -> Image.Image:
    """Check and decode an uploaded image; raise :class:`InputImageError` with a clear message.

    ``mode`` is the PIL mode of the result ("RGB" by default; transparent pixels are laid on
    white; "L" for masks; ``None``: RGB, RGBA or L as the picture is). Raises
    :class:`ImageTooLarge` (a subclass) for the byte and pixel caps. The result holds pixels only.
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
    img = _to_srgb(img)
    return _pixels_only(_to_mode(img, mode or _natural_mode(img)))


def upload_png(data: bytes, settings: Settings, *, mode: str | None = None) -> bytes:
    """:func:`load_upload` (every check) and back to PNG bytes without metadata: what the store keeps."""
    return _encode_png(load_upload(data, settings, mode=mode))


def store_upload(
    store: Store,
    data: bytes,
    settings: Settings,
    *,
    owner: UserRef | str | None,
    place: Place | str | None,
    mode: str | None = None,
) -> str:
    """Check an uploaded image, strip it to pixels and keep it; returns its store id.

    ``owner`` (who uploaded it) and ``place`` (the conversation) are recorded so the policy can tell
    whether a later request may use the id (``store.image_owners``).
    """
    return store.put_upload(upload_png(data, settings, mode=mode), owner=owner, place=place)


def import_image_file(
    store: Store,
    path: str | Path,
    settings: Settings,
    *,
    owner: UserRef | str | None,
    place: Place | str | None,
    mode: str | None = None,
) -> str:
    """The local command line's ``--init-image FILE`` / ``--mask FILE``: read the file, check it like
    any upload and store it; returns the id to put in the spec. Nothing else reads image paths."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError:
        raise InputImageError(m.NO_SUCH_FILE.format(path=path)) from None
    return store_upload(store, data, settings, owner=owner, place=place, mode=mode)


# PNG chunks that hold pixels or how to show them, and nothing about where the picture came from.
_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD"})


def _png_chunks(data: bytes) -> list[bytes] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    kinds, pos = [], 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds if pos == len(data) and kinds and kinds[-1] == b"IEND" else None


def clean_png(data: bytes) -> bytes:
    """``data`` as a PNG with pixels only. A PNG already so is returned as is (fast); anything else
    (another format, EXIF / text / ICC / time chunks, an animation) is decoded, EXIF-rotated,
    converted to sRGB and encoded again. Raises :class:`InputImageError` for what is not an image."""
    kinds = _png_chunks(data)
    if kinds is not None and set(kinds) <= _PIXEL_CHUNKS:
        return data
    if sniff_format(data) is None:
        raise InputImageError(m.NOT_AN_IMAGE)
    try:
        with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as opened:
            opened.seek(0)
            opened.load()
            img: Image.Image = ImageOps.exif_transpose(opened) or opened
            img = _to_srgb(img)
            return _encode_png(_pixels_only(_to_mode(img, _natural_mode(img))))
    except Image.DecompressionBombError:
        raise ImageTooLarge(m.IMAGE_TOO_LARGE.format(detail="too many pixels", limit="the pixel cap")) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise InputImageError(m.NOT_AN_IMAGE) from None


def _encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _natural_mode(img: Image.Image) -> str:
    """RGB, RGBA or L: the mode that keeps what this picture has (colour, transparency)."""
    if "A" in img.getbands() or "transparency" in img.info:
        return "RGBA"
    if img.mode in ("L", "1"):
        return "L"
    return "RGB"


def _to_srgb(img: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (to sRGB); without one, or if it can't be read, as is."""
    icc = img.info.get("icc_profile")
    if not icc:
        return img
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        has_alpha = "A" in img.getbands()
        if img.mode not in ("RGB", "RGBA", "CMYK"):
            img = img.convert("RGBA" if has_alpha else "RGB")
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode=out_mode)
        return converted if converted is not None else img
    except Exception:  # a broken or unsupported profile: keep the pixels as they are
        return img


def _pixels_only(img: Image.Image) -> Image.Image:
    """A copy holding the pixels and nothing else (no info, EXIF, ICC, XMP)."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    return Image.frombytes(img.mode, img.size, img.tobytes())


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
