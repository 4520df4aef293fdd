"""``chatcanvas verify FILE...``: the verify report of each file, as text or JSON, and the exit code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chatcanvas import messages as m
from chatcanvas.provenance.verify import VerifyReport, verify_image

if TYPE_CHECKING:
    from chatcanvas.config import Settings

EXIT_OK, EXIT_NOT_OURS, EXIT_UNREADABLE = 0, 1, 2


def exit_code(reports: Sequence[VerifyReport]) -> int:
    """0: every file is a valid chatcanvas image; 2: any could not be read; else 1."""
    if any(r.verdict == "unreadable" for r in reports):
        return EXIT_UNREADABLE
    return EXIT_OK if reports and all(r.ok for r in reports) else EXIT_NOT_OURS


def text(name: str, r: VerifyReport) -> str:
    lines = [f"{name}: {r.verdict} - {r.summary}"]
    if r.verdict == "unreadable":
        return lines[0]

    def row(label: str, value: object) -> None:
        if value not in (None, "", []):
            lines.append(f"  {label:<10} {value}")

    row("manifest", r.manifest)
    if r.signer is not None:
        who = ", ".join(x for x in (r.signer.common_name, r.signer.issuer) if x)
        flags = [m.VERIFY_TRUSTED if r.signer.trusted else "untrusted"]
        if r.signer.signed_here:
            flags.append("signed by this installation")
        row("signer", f"{who} ({'; '.join(flags)})")
    row("generator", r.generator)
    row("model", r.model)
    row("created", r.created)
    row("actions", ", ".join(r.actions))
    row("source", ", ".join(t.rsplit("/", 1)[-1] for t in r.digital_source_types))
    for i in r.ingredients:
        row("ingredient", f"{i.title} ({i.relationship}{', with its own manifest' if i.has_manifest else ''})")
    for p in r.problems:
        row("problem", p)
    wm = r.watermark
    row("watermark", f"{'found' if wm.found else 'not found'} ({wm.bits}/32 bits)" if wm.checked else "too small")
    if r.recipe:
        signed = "signed" if r.recipe_signed else "unsigned PNG text"
        size = f"{r.recipe.get('width')}x{r.recipe.get('height')}"
        row("recipe", f"{r.recipe.get('prompt', '')!r}, seed {r.recipe.get('seed')}, {size} ({signed})")
    return "\n".join(lines)


def verify_files(paths: Sequence[Path], *, as_json: bool, out: TextIO, settings: Settings | None = None) -> int:
    reports: list[VerifyReport] = []
    rows = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            report = VerifyReport(
                verdict="unreadable", ok=False, summary=m.VERIFY_UNREADABLE.format(reason=exc.strerror or exc)
            )
        else:
            report = verify_image(data, settings)
        reports.append(report)
        if as_json:
            rows.append({"file": str(path), **report.model_dump(mode="json")})
        else:
            print(text(str(path), report), file=out)
    if as_json:
        print(json.dumps(rows, indent=2), file=out)
    return exit_code(reports)
