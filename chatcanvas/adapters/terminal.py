"""The terminal adapter: renders the event stream with a progress bar and writes images to files."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from chatcanvas.types import Accepted, Cancelled, Event, Failed, Images, Progress, Queued, Refused, Text


class TerminalRenderer:
    """Prints what happens; ``images`` and ``errors`` hold the outcome for the caller."""

    def __init__(self, out: Path | None, out_is_file: bool = False, stream: TextIO | None = None) -> None:
        self.out = out
        self.out_is_file = out_is_file
        self.stream = stream or sys.stderr
        self.paths: list[Path] = []
        self.errors: list[str] = []
        self.refused = False
        self._bars: dict[str, object] = {}
        self._n = 0

    def _target(self, image_id: str, total: int) -> Path:
        if self.out is None:
            return Path(f"{image_id}.png")
        if self.out_is_file:
            if total == 1 and self._n == 1:
                return self.out
            return self.out.with_name(f"{self.out.stem}-{self._n}{self.out.suffix or '.png'}")
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / f"{image_id}.png"

    def _bar(self, job_id: str, total: int):  # type: ignore[no-untyped-def]
        from tqdm import tqdm

        bar = self._bars.get(job_id)
        if bar is None:
            bar = self._bars[job_id] = tqdm(
                total=total,
                desc=f"job {job_id[:6]}",
                unit="step",
                file=self.stream,
                leave=False,
                disable=not self.stream.isatty(),
            )
        return bar

    def _close(self, job_id: str) -> None:
        bar = self._bars.pop(job_id, None)
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]

    def handle(self, ev: Event, expected: int = 1) -> None:
        p = lambda s: print(s, file=self.stream)  # noqa: E731
        if isinstance(ev, Text):
            p(ev.text)
        elif isinstance(ev, Accepted):
            for prompt in ev.prompts:
                p(f"prompt: {prompt}")
            if ev.position:
                p(f"queued: {ev.position} job(s) ahead")
        elif isinstance(ev, Queued):
            pass
        elif isinstance(ev, Progress):
            bar = self._bar(ev.job_id, ev.total)
            bar.total = ev.total  # type: ignore[attr-defined]
            bar.n = ev.step  # type: ignore[attr-defined]
            bar.refresh()  # type: ignore[attr-defined]
        elif isinstance(ev, Images):
            self._close(ev.job_id)
            for img in ev.images:
                self._n += 1
                path = self._target(img.id, expected)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(img.png)
                self.paths.append(path)
                r = img.recipe
                if r.revised_prompt and r.revised_prompt != r.prompt:
                    p(f"revised prompt: {r.revised_prompt}")
                print(str(path), file=sys.stdout)
        elif isinstance(ev, Failed):
            if ev.job_id:
                self._close(ev.job_id)
            self.errors.append(ev.reason)
            p(f"error: {ev.reason}")
        elif isinstance(ev, Refused):
            self.refused = True
            self.errors.append(ev.reason)
            p(f"refused: {ev.reason}")
        elif isinstance(ev, Cancelled):
            self._close(ev.job_id)
            self.errors.append("cancelled")
            p("cancelled")

    async def consume(self, events: AsyncIterator[Event], expected: int = 1) -> int:
        """Render every event; the exit code: 0 when images came and nothing failed."""
        async for ev in events:
            self.handle(ev, expected)
        return 1 if self.errors or not self.paths else 0
