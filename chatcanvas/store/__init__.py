"""SQLite store (WAL) for jobs, images, events and whatever the features add by migration."""

from chatcanvas.store.db import Store

__all__ = ["Store"]
