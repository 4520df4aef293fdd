"""Score a rewriter on the evaluation requests (``shared/eval/requests.jsonl`` next to the repo).

    .venv/bin/python bench/rewriter.py                    # the offline rules
    .venv/bin/python bench/rewriter.py --rewriter agent   # the LLM agent (CHATCANVAS_LLM_MODEL etc. set)
    .venv/bin/python bench/rewriter.py --record           # append the result to bench/RESULTS.md

What is scored, per request (see ``shared/eval/README.md``):

- count: the number of images the plan makes equals ``count``;
- variations (only requests that list them): one image per listed variation, each image's prompt
  names exactly its own variation and none of the others, and holds no word of another variation's
  phrase that the request does not also say outside its list ("navy yellow" from "navy, forest green
  and mustard yellow" fails) or the style preset adds;
- aspect: width > height is landscape, width < height portrait, equal (or unset: the model's
  square default) square;
- style (reported, no goal): the plan's style preset equals ``style``.

The limits are lifted to 64 images so that the count measures understanding, not clamping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "requests.jsonl"
GOALS = {"count": 0.90, "variations": 0.90, "aspect": 0.90}

sys.path.insert(0, str(ROOT))

from chatcanvas.bot.plan import Plan, Rewriter  # noqa: E402
from chatcanvas.types import ChatTurn, ImageSpec, Limits, Place, UserRef  # noqa: E402


def aspect_of(spec: ImageSpec) -> str:
    w, h = spec.width, spec.height
    if w is None or h is None or w == h:
        return "square"
    return "landscape" if w > h else "portrait"


def _names(prompt: str, variation: str, others: list[str]) -> bool:
    """``prompt`` names ``variation`` as a phrase of its own (not only inside a longer listed one)."""
    text = prompt.lower()
    for longer in sorted(
        (o.lower() for o in others if variation.lower() in o.lower()), key=len, reverse=True
    ):
        text = text.replace(longer, " ")
    return re.search(rf"(?<![\w-]){re.escape(variation.lower())}(?![\w-])", text) is not None


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9#]+", text.lower().replace("gray", "grey")))


def stray_words(prompt: str, own: str, variations: list[str], allowed: set[str]) -> set[str]:
    """Words of another listed variation in ``prompt`` that its own variation and ``allowed`` do not explain."""
    others = set().union(*(_words(v) for v in variations if v != own)) if len(variations) > 1 else set()
    return (others - _words(own) - allowed) & _words(prompt)


def variations_ok(
    prompts: list[str], variations: list[str], said: str = "", allowed: list[set[str]] | None = None
) -> bool:
    """One prompt per variation naming exactly its own. With ``said`` (the request), also no stray word of
    another variation: only words the request says outside its list, or ``allowed[i]`` (the preset's)."""
    if len(prompts) != len(variations):
        return False
    named = [{v for v in variations if _names(p, v, [o for o in variations if o != v])} for p in prompts]
    if any(len(n) != 1 for n in named):
        return False
    if sorted(next(iter(n)) for n in named) != sorted(variations):
        return False
    if not said:
        return True
    outside = said.lower().replace("gray", "grey")
    for v in sorted(variations, key=len, reverse=True):
        outside = outside.replace(v.lower().replace("gray", "grey"), " ")
    context = _words(outside)
    extra = allowed or [set() for _ in prompts]
    return not any(
        stray_words(p, next(iter(n)), variations, context | x)
        for p, n, x in zip(prompts, named, extra, strict=True)
    )


@dataclass
class Score:
    n: int = 0
    count: int = 0
    aspect: int = 0
    style: int = 0
    var_n: int = 0
    variations: int = 0
    misses: list[str] = field(default_factory=list)

    def rate(self, name: str) -> float:
        total = self.var_n if name == "variations" else self.n
        return getattr(self, name) / total if total else 1.0


def score_one(case: dict[str, Any], plan: Plan, score: Score) -> None:
    images = [s for s in plan.specs for _ in range(s.count)]
    score.n += 1
    problems = []
    if len(images) == case["count"]:
        score.count += 1
    else:
        problems.append(f"count {len(images)} != {case['count']}")
    aspects = {aspect_of(s) for s in plan.specs} or {"square"}
    if aspects == {case["aspect"]}:
        score.aspect += 1
    else:
        problems.append(f"aspect {sorted(aspects)} != {case['aspect']}")
    want_style = case.get("style")
    got = {_style_name(s.style) for s in plan.specs} or {None}
    want = _style_name(want_style)
    if got == {want}:
        score.style += 1
    else:
        problems.append(f"style {sorted(map(str, got))} != {want}")
    if case.get("variations"):
        score.var_n += 1
        presets = [_preset_words(s.style) for s in images]
        if variations_ok([s.prompt for s in images], case["variations"], case["text"], presets):
            score.variations += 1
        else:
            problems.append(f"variations {case['variations']} in {[s.prompt[:60] for s in images]}")
    if problems:
        score.misses.append(f"{case['text']!r}: " + "; ".join(problems))


def _preset_words(name: str | None) -> set[str]:
    from chatcanvas import prompts
    from chatcanvas.bot.rewrite_patterns import SD_QUALITY

    preset = prompts.style(name)
    return _words(preset.sd if preset else SD_QUALITY)


def _style_name(name: str | None) -> str | None:
    from chatcanvas import prompts

    preset = prompts.style(name)
    return preset.name if preset else name


def make_rewriter(kind: str, family: str) -> Rewriter:
    limits = Limits(max_count=64, max_side=4096, max_pixels=4096 * 4096)
    if kind == "offline":
        from chatcanvas.bot.offline_rewriter import OfflineRewriter

        return OfflineRewriter(limits=limits)
    from chatcanvas.bot.agent import AgentRewriter
    from chatcanvas.config import load_settings

    settings = load_settings(max_count=64, max_side=4096, max_pixels=4096 * 4096)
    return AgentRewriter(settings, limits=limits, fallback=False)


async def run(data: Path, kind: str, family: str) -> tuple[Score, float]:
    rewriter = make_rewriter(kind, family)
    score = Score()
    cases = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]  # noqa: ASYNC240
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        turn = ChatTurn(
            who=UserRef(platform="bench", user="u"),
            where=Place(platform="bench", channel=str(i)),
            text=case["text"],
        )
        plan = await rewriter.plan(turn, None, family)
        score_one(case, plan, score)
    return score, time.perf_counter() - t0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{platform.node()} ({cpu}, {system}, Python {platform.python_version()})"


def report(score: Score, seconds: float, kind: str, family: str, data: Path) -> str:
    lines = [
        f"rewriter={kind} family={family} data={data} requests={score.n} time={seconds * 1000:.0f} ms",
        "",
    ]
    lines.append("| metric | score | goal |")
    lines.append("|---|---|---|")
    for name in ("count", "variations", "aspect", "style"):
        total = score.var_n if name == "variations" else score.n
        goal = f"≥ {GOALS[name]:.2f}" if name in GOALS else "—"
        mark = "" if name not in GOALS else (" ✓" if score.rate(name) >= GOALS[name] else " ✗")
        lines.append(f"| {name} | {score.rate(name):.2f} ({getattr(score, name)}/{total}){mark} | {goal} |")
    if score.misses:
        lines += ["", "Misses:", *(f"- {m}" for m in score.misses)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"requests.jsonl (default {DEFAULT_DATA})"
    )
    ap.add_argument("--rewriter", choices=["offline", "agent"], default="offline")
    ap.add_argument("--family", choices=["sd", "dalle"], default="sd")
    ap.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"No evaluation data at {args.data}; pass --data PATH.", file=sys.stderr)
        return 2
    score, seconds = asyncio.run(run(args.data, args.rewriter, args.family))
    text = report(score, seconds, args.rewriter, args.family, args.data)
    print(text)
    if args.record:
        date = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write(
                f"\n## Rewriter ({args.rewriter}, {args.family}) — {date}\n\nMachine: {machine()}\n\n{text}\n"
            )
    ok = all(score.rate(k) >= v for k, v in GOALS.items())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
