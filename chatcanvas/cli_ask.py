"""``chatcanvas ask TEXT [-o DIR] [--dry-run]``: one chat turn from the command line.

Without ``--dry-run`` the turn goes the one path every adapter uses (``Assistant.handle``: the LLM
agent and its tools when ``CHATCANVAS_LLM_MODEL`` is set, else the offline rewriter), and the images
land in ``out_dir``. With ``--dry-run`` it prints the specs the assistant would generate, one JSON
object per line, and generates nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from chatcanvas.config import Settings
from chatcanvas.errors import ChatcanvasError
from chatcanvas.types import ChatTurn, ImageSpec, Place, UserRef

SPEC_FIELDS = ("prompt", "negative_prompt", "width", "height", "count", "seed", "style", "backend")


def _turn(text: str) -> ChatTurn:
    import getpass

    try:
        name = getpass.getuser()
    except Exception:
        name = "cli"
    return ChatTurn(
        who=UserRef(platform="cli", user=name), where=Place(platform="cli", channel="terminal"), text=text
    )


def spec_line(spec: ImageSpec, settings: Settings, resolve: Any = None) -> str:
    """One JSON line for ``--dry-run``: the fields that decide the picture, sizes filled where known."""
    if resolve is not None:
        try:
            spec = resolve(spec)
        except Exception:  # a backend that cannot resolve offline: print what the rewriter chose
            pass
    data = spec.model_dump()
    data["backend"] = data.get("backend") or settings.backend
    return json.dumps({k: data.get(k) for k in SPEC_FIELDS}, ensure_ascii=False)


async def ask(settings: Settings, text: str, out_dir: Path | None, dry_run: bool) -> int:
    """Run one turn; 0 when images were made (or planned), 1 when none came, 2 for a configuration error."""
    from chatcanvas.app import build_app

    turn = _turn(text)
    try:
        ctx = await build_app(settings, start=not dry_run)
    except ChatcanvasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        if dry_run:
            return await _dry_run(ctx, turn)
        from chatcanvas.adapters.terminal import TerminalRenderer

        out = TerminalRenderer(out_dir)
        return await out.consume(ctx.assistant.handle(turn))
    finally:
        await ctx.aclose()


async def _dry_run(ctx: Any, turn: ChatTurn) -> int:
    from chatcanvas.bot.rewriter import default_rewriter

    assistant = ctx.assistant
    settings = ctx.settings
    count_tokens = None
    resolve = None
    try:
        backend = await ctx.engine.ensure_backend()
        resolve = backend.resolve
        count_tokens = getattr(backend, "count_tokens", None)
        tokenizer = getattr(backend, "tokenizer", None)
        if callable(tokenizer):  # loaded in a thread: the event loop never loads it (counts exact tokens)
            await asyncio.to_thread(tokenizer)
    except Exception:
        pass
    native = None
    try:
        native = assistant.native_size()
    except Exception:
        pass
    rewriter = default_rewriter(settings, native_size=native, count_tokens=count_tokens)
    memory = assistant.memory
    last = memory.last(turn.conversation) if memory is not None else None
    plan = await rewriter.plan(turn, last, assistant.backend_family)
    for note in plan.notes:
        print(note, file=sys.stderr)
    if plan.reply:
        print(plan.reply, file=sys.stderr)
    for spec in plan.specs:
        print(spec_line(spec, settings, resolve))
    return 0 if plan.specs or plan.reply else 1
