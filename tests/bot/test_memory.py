"""Conversation memory in SQLite: per conversation, kept across a restart."""

from __future__ import annotations

from pathlib import Path

from chatcanvas.bot.memory import ConversationMemory
from chatcanvas.store import Store
from chatcanvas.types import ImageSpec


def test_remember_last_and_restart(tmp_path: Path) -> None:
    store = Store(tmp_path)
    mem = ConversationMemory(store)
    assert mem.last("a") is None
    specs = [ImageSpec(prompt="a red mug", width=64, height=48, seed=7, style="product")]
    mem.remember("a", specs)
    mem.remember_images("a", ["img1", "img2"])
    mem.remember("b", [ImageSpec(prompt="a fox")])
    store.close()

    store = Store(tmp_path)  # a restart
    mem = ConversationMemory(store)
    assert mem.last("a") == specs
    assert mem.last_images("a") == ["img1", "img2"]
    assert [s.prompt for s in mem.last("b") or []] == ["a fox"]
    mem.remember("a", [ImageSpec(prompt="a blue mug")])
    assert [s.prompt for s in mem.last("a") or []] == ["a blue mug"]
    assert mem.last_images("a") == []  # new specs: the old images are no longer "the last ones"
    mem.forget("a")
    assert mem.last("a") is None
    store.close()


def test_old_and_unreadable_entries_are_forgotten(tmp_path: Path) -> None:
    store = Store(tmp_path)
    mem = ConversationMemory(store, keep_days=0)
    mem.remember("a", [ImageSpec(prompt="x")])
    assert mem.last("a") is None
    with store.lock:
        store.db.execute(
            "INSERT INTO conversation_memory (conversation, specs, updated) VALUES ('c', ?, 1e12)",
            ('[{"bad": 1}]',),
        )
    assert ConversationMemory(store).last("c") is None
    store.close()
