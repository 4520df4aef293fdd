"""The offline rewriter: deterministic rules that turn a chat message into image specs.

No network, no model: the default when no LLM is configured and the fall-back when the LLM fails.
It reads counts ("3 of", "a few"), lists of variations ("in red, navy and white" -> 3 specs, one
colour each), aspect words (wide, portrait, banner, 16:9, 1024x768), style words (presets in
``chatcanvas/prompts/styles.json``) and simple edits of the last images ("make it blue", "again but
wider"). Word lists live in ``chatcanvas/prompts/lexicon.json``.
"""

from __future__ import annotations

import re
import zlib

from chatcanvas import messages as m
from chatcanvas import prompts
from chatcanvas.bot.plan import Plan
from chatcanvas.bot.request_reader import (
    Request,
    _strip_style_words,
    clean_subject,
    colour_reply,
    find_count,
    find_style,
    read,
    read_follow_up,
    recolour,
)
from chatcanvas.bot.rewrite_patterns import (
    _EDIT,
    _EDIT_LEAD,
    _GREETING,
    _HELP,
    _NEGATIVE,
    _ONLY_EDIT,
    _SETTINGS,
    DEFAULT_NEGATIVE,
    SD_QUALITY,
    TokenCounter,
    _rx,
)
from chatcanvas.prompts import SD_TOKEN_LIMIT, Family, describe_limits, rough_tokens
from chatcanvas.types import Aspect, ChatTurn, ImageSpec, Limits


def compose(
    subject: str,
    style: str | None,
    family: Family,
    negatives: list[str] = (),  # type: ignore[assignment]
    count_tokens: TokenCounter | None = None,
) -> tuple[str, str, list[str]]:
    """(prompt, negative prompt, notes) for one subject in one backend family."""
    preset = prompts.style(style)
    subject = _strip_style_words(subject, preset)
    notes: list[str] = []
    if family == "dalle":
        body = preset.apply(subject, "dalle") if preset else subject[:1].upper() + subject[1:] + "."
        if negatives:
            body += " Without " + ", ".join(negatives) + "."
        return body, "", notes
    phrases = [p.strip() for p in (preset.sd if preset else SD_QUALITY).split(",")]
    negative = ", ".join([*negatives, preset.negative if preset else DEFAULT_NEGATIVE])
    counter = count_tokens or rough_tokens
    prompt = ", ".join([subject, *phrases])
    while phrases and (counter(prompt) or rough_tokens(prompt)) > SD_TOKEN_LIMIT:
        phrases.pop()
        prompt = ", ".join([subject, *phrases])
    n = counter(prompt) or rough_tokens(prompt)
    if n > SD_TOKEN_LIMIT:
        words = prompt.split()
        tail = " ".join(words[int(len(words) * SD_TOKEN_LIMIT / n) :][:4])
        notes.append(m.REWRITE_TOKENS_OVER.format(n=n, limit=SD_TOKEN_LIMIT, tail=tail))
    return prompt, negative, notes


def _stable_seed(text: str) -> int:
    return zlib.crc32(text.lower().encode()) % (2**31)


# ---------------------------------------------------------------- the rewriter


class OfflineRewriter:
    """Deterministic rules; see the module docstring. Implements :class:`chatcanvas.bot.rewriter.Rewriter`.

    ``base_side``: the side of a square image for the model in use (e.g. 512 for SD 1.5, 64 for the
    demo model); non-square aspects keep about ``base_side**2`` pixels. ``None``: 512 for SD, 1024
    for DALL-E. ``count_tokens``: the loaded pipeline's tokenizer count (``backend.count_tokens``).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        base_side: int | None = None,
        count_tokens: TokenCounter | None = None,
        backend: str | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.base_side = base_side
        self.count_tokens = count_tokens
        self.backend = backend

    async def plan(self, turn: ChatTurn, last: list[ImageSpec] | None, backend_family: str) -> Plan:
        return self.plan_text(turn.text, last, backend_family)

    def plan_text(self, text: str, last: list[ImageSpec] | None = None, backend_family: str = "sd") -> Plan:
        family: Family = "dalle" if backend_family == "dalle" else "sd"
        text = " ".join(text.split())
        if not text or _HELP.match(text):
            return Plan(reply=m.REWRITE_HELP)
        if _GREETING.match(text):
            return Plan(reply=m.REWRITE_GREETING)
        if _SETTINGS.search(text) and len(text.split()) <= 12 and not find_count(text):
            return Plan(reply=describe_limits(self.limits))
        if last and (_EDIT.search(text) or colour_reply(text)):
            return self._edit(text, last, family)
        if not last and _ONLY_EDIT.match(text):
            return Plan(reply=m.REWRITE_NOTHING_TO_EDIT)
        return self._new(read(text), family)

    # ------------------------------------------------------------ new requests

    def _base(self, family: Family) -> int:
        return self.base_side or (1024 if family == "dalle" else 512)

    def _new(self, req: Request, family: Family) -> Plan:
        notes: list[str] = []
        width, height = self.limits.size_for(req.aspect, req.ratio, req.size, self._base(family))
        items = req.variations or [("", req.text)]
        styles = req.variation_styles or [req.style] * len(items)
        per = 1
        if req.count and len(items) > 1:
            per = req.count if req.each else (req.count // len(items) if req.count % len(items) == 0 else 1)
        elif req.count:
            per = req.count
        if req.size and (width, height) != (req.size[0] // 8 * 8, req.size[1] // 8 * 8):
            notes.append(m.CLAMPED_SIZE.format(w=req.size[0], h=req.size[1], nw=width, nh=height))
        asked = per * len(items)
        per = min(per, self.limits.max_count)
        seed = req.seed
        if seed is None and len(items) > 1:
            seed = _stable_seed(req.text)  # one seed for all variations: they differ only where asked
        specs: list[ImageSpec] = []
        for (_label, item_text), style in zip(items, styles, strict=True):
            subject, negatives = clean_subject(item_text)
            if not subject:
                subject = item_text.strip() or req.text
            prompt, negative, pnotes = compose(subject, style, family, negatives, self.count_tokens)
            notes.extend(n for n in pnotes if n not in notes)
            specs.append(
                ImageSpec(
                    prompt=prompt[: self.limits.max_prompt_chars],
                    negative_prompt=negative,
                    width=width,
                    height=height,
                    count=max(1, per),
                    seed=seed,
                    style=style,
                    backend=self.backend,
                )
            )
        specs, more = self.fit(specs, asked)
        notes.extend(more)
        if len(specs) > 1 and req.variations:
            notes.insert(
                0,
                m.REWRITE_VARIATIONS.format(n=len(specs), items=", ".join(v for v, _ in items[: len(specs)])),
            )
        return Plan(specs=specs, notes=notes)

    def fit(self, specs: list[ImageSpec], asked: int | None = None) -> tuple[list[ImageSpec], list[str]]:
        """Clamp every spec and keep the total number of images within ``max_count``."""
        notes: list[str] = []
        out: list[ImageSpec] = []
        asked = asked or sum(s.count for s in specs)
        left = self.limits.max_count
        for spec in specs:
            if left <= 0:
                break
            if spec.count > left:
                spec = spec.model_copy(update={"count": left})
            spec, n = self.limits.clamp(spec)
            notes.extend(x for x in n if x not in notes)
            out.append(spec)
            left -= spec.count
        if asked > self.limits.max_count:
            notes = [x for x in notes if "images; the limit" not in x]
            notes.insert(0, m.CLAMPED_COUNT.format(n=asked, limit=self.limits.max_count))
        return out, notes

    # ------------------------------------------------------------ edits of the last specs

    def _edit(self, text: str, last: list[ImageSpec], family: Family) -> Plan:
        """Change the last specs: colours, style, aspect, count, "no X", or an added phrase; new seeds."""
        rx = _rx()
        rest = _EDIT_LEAD.sub("", text).strip(" ,.!")
        req = read(rest or text)
        follow = read_follow_up(rest)  # an edit recolours (or names a new product); "at night" is added
        colours = follow.colours
        new_style = find_style(rest) if rx.style_re.search(rest) else None
        aspect, size, ratio = req.aspect, req.size, req.ratio
        if re.search(r"\bwider\b", text, re.I):
            aspect = Aspect.WIDE
        elif re.search(r"\btaller\b", text, re.I):
            aspect = Aspect.TALL
        count = req.count or (1 if re.search(r"\b(?:another\s+one|one\s+more)\b", text, re.I) else None)
        negatives = [mt.group("what").strip() for mt in _NEGATIVE.finditer(rest)]
        extra = follow.added
        notes: list[str] = []
        specs: list[ImageSpec] = []
        variants: list[str | None] = [*colours] or [None]
        for spec in last[:1] if colours else last:
            for colour in variants:
                upd: dict[str, object] = {"seed": req.seed, "style": new_style or spec.style}
                if colour or follow.product or new_style or extra:
                    subject = _subject_of(spec, family)
                    if colour or follow.product:
                        subject = recolour(subject, colour, follow.product)
                    if extra and extra.lower() not in subject.lower():
                        subject = f"{subject}, {extra}"
                    prompt, negative, pnotes = compose(
                        subject, new_style or spec.style, family, [], self.count_tokens
                    )
                    notes.extend(n for n in pnotes if n not in notes)
                    upd["prompt"] = prompt[: self.limits.max_prompt_chars]
                    upd["negative_prompt"] = negative
                if negatives and family == "sd":
                    upd["negative_prompt"] = ", ".join(
                        [*negatives, str(upd.get("negative_prompt", spec.negative_prompt))]
                    )
                if aspect or size or ratio:
                    side = int(
                        ((spec.width or self._base(family)) * (spec.height or self._base(family))) ** 0.5
                    )
                    upd["width"], upd["height"] = self.limits.size_for(aspect, ratio, size, side)
                if count:
                    upd["count"] = count
                elif len(colours) > 1:
                    upd["count"] = 1
                specs.append(ImageSpec.model_validate({**spec.model_dump(), **upd}))
        if len(colours) > 1:
            notes.insert(0, m.REWRITE_VARIATIONS.format(n=len(specs), items=", ".join(colours)))
        specs, more = self.fit(specs)
        notes.extend(more)
        return Plan(specs=specs, notes=notes)


def _subject_of(spec: ImageSpec, family: Family) -> str:
    """Undo :func:`compose`: the subject of a prompt that a style preset (or the default quality) extended."""
    preset = prompts.style(spec.style)
    p = spec.prompt
    if family == "dalle":
        if preset:
            pat = re.escape(preset.dalle).replace(re.escape("{subject}"), "(?P<s>.+?)")
            mt = re.fullmatch(pat + r"(?:\s+Without .*)?", p)
            if mt:
                return mt.group("s")
        return re.sub(r"\s+Without .*$", "", p).rstrip(".")
    for tail in (
        [p.strip() for p in preset.sd.split(",")] if preset else [p.strip() for p in SD_QUALITY.split(",")]
    ):
        p = re.sub(rf",\s*{re.escape(tail)}(?=,|$)", "", p)
    return p.strip(" ,")


_IMAGE_CUE = re.compile(
    r"\b(?:draw|paint|sketch|render|generate|create|make|design|show|imagine|illustrate|image|images|picture|pictures"
    r"|pic|pics|photo|photos|wallpaper|poster|banner|logo|icon|avatar|mockup|drawing|painting|portrait|shot)\b",
    re.I,
)


def wants_image(text: str) -> bool:
    """Does the message look like a request for images (and not a greeting, help or a settings question)?"""
    text = " ".join(text.split())
    if (
        not text
        or _GREETING.match(text)
        or _HELP.match(text)
        or (_SETTINGS.search(text) and len(text.split()) <= 12)
    ):
        return False
    req = read(text)
    return bool(req.count or req.variations or req.style or req.aspect or req.size or _IMAGE_CUE.search(text))
