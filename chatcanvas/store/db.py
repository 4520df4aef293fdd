"""The SQLite store: one connection, WAL, named migrations, content-addressed image files."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from chatcanvas.store.migrations import MIGRATIONS
from chatcanvas.types import GeneratedImage, Place, Recipe, UserRef

# The one definition of an image id: a generated image is the first 32 hex digits of its PNG's
# SHA-256 (GeneratedImage.id); an upload is "u" and 31 (Store.put_upload). Nothing else names an image.
IMAGE_ID_RE = re.compile(r"[0-9a-f]{32}|u[0-9a-f]{31}")


def is_image_id(ref: object) -> bool:
    return isinstance(ref, str) and IMAGE_ID_RE.fullmatch(ref) is not None


def place_key(where: Place) -> str:
    """Where, as stored: ``platform:channel:thread``."""
    return f"{where.platform}:{where.channel}:{where.thread}"


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def image_file(images_dir: Path, image_id: str) -> Path:
    """Where the image with this id lives. Anything but an id (a path, ``../..``) is refused."""
    if not is_image_id(image_id):
        from chatcanvas import messages as m
        from chatcanvas.errors import InputImageError

        raise InputImageError(m.NOT_AN_IMAGE_ID)
    return images_dir / image_id[:2] / f"{image_id}.png"


def read_image_ref(images_dir: Path, ref: str) -> bytes:
    """Bytes of a stored image by id (generated or uploaded); never a file path.

    A local file enters the store first (:func:`chatcanvas.images.import_image_file`).
    """
    path = image_file(images_dir, ref)
    if path.is_file():
        return path.read_bytes()
    from chatcanvas import messages as m
    from chatcanvas.errors import InputImageError

    raise InputImageError(m.NO_SUCH_IMAGE.format(ref=ref))


def _key(who: UserRef | Place | str | None) -> str:
    if who is None:
        return ""
    if isinstance(who, str):
        return who
    if isinstance(who, Place):
        return place_key(who)
    return who.key


class ImageOwner(BaseModel):
    """Who brought an image into the store, and where."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["upload", "generated"]
    owner: str  # UserRef.key ("platform:server:user"); "" for an upload stored without an owner
    place: str  # place_key: "platform:channel:thread"
    created: float


class Store:
    """Thread-safe under ``with store.lock:``; the helpers below take the lock themselves."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.images_dir = self.data_dir / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "chatcanvas.db"
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.migrate()

    def migrate(self, migrations: Sequence[tuple[str, str]] = MIGRATIONS) -> list[str]:
        """Run every migration not yet applied; returns the names that ran.

        The core's run when the store opens; an adapter registers its own tables (its own small
        state) by calling this with its own named migrations when it starts.
        """
        ran = []
        with self.lock:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
            )
            done = {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
            for name, sql in migrations:
                if name in done:
                    continue
                self.db.execute("BEGIN")
                try:
                    for stmt in sql.split(";"):
                        if stmt.strip():
                            self.db.execute(stmt)
                    self.db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                ran.append(name)
        return ran

    def execute(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # ------------------------------------------------------------ images

    def image_file(self, image_id: str) -> Path:
        return image_file(self.images_dir, image_id)

    def _put(self, image_id: str, png: bytes) -> Path:
        """Write (and fsync) a PNG under its content id; idempotent."""
        path = self.image_file(image_id)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _fsync_write(path, png)
        return path

    def write_image_file(self, img: GeneratedImage) -> Path:
        return self._put(img.id, img.png)

    def write_image_files(self, images: Sequence[GeneratedImage]) -> list[Path]:
        """Several images durably, synced together: every file written, then each fsynced and put in
        place, then each folder fsynced once (one image: the same as :meth:`write_image_file`)."""
        paths = [self.image_file(img.id) for img in images]
        pending: list[tuple[Path, Path, int]] = []
        folders: dict[Path, None] = {}
        try:
            for img, path in zip(images, paths, strict=True):
                if path.exists() or any(p == path for _, p, _ in pending):
                    continue
                if not path.parent.is_dir():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    folders[path.parent.parent] = None  # the new folder's own entry
                tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{threading.get_ident()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                pending.append((tmp, path, fd))
                view = memoryview(img.png)
                while view:
                    view = view[os.write(fd, view) :]
            for tmp, path, fd in pending:
                os.fsync(fd)
                os.close(fd)
                os.replace(tmp, path)
                folders[path.parent] = None
            pending.clear()
        finally:
            for tmp, _, fd in pending:  # failed half-way: nothing half-written is left in place
                with contextlib.suppress(OSError):
                    os.close(fd)
                with contextlib.suppress(OSError):
                    tmp.unlink()
        for folder in folders:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return paths

    def image(self, image_id: str) -> GeneratedImage | None:
        rows = self.execute("SELECT path, recipe, seconds FROM images WHERE id = ? LIMIT 1", (image_id,))
        if not rows:
            return None
        path = Path(rows[0]["path"])
        if not path.exists():
            return None
        return GeneratedImage(
            png=path.read_bytes(),
            recipe=Recipe.model_validate_json(rows[0]["recipe"]),
            seconds=rows[0]["seconds"],
            path=str(path),
        )

    def image_path(self, image_id: str) -> Path | None:
        rows = self.execute("SELECT path FROM images WHERE id = ? LIMIT 1", (image_id,))
        return Path(rows[0]["path"]) if rows else None

    def put_upload(
        self, data: bytes, *, owner: UserRef | str | None = None, place: Place | str | None = None
    ) -> str:
        """Keep an uploaded image (a product photo, a mask) by content id; returns the id to put in a spec.

        The file stored is a PNG with pixels only: EXIF (GPS, camera), XMP, text chunks and ICC
        profiles are dropped (:func:`chatcanvas.images.clean_png`). ``owner`` (a ``UserRef`` or its
        key) and ``place`` (a ``Place`` or :func:`place_key`) are recorded for :meth:`image_owners`;
        the same picture uploaded by two people has one id and two owners.
        """
        import hashlib

        from chatcanvas.images import clean_png

        png = clean_png(data)
        image_id = "u" + hashlib.sha256(png).hexdigest()[:31]
        self._put(image_id, png)
        self.execute(
            "INSERT OR IGNORE INTO uploads (id, owner, place, created) VALUES (?, ?, ?, ?)",
            (image_id, _key(owner), _key(place), time.time()),
        )
        return image_id

    def image_owners(self, image_id: str) -> list[ImageOwner]:
        """Who brought this image in and where, oldest first: uploaders, or the user whose job made it.

        Empty for an id the store does not know (or anything that is not an id). An owner of ``""``
        is an upload stored without one.
        """
        if not is_image_id(image_id):
            return []
        if image_id.startswith("u"):
            rows = self.execute(
                "SELECT owner, place, created FROM uploads WHERE id = ? ORDER BY created", (image_id,)
            )
            return [ImageOwner(id=image_id, kind="upload", owner=r[0], place=r[1], created=r[2]) for r in rows]
        rows = self.execute(
            "SELECT j.platform, j.server_id, j.user_id, j.channel, j.thread, i.created FROM images i "
            "JOIN jobs j ON j.id = i.job_id WHERE i.id = ? ORDER BY i.created",
            (image_id,),
        )
        return [
            ImageOwner(
                id=image_id,
                kind="generated",
                owner=f"{r[0]}:{r[1]}:{r[2]}",
                place=f"{r[0]}:{r[3]}:{r[4]}",
                created=r[5],
            )
            for r in rows
        ]

    def image_owner(self, image_id: str) -> ImageOwner | None:
        """The first owner of this image (see :meth:`image_owners`), or ``None`` if the store has none."""
        owners = self.image_owners(image_id)
        return owners[0] if owners else None

    def image_visible_to(self, image_id: str, who: UserRef, where: Place | None = None) -> bool:
        """True when ``who`` brought this image in (uploaded it, or asked for it), or it was uploaded or
        made in the conversation ``where`` (same platform, channel and thread), where everyone sees it."""
        here = place_key(where) if where is not None else None
        return any(o.owner == who.key or (here is not None and o.place == here) for o in self.image_owners(image_id))

    def image_bytes(self, ref: str) -> bytes:
        return read_image_ref(self.images_dir, ref)
