"""Delivery ids are remembered in SQLite: a retry reaching a restarted process is still a repeat."""

from __future__ import annotations

from pathlib import Path

from chatcanvas.adapters.slack.dedupe import Seen
from chatcanvas.adapters.slack.listeners import strip_mentions
from chatcanvas.store import Store


async def test_seen_survives_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path)
    seen = Seen(store)
    assert await seen.first_time("event:Ev1")
    assert not await seen.first_time("event:Ev1")
    assert await seen.first_time("trigger:123.456")
    store.close()

    reopened = Seen(Store(tmp_path))  # a new process on the same data dir
    assert not await reopened.first_time("event:Ev1")
    assert not await reopened.first_time("trigger:123.456")
    assert await reopened.first_time("event:Ev2")


def test_mentions_are_stripped() -> None:
    assert strip_mentions("<@UBOT|chatcanvas> a red mug") == "a red mug"
    assert strip_mentions("  <@W0123ABC>  ") == ""
