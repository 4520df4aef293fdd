"""Signed image URLs: HMAC-SHA256 over the image id and an expiry time.

The key is 32 random bytes made once, on first use, in the data folder (``url_signing.key``, mode
0600). Creating it is atomic and race-safe: each process writes its own temporary file and hard-links
it into place; the first link wins and every process then reads the winner, so two workers started
together agree on one key. Deleting the file invalidates every URL signed with it.

    url = sign_image_url("/images/abc.png", "abc", settings)        # "/images/abc.png?exp=...&sig=..."
    ok = verify_image_signature("abc", request.query["exp"], request.query["sig"], settings)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = ["KEY_FILE", "key_path", "sign_image_url", "signature", "signing_key", "verify_image_signature"]

KEY_FILE = "url_signing.key"
_KEY_RE = re.compile(r"[0-9a-f]{64}")
_cache: dict[Path, bytes] = {}
_lock = threading.Lock()


def key_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEY_FILE


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not _KEY_RE.fullmatch(text):
        raise ConfigError(m.SIGNING_KEY_BROKEN.format(path=path))
    if path.stat().st_mode & 0o077:
        try:
            path.chmod(0o600)
        except OSError:
            pass
    return bytes.fromhex(text)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32).hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a key another process made first
    except FileExistsError:
        pass
    except OSError:  # no hard links on this file system: exclusive create (readers wait below)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            try:
                os.write(fd, tmp.read_bytes())
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        tmp.unlink(missing_ok=True)


def signing_key(settings: Settings) -> bytes:
    """The key, made on first use."""
    path = key_path(settings)
    with _lock:
        key = _cache.get(path)
        if key is not None:
            return key
        if not path.exists():
            _create(path)
        for _ in range(50):  # a key being written without hard links: wait for its 64 characters
            try:
                key = _read(path)
                break
            except ConfigError:
                if path.stat().st_size >= 64:
                    raise
                time.sleep(0.01)
        else:
            key = _read(path)
        _cache[path] = key
        return key


def existing_key_hex(settings: Settings) -> str | None:
    """The key as written in its file, if there is one (for log redaction); never creates it."""
    try:
        text = key_path(settings).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text if _KEY_RE.fullmatch(text) else None


def signature(image_id: str, exp: int, settings: Settings) -> str:
    """base64url (no padding) of HMAC-SHA256(key, "<image_id>\\n<exp>")."""
    mac = hmac.new(signing_key(settings), f"{image_id}\n{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def sign_image_url(
    path: str, image_id: str, settings: Settings, ttl: float | None = None, *, now: float | None = None
) -> str:
    """``path`` with ``exp`` (unix seconds) and ``sig`` added; valid ``ttl`` seconds
    (default ``CHATCANVAS_IMAGE_URL_TTL_S``)."""
    ttl = settings.image_url_ttl_s if ttl is None else ttl
    exp = int((time.time() if now is None else now) + ttl)
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}exp={exp}&sig={signature(image_id, exp, settings)}"


def verify_image_signature(
    image_id: str, exp: str | int | None, sig: str | None, settings: Settings, *, now: float | None = None
) -> bool:
    """True when ``sig`` was made for ``image_id`` and ``exp`` by this data folder's key, and ``exp``
    has not passed. Constant-time comparison; any malformed input is simply False."""
    if exp is None or sig is None:
        return False
    exp_s = str(exp)
    if not exp_s.isascii() or not exp_s.isdigit() or len(exp_s) > 12:
        return False
    if int(exp_s) < (time.time() if now is None else now):
        return False
    expected = signature(image_id, int(exp_s), settings).encode("ascii")
    return hmac.compare_digest(expected, sig.encode("utf-8", "replace"))
