"""Delivery ids are remembered in SQLite: a retry reaching a restarted process is still a repeat."""

from __future__ import annotations

from pathlib import Path

from chatcanvas.adapters.slack.dedupe import Seen
from chatcanvas.adapters.slack.listeners import parse_variations, strip_mentions
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


def test_parse_variations() -> None:
    assert parse_variations("<@UBOT> variations: navy, forest green and sand") == [
        "navy",
        "forest green",
        "sand",
    ]
    assert parse_variations("in red / blue") == ["red", "blue"]
    assert parse_variations("colours: black") == ["black"]
    assert parse_variations("  ") == []
    assert strip_mentions("<@UBOT|chatcanvas> a red mug") == "a red mug"
