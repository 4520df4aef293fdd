"""Reading a request: how many images, which variations, what shape and style, the subject."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatcanvas.bot.rewrite_patterns import (
    _ANY_COLON,
    _ASPECT_TAG,
    _ASPECT_TAG_INLINE,
    _BARE_IMAGE,
    _CLAUSE_SPLIT,
    _COLON_LIST,
    _DEICTIC,
    _EACH,
    _FILLER,
    _GENERIC,
    _NEGATIVE,
    _ONE_EACH,
    _ONE_PREP,
    _OWNER,
    _PREFIX,
    _RATIO,
    _SEED,
    _SEP_SPLIT,
    _SIZE,
    _THING_LIST,
    _TIMES,
    ASPECT_TIERS,
    _alt,
    _Rx,
    _rx,
    _singular,
)
from chatcanvas.prompts import StylePreset
from chatcanvas.types import MAX_SEED, Aspect


@dataclass
class Request:
    """What the rules read from one message."""

    text: str
    count: int | None = None  # explicit total (or per variation when ``each``)
    each: bool = False
    variations: list[tuple[str, str]] = field(default_factory=list)  # (label, text for that image)
    aspect: Aspect | None = None
    size: tuple[int, int] | None = None
    ratio: float | None = None
    style: str | None = None
    variation_styles: list[str | None] = field(default_factory=list)  # per variation, for style lists
    seed: int | None = None


def _count_value(word: str, rx: _Rx) -> int:
    return int(word) if word.isdigit() else rx.count_words[word.lower()]


def find_count(text: str) -> tuple[int, re.Match[str]] | None:
    """The first count that refers to images: "3 phone wallpapers", "a few sketches", "four versions of"."""
    rx = _rx()
    for mt in rx.count.finditer(text):
        after = re.findall(r"[\w'-]+|:", text[mt.end() :])[:4]
        if not after:
            continue
        look = [w.lower() for w in after[:3]]
        hit = any(w in rx.image_nouns for w in look) or after[0] == ":"
        # "a couple of landscape photos": the "of" is part of the count words
        if hit and _count_value(mt.group("n"), rx) > 0:
            return _count_value(mt.group("n"), rx), mt
    tm = _TIMES.search(text)
    if tm:
        n = int(next(g for g in tm.groups() if g))
        if n > 0:
            return n, tm
    return None


def find_aspect(text: str) -> tuple[Aspect | None, tuple[int, int] | None, float | None]:
    """(aspect word, exact WxH, ratio w/h): explicit words beat implied ones; earliest mention wins."""
    sm = _SIZE.search(text)
    if sm:
        w, h = int(sm.group(1)), int(sm.group(2))
        if w >= 64 and h >= 64:
            return None, (w, h), w / h
    rm = _RATIO.search(text)
    if rm and int(rm.group(1)) and int(rm.group(2)):
        return None, None, int(rm.group(1)) / int(rm.group(2))
    rx = _rx()
    for tier in ASPECT_TIERS:
        best: tuple[int, Aspect] | None = None
        for t, aspect, pat in rx.aspects:
            if t != tier:
                continue
            mt = pat.search(text)
            if mt and (best is None or mt.start() < best[0]):
                best = (mt.start(), aspect)
        if best:
            return best[1], None, None
    return None, None, None


def _trigger(word: str, rx: _Rx) -> str:
    """The preset a style word names ("mockups" -> the "mockup" trigger -> product)."""
    w = word.lower()
    return rx.style_triggers.get(w) or rx.style_triggers[w[:-1]]


def find_style(text: str) -> str | None:
    """The style preset a message names or implies (a product shot for "our mug in red")."""
    rx = _rx()
    found = [(mt.start(), -len(mt.group(0)), _trigger(mt.group(0), rx)) for mt in rx.style_re.finditer(text)]
    named = [f for f in found if f[2] not in ("photo",)]
    if named:
        return min(named)[2]
    if rx.product.search(text) and (
        rx.owned_product.search(text) or rx.run_in.search(text) or re.search(r"\bproducts?\b", text, re.I)
    ):
        product_design = re.search(
            rf"(?:{rx.product.pattern})\s+(?:designs?|patterns?|prints?|graphics?)\b", text, re.I
        )
        if not product_design or rx.owned_product.search(text):
            return "product"
    if found:
        return "photo"
    return None


def _split_items(s: str) -> list[str]:
    return [i.strip(" .!") for i in _SEP_SPLIT.split(s) if i and i.strip(" .!")]


def _shared_tail(items: list[str]) -> tuple[list[str], str]:
    """["a sunrise", "a sunset over the beach"] -> (["a sunrise", "a sunset"], "over the beach")."""
    if len(items) < 2:
        return items, ""
    n0 = max(len(i.split()) for i in items[:-1])
    last = items[-1].split()
    if len(last) > n0 + 1:
        return [*items[:-1], " ".join(last[:n0])], " ".join(last[n0:])
    return items, ""


def _label(item: str) -> str:
    return re.sub(r"^(?:an?|the|one|in|with|as)\s+", "", item.strip(), flags=re.I)


def find_variations(text: str, count: int | None) -> tuple[list[tuple[str, str]], list[str | None]]:
    """Per-image variations as (label, that image's text); the second list: a style per variation, if any."""
    rx = _rx()
    # 1. a list of styles: "in watercolor, anime and pixel art"
    sm = rx.style_run.search(text)
    if sm:
        items = [re.sub(r"^(?:an?\s+)|\s+style$", "", i, flags=re.I) for i in _split_items(sm.group("run"))]
        names = [rx.style_triggers.get(i.lower()) for i in items]
        if len(items) >= 2 and all(names):
            base = (text[: sm.start()] + text[sm.end() :]).strip(" ,")
            return [(i, base) for i in items], list(names)
    # 2. "two images: a sunrise and a sunset over the same beach", "3 versions of a dragon: red, green and gold"
    cm = _COLON_LIST.match(text) or _ANY_COLON.match(text)
    if cm:
        head = cm.group("head")
        items, tail = _shared_tail(_split_items(cm.group("list")))
        words = re.findall(r"[\w'-]+", head.lower())
        head_ok = cm.re is _COLON_LIST or bool(
            (words and words[-1] in rx.image_nouns) or (count and find_count(head))
        )
        if head_ok and len(items) >= 2 and (count is None or count == len(items)):
            items = [re.sub(rf"^one\s+(?={_ONE_PREP})", "", i, flags=re.I) for i in items]
            subject = clean_subject(head)[0]
            generic = all(w in rx.image_nouns for w in re.findall(r"[\w'-]+", subject.lower()))
            # "4 icons: home, search": "icon of home"; "two images: a sunrise, a sunset": "a sunrise"
            noun = "" if not generic or _BARE_IMAGE.fullmatch(subject) else _singular(subject.split()[-1])
            noun = "" if noun.lower() in rx.style_triggers else noun  # "3 sketches: ...": the preset says it
            out = []
            for i in items:
                if generic and noun:
                    out.append((_label(i), f"{noun} of {i} {tail}".strip()))
                elif generic:
                    out.append((_label(i), f"{i} {tail}".strip()))
                elif rx.variant_re.fullmatch(i):
                    out.append((i, f"{head} in {i} {tail}".strip()))
                else:
                    glue = " " if re.match(rf"(?:{_ONE_PREP})\b", i, re.I) else ": "
                    out.append((_label(i), f"{head}{glue}{i} {tail}".strip()))
            return out, []
    # 3. "two logos, one with a fox and one with an owl"
    ones = list(_ONE_EACH.finditer(text))
    if len(ones) >= 2:
        head = text[: ones[0].start()].strip(" ,;:")
        parts = [
            text[a.start() : b.start() if b else len(text)]
            for a, b in zip(ones, [*ones[1:], None], strict=True)
        ]
        parts = [re.sub(r"[\s,;]*(?:and|or)?[\s,;]*$", "", p[3:].strip(), flags=re.I) for p in parts]
        if count is None or count == len(parts):
            return [(_label(p), f"{head} {p}".strip()) for p in parts], []
    # 4. "a mug with our logo in blue and a mug with our logo in green": one clause per colour
    clauses = [c for c in _CLAUSE_SPLIT.split(text) if c.strip()]
    if len(clauses) >= 2:
        with_colour = [(rx.run_in.search(c), c) for c in clauses]
        if all(mt and len(rx.colour_re.findall(mt.group("run"))) == 1 for mt, _ in with_colour):
            return [(mt.group("run") if mt else "", c.strip()) for mt, c in with_colour], []
    # 5. a list of colours, materials or times: "in red, navy and forest green", "red and blue mugs",
    #    "in leather or suede", "at morning, noon and night" (not "in silver and gold armor": one armor)
    for pat in (rx.run_in, rx.run_bare, rx.scene_run):
        for mt in pat.finditer(text):
            colours = _colours(mt.group("run"))
            if pat is rx.run_in and (
                _modifies_noun(text, mt.end("run"), rx) or _one_blend(text, mt, count, rx)
            ):
                continue
            if len(colours) >= 2:
                a, b = mt.span("run")
                return [(c, text[:a] + c + text[b:]) for c in colours], []
    # 6. "4 stickers of a cat, a dog, a fox and an owl": as many things listed as images asked for
    if count:
        for mt in _THING_LIST.finditer(text):
            if not re.search(r"(?:^|\bof|:|\bshowing)\s*$", text[: mt.start()], re.I):
                continue  # "3 logos with a fox, a moon and a star": each logo shows all three
            things = _split_items(mt.group("run"))
            if len(things) == count:
                a, b = mt.span("run")
                return [(_label(t), text[:a] + t + text[b:]) for t in things], []
    # 7. "3 fall colours", "in 4 different colours"
    pm = rx.palette.search(text)
    if pm:
        n = _count_value(pm.group("n"), rx)
        pal = rx.palettes.get((pm.group("pal") or "").lower(), rx.palettes[""])
        if 2 <= n <= len(pal) and not rx.run_in.search(text):
            a, b = pm.span()
            pre = text[:a]
            lead = "" if re.search(r"\bin\s+(?:\w+\s+)?$", pre, re.I) else "in "
            return [(c, re.sub(r"\bin\s+like\s+$", "in ", pre) + lead + c + text[b:]) for c in pal[:n]], []
    return [], []


_AFTER_LIST = frozenset(
    "and or with without on for at in against please pls plz thanks thx each both too also only x vs but no not "
    "plus the a an to from by under over during tones shades colours colors colour color versions options "
    "variants variations ones finish finishes".split()
)


def _modifies_noun(text: str, end: int, rx: _Rx) -> bool:
    """Is the list ending at ``end`` an adjective of a following noun ("in silver and gold armor": one armor)?"""
    mt = re.match(r"\s+([A-Za-z][\w'-]*)", text[end:])
    if not mt:
        return False
    word = mt.group(1).lower()
    if word in _AFTER_LIST or word in rx.image_nouns or word.endswith("s") or rx.product.fullmatch(word):
        return False
    return not rx.variant_re.fullmatch(word)


def _one_blend(text: str, mt: re.Match[str], count: int | None, rx: _Rx) -> bool:
    """ "a sunset in orange and pink" is one sunset in two colours; "our mug in red and blue", "a dragon in red
    or gold", "the same fox in red and in blue" and "2 dragons in red and gold" are one image per colour."""
    if count or rx.product.search(text) or re.search(r"\bthe\s+same\b", text, re.I):
        return False
    run = mt.group("run")
    if re.search(r"\bor\b|/|\bvs\b|\bversus\b|\b(?:in|at|during)\s", run, re.I):
        return False
    return not rx.scene_run.search(f"in {run}")


def _colours(run: str, variants: bool = True) -> list[str]:
    """The colours (``variants``: also materials, patterns, seasons, times of day) listed in ``run``."""
    rx = _rx()
    found = [c.strip() for c in (rx.variant_re if variants else rx.colour_re).findall(run)]
    if len(found) >= 2:  # "in red, black and white": the pair is two colours here
        out: list[str] = []
        for c in found:
            out.extend(["black", "white"] if c.lower() == "black and white" else [c])
        return out
    return found


def read(text: str) -> Request:
    text = " ".join(text.split())
    req = Request(text=text)
    found = find_count(text)
    req.count = found[0] if found else None
    req.each = bool(_EACH.search(text))
    req.variations, req.variation_styles = find_variations(text, req.count)
    req.aspect, req.size, req.ratio = find_aspect(text)
    req.style = find_style(text)
    sm = _SEED.search(text)
    req.seed = min(int(sm.group(1)), MAX_SEED) if sm else None
    return req


# ---------------------------------------------------------------- writing prompts


def clean_subject(text: str) -> tuple[str, list[str]]:
    """The subject of a request, without chat fluff, counts and format words; plus the "no X" phrases."""
    negatives = [mt.group("what").strip() for mt in _NEGATIVE.finditer(text)]
    s = _NEGATIVE.sub("", text)
    s = _SEED.sub("", s)
    s = _EACH.sub("", s)
    s = _ASPECT_TAG_INLINE.sub("", s)
    for _ in range(3):
        s = _ASPECT_TAG.sub("", s)
    s = re.sub(r"[!?]+", " ", s)
    s = _PREFIX.sub("", s.strip(), count=1)
    found = find_count(s)
    if found:
        a, b = found[1].span()
        s = (s[:a] + s[b:]).strip()
        s = re.sub(r"^(?:of\s+)", "", s, flags=re.I)
    s = _PREFIX.sub("", s.strip(), count=1)
    s = _GENERIC.sub("", s, count=1) if re.match(_GENERIC.pattern, s, re.I) else s
    s = re.sub(r"^(?:different|distinct|unique|various|more)\s+", "", s, flags=re.I)
    s = _FILLER.sub("", s)
    s = re.sub(r"\s+as\s+(?:separate|individual|different)\b.*$|\s+(?:separately|individually)\b", "", s)
    s = re.sub(
        r"(?:^|,|\s[-\u2013\u2014])\s*(?:variations?|options?|versions?|variants?|takes?|alternatives?|images?|pics?"
        r"|pictures?)\s*(?=,|$)",
        "",
        s,
        flags=re.I,
    )
    s = _OWNER.sub("", s)
    s = _DEICTIC.sub("", s.strip())
    s = re.sub(r"\bin\s+in\b", "in", s, flags=re.I)
    s = re.sub(r"\s+([,.;:])", r"\1", s)
    s = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", s)
    s = re.sub(r"\s{2,}", " ", s).strip(" ,;:.-")
    s = re.sub(r"\b(?:a|an)\s+(?=(?:a|an)\b)", "", s, flags=re.I)
    return s, [n for n in negatives if n.lower() not in ("any", "")]


def _strip_style_words(subject: str, preset: StylePreset | None) -> str:
    """Drop a leading "watercolor painting of" / trailing ", in anime style": the preset says it better."""
    if preset is None:
        return subject
    trig = _alt([preset.name, *preset.triggers])
    kinds = (
        r"(?:\s+(?:style|painting|art|drawing|render|illustration|photo|photograph|shot|image|picture|still"
    )
    kinds += r"|version))*"
    s = re.sub(rf"^(?:an?\s+)?(?:{trig})s?{kinds}(?:\s+of\b|,|\s+(?=\w))\s*", "", subject, flags=re.I)
    s = re.sub(rf"(?:,\s*|\s+)(?:in\s+(?:an?\s+)?)?(?:{trig}){kinds}\s*$", "", s, flags=re.I)
    return s.strip(" ,") or subject
