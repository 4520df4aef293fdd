"""The offline rewriter: deterministic rules that turn a chat message into image specs.

No network, no model: the default when no LLM is configured and the fall-back when the LLM fails.
It reads counts ("3 of", "a few"), lists of variations ("in red, navy and white" -> 3 specs, one
colour each), aspect words (wide, portrait, banner, 16:9, 1024x768), style words (presets in
``chatcanvas/prompts/styles.json``) and follow-ups that edit the last images ("make it blue", "again but
wider", "same sneaker but in light blue and in burgundy": the colour and product replaced, nothing else of
the message spliced in). Word lists live in ``chatcanvas/prompts/lexicon.json``; colour names come from
:mod:`chatcanvas.colours`.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from chatcanvas import messages as m
from chatcanvas import prompts
from chatcanvas.bot.midjourney_params import split_params
from chatcanvas.bot.plan import Plan
from chatcanvas.bot.request_reader import (
    _AFTER_LIST,
    Request,
    _spelled,
    _strip_style_words,
    clean_subject,
    find_count,
    find_style,
    read,
    run_items,
)
from chatcanvas.bot.rewrite_patterns import (
    _ASPECT_TAG,
    _ASPECT_TAG_INLINE,
    _COLOUR_REPLY_LEAD,
    _COLOUR_REPLY_TAIL,
    _EDIT,
    _EDIT_LEAD,
    _EDIT_WORDS,
    _GREETING,
    _HELP,
    _NEGATIVE,
    _ONLY_EDIT,
    _PRODUCT_LEAD,
    _SEED,
    _SETTINGS,
    DEFAULT_NEGATIVE,
    SD_QUALITY,
    Phrase,
    Run,
    TokenCounter,
    _free_colours,
    _rx,
    lead_runs,
    parse_run,
    phrase_at,
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
    terms = [t.strip() for t in ", ".join([*negatives, preset.negative if preset else DEFAULT_NEGATIVE]).split(",")]
    negative = ", ".join(dict.fromkeys(t for t in terms if t))  # "no text" and the preset's "text": once
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
        params = split_params(text)  # "--ar 16:9 --no text": in words the rules read ("16:9, no text")
        words = params.as_words()
        if params.repeat and not find_count(params.prompt):
            words = f"{params.repeat} images of {words}"
        plan = self._new(read(words), family)
        if params.ignored:
            plan.notes.append(m.MIDJOURNEY_IGNORED.format(params=", ".join(params.ignored)))
        return plan

    # ------------------------------------------------------------ new requests

    def _base(self, family: Family) -> int:
        return self.base_side or (1024 if family == "dalle" else 512)

    def _new(self, req: Request, family: Family) -> Plan:
        notes: list[str] = []
        width, height = self.limits.size_for(req.aspect, req.ratio, req.size, self._base(family), sdxl_buckets=family == "sd")
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
                    upd["width"], upd["height"] = self.limits.size_for(
                        aspect, ratio, size, side, sdxl_buckets=family == "sd"
                    )
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


# ---------------------------------------------------------------- follow-ups: "same sneaker but in light blue"


@dataclass
class FollowUp:
    """What a follow-up changes in the last request: its colour (one image per colour listed), its product
    (when one is named), and a phrase it adds ("now with a hat"). Nothing else of the message goes in."""

    colours: list[str] = field(default_factory=list)
    product: str | None = None
    added: str = ""


def _colour_run(rest: str) -> Run | None:
    """The colours a follow-up asks for: a list opened by "in"/"into"/"to", or one the message starts with
    ("navy instead", "a blue one", "what about burgundy?"); not "with red laces" (that adds laces)."""
    rx = _rx()
    for run in lead_runs(rest):
        if rx.list_not_variants.match(rest, run.end) or not any(p.kind == "colour" for p in run.items):
            continue
        return run
    for mt in re.finditer(r"\bto\s+", rest, re.I):
        to = parse_run(rest, mt.end(), mt.start())
        if to and any(p.kind == "colour" and p.sure for p in to.items):
            return to
    lead = _COLOUR_REPLY_LEAD.match(rest)
    first = parse_run(rest, lead.end() if lead else 0, 0)
    if first and first.items[0].kind == "colour" and not rx.list_not_variants.match(rest, first.end):
        sure = any(p.sure for p in first.items) or _COLOUR_REPLY_TAIL.fullmatch(rest, first.end) is not None
        return first if sure else None
    return None


def colour_reply(text: str) -> bool:
    """Is the message only a colour ("navy pls", "what about burgundy?", "forest green instead thanks!")?"""
    text = " ".join(text.split())
    lead = _COLOUR_REPLY_LEAD.match(text)
    run = parse_run(text, lead.end() if lead else 0)
    return bool(
        run
        and all(p.kind == "colour" for p in run.items)
        and _COLOUR_REPLY_TAIL.fullmatch(text, run.end)
    )


def read_follow_up(rest: str) -> FollowUp:
    """Read a follow-up without its leading "now"/"same"/"make it" (``rest``: "sneaker but in light blue and in
    burgundy please" -> colours light blue, burgundy; product sneaker; nothing added)."""
    rx = _rx()
    out = FollowUp()
    removed: list[tuple[int, int]] = []
    run = _colour_run(rest)
    if run:
        items = zip(run_items(rest, run), run.items, strict=True)
        out.colours = [_spelled(i, p) for i, p in items if p.kind == "colour"]
        removed.append((run.lead, run.end))
    for pm in rx.product.finditer(rest):
        if any(a <= pm.start() < b for a, b in removed) or pm.group(0).lower() in ("product", "products"):
            continue
        before = rest[: pm.start()]
        for a, b in sorted(removed, reverse=True):
            before = before[:a] + " " + before[b:] if a < len(before) else before
        start = pm.start()
        mat = re.search(rf"(?:(?:{rx.material_re.pattern})\s+)+$", before, re.I)
        if mat:  # "a canvas sneaker": the material goes with the product
            start = mat.start()
            before = before[: mat.start()]
        if _PRODUCT_LEAD.fullmatch(before):
            out.product = rest[start : pm.end()]
            removed.append((0, pm.end()))
        break
    out.added = _added_phrase(rest, removed)
    return out


def _added_phrase(rest: str, removed: list[tuple[int, int]]) -> str:
    """What a follow-up adds to the picture ("now with a hat" -> "with a hat"); "" when it only changes
    settings, colours or the product. Only a stretch of the message that nothing was cut out of counts."""
    rx = _rx()
    keep = list(rest)
    for a, b in removed:
        keep[a:b] = ["\0"] * (b - a)
    text = "".join(keep)
    for pat in (_NEGATIVE, rx.style_re, _ASPECT_TAG, _ASPECT_TAG_INLINE, _SEED, rx.count):
        text = pat.sub(lambda mt: "\0" * len(mt.group(0)), text)
    parts = []
    for part in text.split("\0"):
        part = re.sub(r"[^\w\s,.'&-]+", " ", part)  # emoji, "?!"
        part = re.sub(r"\s+", " ", part).strip(" ,.!")
        if not _EDIT_WORDS.sub(" ", part).strip(" ,.!&-"):
            continue
        part = re.sub(r"^(?:(?:and|also|but|now|then|so|ok|okay)\b[\s,]*)+", "", part, flags=re.I)
        part = re.sub(
            r"(?:[\s,]*\b(?:please|pls|plz|thanks|thank\s+you|thx|ty|instead|again|too|now|lol)\b)+$",
            "",
            part,
            flags=re.I,
        )
        part = re.sub(r"^(?:add|adding)\s+", "with ", part, flags=re.I)
        parts.append(part.strip(" ,.&-"))
    if len(parts) != 1 or len(parts[0].split()) > 12:
        return ""  # nothing added, or only pieces of a sentence the colours and product were cut out of
    return parts[0]


def recolour(subject: str, colour: str | None, product: str | None = None) -> str:
    """The last request's subject in ``colour`` (and as ``product``): its colour phrase is replaced (its
    material kept unless ``colour`` names one), else the colour goes before the product or main noun."""
    rx = _rx()
    pm = rx.product.search(subject)
    if pm and re.search(rf"\b(?:{_PLACE_WORDS})\b", subject[: pm.start()], re.I):
        pm = None  # "a rose in a vase": the vase is not what the colour is for
    target = _subject_colour(subject, pm)
    edits: list[tuple[int, int, str]] = []
    if colour and target:
        words = target.colour or (target.start, target.end)
        a, b = (target.start, target.end) if _names_material(colour) else words
        edits.append((a, b, colour))
    if product:
        if pm:
            start = pm.start()
            mat = re.search(rf"(?:(?:{rx.material_re.pattern})\s+)+$", subject[:start], re.I)
            start = mat.start() if mat else start  # "canvas tote" -> "sneaker": the material was the tote's
            start = max([start, *(b for a, b, _ in edits if a < pm.start())])
            edits.append((start, pm.end(), product))
        else:  # the product replaces what the first part of the subject showed
            cut = subject.find(",")
            cut = len(subject) if cut < 0 else cut
            edits = [(0, cut, f"{colour} {product}" if colour else product)]
            colour = None
    if colour and not target:
        at = pm.start() if pm and not product else None
        if at is not None:
            mat = re.search(rf"(?:(?:{rx.material_re.pattern})\s+)+$", subject[:at], re.I)
            at = mat.start() if mat else at
            edits.append((at, at, f"{colour} "))
        elif not product:
            return _before_noun(subject, colour)
        else:
            edits = [(a, b, f"{colour} {t}" if t == product else t) for a, b, t in edits]
    for a, b, t in sorted(edits, reverse=True):
        subject = subject[:a] + t + subject[b:]
    return _fix_articles(subject)


_PLACE_WORDS = "in|on|at|with|under|over|beside|near|inside|behind|against|from|next|by|holding|wearing"


def _names_material(variation: str) -> bool:
    p = phrase_at(variation.strip(), 0)
    return bool(p and p.colour and p.colour[1] < p.end)


def _subject_colour(subject: str, pm: re.Match[str] | None) -> Phrase | None:
    """The colour phrase of a subject that colours its thing: "tote in navy", "a navy canvas tote", "a red
    rose" (not the "rose" of "a rose in a vase", nor "orange" in "an orange on a plate")."""
    listed = [p for r in lead_runs(subject) for p in r.items if p.kind == "colour"]
    if pm:
        for p in listed:
            if not subject[pm.end() : p.start].strip(" ") or re.fullmatch(
                r"\s*in\s+(?:the\s+)?", subject[pm.end() : p.start], re.I
            ):
                return p
    free = [phrase_at(subject, a, listed=False) for a in sorted(_free_colours(subject))]
    found = [p for p in free if p is not None and p.kind == "colour"]
    if pm:
        material = _rx().material_re.pattern
        for p in found:
            gap = subject[p.end : pm.start()]
            if p.end <= pm.start() and re.fullmatch(rf"(?:\s+(?:{material}))*\s+|\s*", gap, re.I):
                return p

    def first_part(at: int) -> bool:  # not "a dog in the park with an orange ball": the ball is not "it"
        return not re.search(rf"\b(?:{_PLACE_WORDS})\b", subject[:at], re.I)

    if listed and first_part(lead_runs(subject)[0].lead):
        return listed[0]
    for p in found:  # a colour in front of a noun: "a red rose", "an orange cat"
        nxt = re.match(r"[\s-]+([A-Za-z][\w'-]*)", subject[p.end :])
        if nxt and nxt.group(1).lower() not in _AFTER_LIST and first_part(p.start):
            return p
    return None


def _before_noun(subject: str, colour: str) -> str:
    art = re.match(r"^(an?|the)\s+", subject, re.I)
    if art:
        return _fix_articles(f"{art.group(1)} {colour} {subject[art.end() :]}")
    return f"{colour} {subject}"


def _fix_articles(text: str) -> str:
    """ "a orange" -> "an orange", "an blue" -> "a blue"."""
    text = re.sub(r"\b([Aa])\s+(?=[aeiouAEIOU]\w)(?!(?:one|uni|use|eu)\w*)", r"\1n ", text)
    return re.sub(r"\b([Aa])n\s+(?=[^aeiouAEIOU\W]|#)", r"\1 ", text)


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
