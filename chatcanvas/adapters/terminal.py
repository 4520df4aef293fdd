"""The terminal adapter: renders the event stream with a progress bar and writes images to files."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from chatcanvas import messages as m
from chatcanvas.types import (
    Accepted,
    Cancelled,
    Event,
    Failed,
    Images,
    Progress,
    Queued,
    Refused,
    Started,
    Text,
)


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
        self._warming = False  # the assistant said the model is still loading
        self._stepping: set[str] = set()  # jobs whose steps have begun

    def _target(self, image_id: str, total: int) -> Path:
        if self.out is None:
            return Path(f"{image_id}.png")
        if self.out_is_file:
            if total == 1 and self._n == 1:
                return self.out
            return self.out.with_name(f"{self.out.stem}-{self._n}{self.out.suffix or '.png'}")
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / f"{image_id}.png"

    def _bar(self, job_id: str, total: int | None):  # type: ignore[no-untyped-def]
        """The job's progress bar, on a terminal only (shown from acceptance: loading, queued, steps)."""
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
                dynamic_ncols=True,
            )
        return bar

    def _phase(self, job_id: str, phase: str) -> None:
        bar = self._bar(job_id, None)
        bar.set_postfix_str(phase, refresh=True)  # type: ignore[attr-defined]

    async def _tick(self) -> None:
        """Redraw the bars twice a second, so the elapsed time runs while a model loads."""
        import asyncio

        while True:
            await asyncio.sleep(0.5)
            for bar in list(self._bars.values()):
                bar.refresh()  # type: ignore[attr-defined]

    def _close(self, job_id: str) -> None:
        bar = self._bars.pop(job_id, None)
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]

    def handle(self, ev: Event, expected: int = 1) -> None:
        p = lambda s: print(s, file=self.stream)  # noqa: E731
        if isinstance(ev, Text):
            p(ev.text)
            if ev.text.startswith(m.WARMING_UP.split(".")[0]):  # both warming-up notes start alike
                self._warming = True
        elif isinstance(ev, Accepted):
            for prompt in ev.prompts:
                p(f"prompt: {prompt}")
            if ev.position:
                p(f"queued: {ev.position} job(s) ahead")
            for job_id in ev.job_ids:
                self._phase(job_id, m.PROGRESS_LOADING if self._warming else m.PROGRESS_QUEUED.format(n=ev.position))
        elif isinstance(ev, Queued):
            if ev.job_id in self._bars and not self._warming:
                self._phase(ev.job_id, m.PROGRESS_QUEUED.format(n=ev.position))
        elif isinstance(ev, Started):
            self._warming = False
            self._phase(ev.job_id, m.PROGRESS_GENERATING)
        elif isinstance(ev, Progress) and ev.note:
            self._phase(ev.job_id, ev.note)
        elif isinstance(ev, Progress):
            bar = self._bar(ev.job_id, ev.total)
            if ev.job_id not in self._stepping:  # the rate and ETA count from the first step, not from start
                self._stepping.add(ev.job_id)
                bar.reset(total=ev.total)  # type: ignore[attr-defined]
                bar.set_postfix_str("", refresh=False)  # type: ignore[attr-defined]
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
        import asyncio
        import contextlib

        ticker = asyncio.create_task(self._tick()) if self.stream.isatty() else None
        try:
            async for ev in events:
                self.handle(ev, expected)
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            for job_id in list(self._bars):
                self._close(job_id)
        return 1 if self.errors or not self.paths else 0
