"""Reading a request: how many images, which variations, what shape and style, the subject."""

from __future__ import annotations

import re
import unicodedata
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
    Phrase,
    Run,
    _alt,
    _Rx,
    _rx,
    _singular,
    bare_runs,
    is_variant,
    lead_runs,
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
        rx.owned_product.search(text) or lead_runs(text) or re.search(r"\bproducts?\b", text, re.I)
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
    # 2. a list a colour word opens: "beanie colourways: heather grey / mustard / forest", "in colours: ..."
    listed = _listed_variations(text, count, rx, named=True)
    if listed:
        return listed, []
    # 3. "two images: a sunrise and a sunset over the same beach", "3 versions of a dragon: red, green and gold"
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
                elif is_variant(i):
                    out.append((i, f"{head} in {i} {tail}".strip()))
                else:
                    glue = " " if re.match(rf"(?:{_ONE_PREP})\b", i, re.I) else ": "
                    out.append((_label(i), f"{head}{glue}{i} {tail}".strip()))
            return out, []
    # 4. "two logos, one with a fox and one with an owl"
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
    # 5. "a mug with our logo in blue and a mug with our logo in green": one clause per colour
    clauses = [c for c in _CLAUSE_SPLIT.split(text) if c.strip()]
    if len(clauses) >= 2:
        runs = [(lead_runs(c), c) for c in clauses]
        if all(r and len(r[0].items) == 1 and r[0].items[0].kind == "colour" for r, _ in runs):
            # "a sofa in emerald velvet and one in mustard linen": the second is a sofa too
            head = runs[0][1][: runs[0][0][0].lead].strip()
            return [
                (c[r[0].start : r[0].end], re.sub(r"^\s*(?:another\s+one|another|one)\b\s*", f"{head} ", c).strip())
                for r, c in runs
            ], []
    # 6. a list of colours, materials or times: "in navy, forest green and mustard yellow", "in cognac brown
    #    and in jet black", "red and blue mugs", "in leather or suede", "at morning, noon and night"
    #    (not "in silver and gold armor": one armor; not "in red and white stripes": one pattern)
    listed = _listed_variations(text, count, rx)
    if listed:
        return listed, []
    for mt in rx.scene_run.finditer(text):
        scenes = [s.group(0) for s in rx.scene_re.finditer(mt.group("run"))]
        if len(scenes) >= 2:
            a, b = mt.span("run")
            return [(c, text[:a] + c + text[b:]) for c in scenes], []
    # 7. "4 stickers of a cat, a dog, a fox and an owl": as many things listed as images asked for
    if count:
        for mt in _THING_LIST.finditer(text):
            if not re.search(r"(?:^|\bof|:|\bshowing)\s*$", text[: mt.start()], re.I):
                continue  # "3 logos with a fox, a moon and a star": each logo shows all three
            things = _split_items(mt.group("run"))
            if len(things) == count:
                a, b = mt.span("run")
                return [(_label(t), text[:a] + t + text[b:]) for t in things], []
    # 8. "3 fall colours", "in 4 different colours"
    pm = rx.palette.search(text)
    if pm:
        n = _count_value(pm.group("n"), rx)
        pal = rx.palettes.get((pm.group("pal") or "").lower(), rx.palettes[""])
        if 2 <= n <= len(pal) and not lead_runs(text):
            a, b = pm.span()
            pre = text[:a]
            lead = "" if re.search(r"\bin\s+(?:\w+\s+)?$", pre, re.I) else "in "
            return [(c, re.sub(r"\bin\s+like\s+$", "in ", pre) + lead + c + text[b:]) for c in pal[:n]], []
    return [], []


def _listed_variations(text: str, count: int | None, rx: _Rx, named: bool = False) -> list[tuple[str, str]]:
    """One (label, text) per listed variation, from the first list that lists two or more. ``named``: only
    lists a colour word opens ("colourways:")."""
    for run in lead_runs(text):
        if named and not run.named:
            continue
        run = _without_noun_adjective(text, run, rx)
        if (
            rx.list_not_variants.match(text, run.end)
            or _one_pattern(text, run, rx)
            or _modifies_noun(text, run.end, rx)
            or _one_blend(text, run, count, rx)
        ):
            continue
        items = run_items(text, run)
        if len(items) >= 2:
            return [(i, with_item(text, run, _spelled(i, p))) for i, p in zip(items, run.items, strict=True)]
    if named:
        return []
    for run in bare_runs(text):
        if rx.list_bare_tail.match(text, run.end) and not _one_pattern(text, run, rx):
            items = run_items(text, run)
            if len(items) >= 2:
                return [(i, with_item(text, run, i)) for i in items]
    return []


_SETTING_NOUN = re.compile(r"\s+(?:background|backdrop|surface|table|floor|wall|sky|light|lighting)s?\b", re.I)


def _without_noun_adjective(text: str, run: Run, rx: _Rx) -> Run:
    """ "in navy / forest green / #e07b39, white background": the list ends before the comma whose colour
    describes the noun after it (the background), not one more sneaker."""
    if len(run.items) < 3 or not _SETTING_NOUN.match(text, run.end):
        return run
    gap = text[run.items[-2].end : run.items[-1].start]
    if "," in gap and not re.search(r"\b(?:and|or)\b", gap, re.I):
        return Run(items=run.items[:-1], lead=run.lead, named=run.named)
    return run


def _spelled(item: str, phrase: Phrase) -> str:
    """How a prompt names a listed colour: an everyday word gets "colour" ("slate colour", "forest colour"),
    so that a picture model paints the colour and not a forest."""
    if phrase.kind == "colour" and not phrase.sure and len(item.split()) == 1:
        return f"{item} colour"
    return item


def _one_pattern(text: str, run: Run, rx: _Rx) -> bool:
    """ "in red and white stripes", "navy and cream gingham": the colours of one pattern, not two images."""
    last = run.items[-1]
    if len(run.items) < 2 or not last.colour or last.colour[1] == last.end:
        return False
    if any(p.colour is None or p.colour[1] < p.end for p in run.items[:-1]):
        return False  # "in red stripes or blue stripes": a pattern each
    return rx.list_not_variants.match(text, last.colour[1]) is not None


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
    return not is_variant(word)


def _one_blend(text: str, run: Run, count: int | None, rx: _Rx) -> bool:
    """ "a sunset in orange and pink" is one sunset in two colours; "our mug in red and blue", "a dragon in red
    or gold", "the same fox in red and in blue" and "2 dragons in red and gold" are one image per colour."""
    if run.named or count or rx.product.search(text) or re.search(r"\bthe\s+same\b", text, re.I):
        return False
    if _OWNER.search(text[: run.lead]) or re.match(r"\W*(?:this|these)\b", text, re.I):
        return False  # "our duvet cover in dusty rose and sage": one thing of ours, shown in each colour
    if any(p.kind != "colour" or (p.colour and p.colour[1] < p.end) for p in run.items):
        return False  # "in emerald velvet and mustard velvet", "in leather or suede": one image each
    listed = text[run.start : run.end]
    if re.search(r"\bor\b|/|\bvs\b|\bversus\b|\b(?:in|at|during)\s", listed, re.I):
        return False
    return not rx.scene_run.search(f"in {listed}")


def run_items(text: str, run: Run) -> list[str]:
    """The variations of a list as each image will name them. A material said once goes with every colour
    ("in black and tan leather": black leather, tan leather); "in black and white" is one two-tone look."""
    items = [text[p.start : p.end] for p in run.items]
    first, last = run.items[0], run.items[-1]
    if (
        len(items) == 2
        and sorted(i.lower() for i in items) == ["black", "white"]
        and re.fullmatch(r"\s*(?:and|&)\s*", text[first.end : last.start], re.I)
    ):
        return [text[run.start : run.end]]
    bare = all(p.kind == "colour" and p.colour and p.colour[1] == p.end for p in run.items[:-1])
    if len(items) >= 2 and bare and last.kind == "colour" and last.colour and last.colour[1] < last.end:
        material = text[last.colour[1] : last.end].strip(" -")
        items = [f"{i} {material}" for i in items[:-1]] + [items[-1]]
    return items


def with_item(text: str, run: Run, item: str) -> str:
    """``text`` with the list ``run`` replaced by one of its variations. A list a colour word opens
    ("beanie colourways: heather grey / mustard") becomes "beanie in heather grey"."""
    if not run.named:
        return text[: run.start] + item + text[run.end :]
    counts = _alt(list(_rx().count_words))
    head = re.sub(rf"(?:[\s,:;]|\b(?:\d+|{counts})\b)*$", "", text[: run.lead], flags=re.I)
    head = re.sub(r"\b(?:in|with|and|available)\s*$", "", head, flags=re.I).rstrip(" ,:;")
    tail = text[run.end :]
    if not head:  # "colourways: navy, sand - for the sneaker"
        mt = re.match(r"\s*(?:[,:;\u2013\u2014-]\s*)?(?:for|of|on)\s+(?P<what>[^,.;!?]+)(?P<rest>.*)$", tail, re.I)
        if not mt:
            return f"{item}{tail}"
        head, tail = mt.group("what").strip(), mt.group("rest")
    return f"{head} in {item}{tail}"


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


def _no_symbols(text: str) -> str:
    """Emoji and other pictographs out ("this cap in sage 🙏" -> "this cap in sage")."""
    return "".join(
        " " if unicodedata.category(ch) in ("So", "Sk", "Co", "Cs") or ch in "\u200d\ufe0f" else ch for ch in text
    )


def clean_subject(text: str) -> tuple[str, list[str]]:
    """The subject of a request, without chat fluff, counts and format words; plus the "no X" phrases."""
    negatives = [mt.group("what").strip() for mt in _NEGATIVE.finditer(text)]
    s = _NEGATIVE.sub("", text)
    s = _SEED.sub("", s)
    s = _EACH.sub("", s)
    s = _ASPECT_TAG_INLINE.sub("", s)
    for _ in range(3):
        s = _ASPECT_TAG.sub("", s)
    s = re.sub(r"[!?]+", " ", _no_symbols(s))
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
    s = re.sub(r"\s+but\s+(?=(?:in|into)\b)", " ", s, flags=re.I)  # "this hoodie but in maroon"
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
