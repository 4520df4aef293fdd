"""The SQLite store: one connection, WAL, named migrations, content-addressed image files."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from chatcanvas.store.migrations import MIGRATIONS
from chatcanvas.types import GeneratedImage, Recipe


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
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
    return images_dir / image_id[:2] / f"{image_id}.png"


def read_image_ref(images_dir: Path, ref: str) -> bytes:
    """Bytes of an image by id (generated or uploaded) or by file path."""
    for candidate in (image_file(images_dir, ref), Path(ref)):
        if candidate.is_file():
            return candidate.read_bytes()
    from chatcanvas import messages as m
    from chatcanvas.errors import InputImageError

    raise InputImageError(m.NO_SUCH_IMAGE.format(ref=ref))


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

    def migrate(self) -> list[str]:
        """Run every migration not yet applied; returns the names that ran."""
        ran = []
        with self.lock:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
            )
            done = {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
            for name, sql in MIGRATIONS:
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

    def integrity_ok(self) -> bool:
        return self.execute("PRAGMA integrity_check")[0][0] == "ok"

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

    def put_upload(self, png: bytes) -> str:
        """Keep an uploaded image (a product photo, a mask) by content id; returns the id to put in a spec."""
        import hashlib

        image_id = "u" + hashlib.sha256(png).hexdigest()[:31]
        self._put(image_id, png)
        return image_id

    def image_bytes(self, ref: str) -> bytes:
        return read_image_ref(self.images_dir, ref)

    @staticmethod
    def dumps(obj: object) -> str:
        return json.dumps(obj, separators=(",", ":"))
