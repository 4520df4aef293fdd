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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from chatcanvas import messages as m
from chatcanvas import prompts
from chatcanvas.bot.rewriter import Plan
from chatcanvas.prompts import SD_TOKEN_LIMIT, Family, StylePreset
from chatcanvas.types import MAX_SEED, Aspect, ChatTurn, ImageSpec, Limits

TokenCounter = Callable[[str], "int | None"]

DEFAULT_NEGATIVE = "blurry, lowres, deformed, watermark, text, jpeg artifacts"
SD_QUALITY = "highly detailed, sharp focus"


# ---------------------------------------------------------------- regular expressions from the lexicon


def _alt(words: list[str] | tuple[str, ...]) -> str:
    """An alternation matching whole words, longest first."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def _bounded(alt: str) -> str:
    return rf"(?<![\w-])(?:{alt})(?![\w-])"


@dataclass(frozen=True)
class _Rx:
    colour: str
    colour_re: re.Pattern[str]
    variant_re: re.Pattern[
        str
    ]  # one listed variation: a colour, a material or pattern, a season or time of day
    scene_run: re.Pattern[str]
    sep: str
    run_in: re.Pattern[str]
    run_bare: re.Pattern[str]
    count: re.Pattern[str]
    count_words: dict[str, int]
    image_nouns: frozenset[str]
    palette: re.Pattern[str]
    palettes: dict[str, list[str]]
    style_run: re.Pattern[str]
    style_triggers: dict[str, str]  # trigger -> preset name
    style_re: re.Pattern[str]
    product: re.Pattern[str]
    owned_product: re.Pattern[str]
    aspects: list[tuple[str, Aspect, re.Pattern[str]]]  # (tier, aspect, pattern)


ASPECT_TIERS = ("explicit", "implied", "weak")


@cache
def _rx() -> _Rx:
    lx = prompts.lexicon()
    mods = _alt(lx["colour_modifiers"])
    colour = rf"(?<![\w-])(?:(?:{mods})[ -])*(?:{_alt(lx['colours'])})(?:-?ish)?(?![\w-])"
    material = rf"(?<![\w-])(?:{_alt(lx['materials'])})(?![\w-])"
    scene = rf"(?<![\w-])(?:{_alt(lx['scene_variants'])})(?![\w-])"
    variant = rf"(?:{colour}|{material}|{scene})"
    sep = (
        r"\s*(?:,\s*(?:and|or|&|plus)?|/|&|\+|\band\b|\bor\b|\bplus\b|\bvs\.?|\bversus\b)\s*"
        r"(?:(?:also\s+)?(?:in|at|during)\s+(?:the\s+)?)?"
    )
    not_pattern = (
        r"(?!\s*(?:stripes?|striped|pattern|patterned|checks?|checked|plaid|polka|gradient|two-tone|tones?|"
    )
    not_pattern += r"colou?r\s*scheme|palette|tie-dye|camo|swirls?|marble|marbled|ombre|combo|combination))"
    run = rf"(?P<run>{variant}(?:{sep}{variant})*)"
    # no "a"/"an" here: "a girl in a red and white dress" is one dress in two colours
    run_in = re.compile(
        rf"(?<![\w-])(?:in|into|colou?r(?:s|ways?)?\s*:?|colou?red|available\s+in)\s+"
        rf"(?:(?:the|some)\s+)?"
        rf"(?:(?:colou?rs?|colou?rways?|shades?|finish(?:es)?)\s+(?:of\s+)?)?{run}{not_pattern}",
        re.I,
    )
    plural = (
        r"(?:versions?|variants?|variations?|options?|colou?rways?|ones|images|pictures|pics|mugs?|shirts?"
    )
    plural += (
        r"|t-shirts?|tees|hoodies?|bags?|totes?|caps?|hats?|sneakers?|shoes|bottles?|products?|mockups?)"
    )
    products = _alt(lx["product_nouns"])
    owners = _alt(lx["owner_words"])
    run_bare = re.compile(
        rf"(?P<run>{colour}(?:{sep}{colour})+)(?:\s+(?:\w+\s+)?{plural}\b"
        rf"|\s+(?:for|of)\s+(?:{owners})\s+(?:[\w-]+\s+){{0,2}}?(?:{products})(?![\w-]))",
        re.I,
    )
    # "the same street at morning, noon and night", "a cabin, morning vs night"
    scene_run = re.compile(
        rf"(?:(?<![\w-])(?:in|at|during)\s+(?:the\s+)?|(?<=[,:;\u2013\u2014-])\s*|^)"
        rf"(?P<run>{scene}(?:{sep}{scene})+)(?=\s*(?:[,.;:!?\u2013\u2014-]|$|\b(?:please|pls|plz|x\s?\d|\d)\b))",
        re.I,
    )
    count_words: dict[str, int] = {k: int(v) for k, v in lx["count_words"].items()}
    count = re.compile(
        rf"(?<![\w:/.×-])(?P<n>\d{{1,3}}|{_alt(list(count_words))})(?![\w:/.×-]|\s*(?:px|%|:|x\s*\d))", re.I
    )
    palettes: dict[str, list[str]] = lx["palettes"]
    named = _alt([p for p in palettes if p])
    palette = re.compile(
        rf"(?P<n>\d{{1,2}}|{_alt(list(count_words))})\s+(?:(?:different|distinct|other|nice|cool|cute)\s+)?"
        rf"(?:(?P<pal>{named})(?:\s+(?:season|tone|toned|vibe))?\s+)?(?:colou?r(?:s|ways)|shades|tones)\b",
        re.I,
    )
    triggers: dict[str, str] = {}
    for preset in prompts.styles().values():
        for t in (preset.name, *preset.triggers):
            triggers.setdefault(t.lower(), preset.name)
    style_alt = _alt(list(triggers))
    # "mockups", "sketches" and "anime-style" name a style as well as "mockup", "sketch", "anime"
    style_re = re.compile(rf"(?<![\w-])(?:{style_alt})s?(?=-styled?\b|(?![\w-]))", re.I)
    style_run = re.compile(
        rf"(?<![\w-])(?:in|as)\s+(?:an?\s+)?(?P<run>(?:{style_alt})(?:\s+style)?(?:{sep}(?:an?\s+)?(?:{style_alt}))+)"
        rf"(?:\s+(?:styles?|versions?))?(?![\w-])",
        re.I,
    )
    product = re.compile(_bounded(products), re.I)
    owned_product = re.compile(
        rf"(?<![\w-])(?:{owners})\s+(?:[\w-]+\s+){{0,3}}?(?:{products})(?![\w-])", re.I
    )
    aspects: list[tuple[str, Aspect, re.Pattern[str]]] = []
    for tier in ASPECT_TIERS:
        for name, words in lx["aspects"].get(tier, {}).items():
            aspects.append((tier, Aspect(name), re.compile(rf"(?<![\w-])(?:{_alt(words)})s?(?![\w-])", re.I)))
    return _Rx(
        colour=colour,
        colour_re=re.compile(colour, re.I),
        variant_re=re.compile(variant, re.I),
        scene_run=scene_run,
        sep=sep,
        run_in=run_in,
        run_bare=run_bare,
        count=count,
        count_words=count_words,
        image_nouns=frozenset(lx["image_nouns"]),
        palette=palette,
        palettes=palettes,
        style_run=style_run,
        style_triggers=triggers,
        style_re=style_re,
        product=product,
        owned_product=owned_product,
        aspects=aspects,
    )


# ---------------------------------------------------------------- reading a message

_RATIO = re.compile(r"(?<![\w.:])(\d{1,2})\s*:\s*(\d{1,2})(?![\w.:])")
_SIZE = re.compile(r"(?<![\w.])(\d{2,5})\s*[x×*]\s*(\d{2,5})(?:\s*px)?(?![\w.])", re.I)
_SEED = re.compile(r"\bseed\s*[:=#]?\s*(\d{1,10})\b", re.I)
_TIMES = re.compile(r"(?<![\w-])(?:x\s?(\d{1,2})|(\d{1,2})\s?x|(\d{1,2})\s+times)(?![\w-]|\s*\d)", re.I)
_EACH = re.compile(r"\b(?:of\s+)?each\b|\bper\s+(?:colou?r|variation|style)\b|\beach\s+in\b", re.I)
_NEGATIVE = re.compile(
    r"(?:^|(?<=[,;.(])|(?<=\s))(?:no|without|w/o|minus)\s+(?P<what>(?:any\s+)?[\w'-]+(?:\s+[\w'-]+){0,2}?)"
    r"(?=\s*(?:[,;.)!]|$|\s+(?:and|on|in|with|at|but|please|pls)\b))",
    re.I,
)
_PREFIX = re.compile(
    r"^(?:(?:hey|hi|hello|yo|ok|okay|so|pls|please)\b[,!.]?\s*)*"
    r"(?:(?:can|could|would|will)\s+(?:you|u|ya)\s+(?:please\s+|pls\s+)?(?:just\s+)?)?"
    r"(?:(?:i|we)\s*(?:'d|would)?\s*(?:want|like|need|love)\s+(?:to\s+(?:see|have|get)\s+)?|let'?s\s+(?:see|get|have)\s+"
    r"|lemme\s+see\s+|i'?m\s+looking\s+for\s+|how\s+about\s+)?"
    r"(?:please\s+|pls\s+)?"
    r"(?:(?:make|create|generate|draw|paint|render|design|show|give|produce|do|sketch|imagine|visuali[sz]e|whip\s+up"
    r"|come\s+up\s+with|mock\s+up|gimme|send)\b(?:\s+(?:me|us))?\s*)?"
    r"(?:(?:an?\s+)?(?:image|picture|pic|photo)\s+of\s+(?=an?\b|the\b|some\b|our\b|my\b))?",
    re.I,
)
_FILLER = re.compile(
    r"\b(?:please|pls|plz|thanks|thank you|thx|like|kinda|sorta|lol|haha|just|maybe)\b[,!]?", re.I
)
_OWNER = re.compile(r"(?<![\w-])(?:our|my|your|their)\s+", re.I)
_DEICTIC = re.compile(r"^(?:this|that|these|those|the\s+same)\s+", re.I)
_GENERIC = re.compile(
    r"(?<![\w-])(?:different\s+|distinct\s+|unique\s+|more\s+)?(?:images?|pictures?|pics|versions?|variations?|variants?"
    r"|options?|takes?|alternatives?|ideas?|concepts?)\s*(?:of|for|with|showing|:)?\s+",
    re.I,
)
_ASPECT_TAG = re.compile(
    r"(?:,\s*|\s+)(?:in\s+)?(?:(?:wide|widescreen|landscape|portrait|vertical|horizontal|square|tall)"
    r"(?:\s+(?:format|orientation|mode|aspect(?:\s+ratio)?|ratio|size|crop|shape))?|\d{1,2}\s*:\s*\d{1,2}"
    r"(?:\s+(?:format|aspect(?:\s+ratio)?|ratio))?|\d{2,5}\s*[x×*]\s*\d{2,5}(?:\s*px)?)\s*(?=[,.;!]|$)",
    re.I,
)
_ASPECT_TAG_INLINE = re.compile(
    r"\b(?:in\s+)?(?:wide|widescreen|landscape|portrait|vertical|horizontal|square)\s+(?:format|orientation|mode)\b"
    r"|\b(?:at|in)\s+\d{1,2}\s*:\s*\d{1,2}\b|\b\d{2,5}\s*[x×]\s*\d{2,5}(?:\s*px)?\b",
    re.I,
)
_SEP_SPLIT = re.compile(
    r"\s*(?:,\s*(?:and|or|&)?\s*|;\s*|\s+and\s+|\s+or\s+|\s*&\s*|\s+plus\s+|\s*/\s*)\s*", re.I
)
_COLON_LIST = re.compile(
    r"^(?P<head>.*?(?:images?|pictures?|pics|versions?|variations?|variants?|options?|shots?|photos?|designs?"
    r"|ideas?|concepts?|scenes?|ones))\s*[:\u2013\u2014-]\s*(?P<list>.+)$",
    re.I,
)
_BARE_IMAGE = re.compile(
    r"|(?:images?|pictures?|pics?|photos?|versions?|variations?|variants?|options?|ones|ideas?|takes?|shots?"
    r"|alternatives?|different|more|of|x)",
    re.I,
)


def _singular(word: str) -> str:
    return re.sub(r"(?:(?<=[sc]h)|(?<=[sxz]))es$|(?<![su])s$", "", word)


_ANY_COLON = re.compile(r"^(?P<head>.+?)\s*(?::|\s[\u2013\u2014-]\s)\s*(?P<list>.+)$")
_ONE_PREP = r"with|in|of|as|on|at|showing|where|wearing|holding"
_THING_WORD = (
    r"(?!(?:and|or|as|in|on|at|with|for|of|to|from|by|each|separate|separately|please|pls)\b)[\w'-]+"
)
_THING = rf"(?:an?|one)\s+{_THING_WORD}(?:\s+{_THING_WORD}){{0,2}}"
_THING_LIST = re.compile(
    rf"(?<![\w-])(?P<run>{_THING}(?:\s*(?:,\s*(?:and|or|&|plus)?|\band\b|\bor\b|&|\bplus\b)\s*{_THING})+)",
    re.I,
)
_ONE_EACH = re.compile(
    r"(?<![\w-])one\s+(?:with|in|of|as|showing|where|that|for|at|on|during|wearing|holding)\b", re.I
)
_CLAUSE_SPLIT = re.compile(r"\s*(?:,|;)?\s*\band\b\s+(?=(?:a|an|one|the|another|our|then)\b)|\s*;\s*", re.I)
_GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|yo|hiya|howdy|good\s+(?:morning|afternoon|evening)|thanks|thank\s+you|thx|ty|ok|okay|cool"
    r"|nice|great|awesome|lol|bye|goodbye)(?:\s+(?:there|all|everyone|bot|chatcanvas|so\s+much|a\s+lot))?\W*$",
    re.I,
)
_HELP = re.compile(
    r"^\W*(?:help|\?+|what\s+can\s+you\s+do|how\s+do(?:es)?\s+(?:this|it|you)\s+work|commands)\W*$", re.I
)
_SETTINGS = re.compile(
    r"\b(?:settings|limits?|which\s+model|what\s+model|max(?:imum)?\s+(?:size|images|count)|configuration|config)\b"
    r"(?!.*\b(?:of|showing)\b)",
    re.I,
)
_EDIT = re.compile(
    r"^\W*(?:now|again|same|but|and|also|instead|then|ok\s+now|okay\s+now|this\s+time|another|one\s+more|more|redo"
    r"|retry|try\s+again|do\s+it|change|turn|swap|switch|wider|taller|narrower|bigger|smaller|darker|lighter"
    r"|brighter|make\s+(?:it|them|that|this|those|these|the\s+\w+|both|all|one)|can\s+you\s+make\s+(?:it|them)"
    r"|could\s+you\s+make\s+(?:it|them)|in\s+|as\s+an?\s+|with(?:out)?\s+|add\s+|remove\s+|no\s+)\b"
    r"|\b(?:again|instead|same\s+(?:one|thing|but|again)|another\s+one|one\s+more|more\s+of\s+(?:these|those|them)"
    r"|(?:\d{1,2}|two|three|four|five|a\s+few|a\s+couple|some)\s+more)\b",
    re.I,
)
_ONLY_EDIT = re.compile(
    r"^\W*(?:(?:now\s+|ok\s+|okay\s+)?(?:make|turn)\s+(?:it|them|that|this|those|these)\b|again\b|another\s+one\b"
    r"|one\s+more\b|same\s+(?:but|again|thing)\b|\d{1,2}\s+more\W*$|wider\W*$|taller\W*$|redo\b|try\s+again\b)",
    re.I,
)
_EDIT_LEAD = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|now|again|same|but|and|also|then|instead|this\s+time|please|pls|same\s+but|do\s+it|redo"
    r"|(?:can|could)\s+you|make\s+(?:it|them|that|this|those|these|both|all)|change\s+(?:it|them)\s+to|turn\s+(?:it|them)"
    r"(?:\s+into)?|another\s+one|one\s+more|try\s+again|(?:a\s+)?bit|(?:a\s+)?little)\b[\s,!.]*)+",
    re.I,
)


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


def rough_tokens(text: str) -> int:
    """A rough CLIP token count when no tokenizer is loaded: words, long words split, punctuation."""
    n = 0
    for tok in re.findall(r"[A-Za-z]+|\d|[^\sA-Za-z\d]", text):
        n += 1 + (len(tok) - 1) // 7 if tok.isalpha() else 1
    return n


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


def fit_size(w: int, h: int, limits: Limits) -> tuple[int, int]:
    """``w`` x ``h`` scaled down (same aspect, multiples of 8) to fit ``max_side`` and ``max_pixels``."""
    w, h = max(8, w), max(8, h)
    scale = min(1.0, limits.max_side / max(w, h), (limits.max_pixels / (w * h)) ** 0.5)
    return max(8, int(w * scale) // 8 * 8), max(8, int(h * scale) // 8 * 8)


def size_for(
    aspect: Aspect | None, ratio: float | None, size: tuple[int, int] | None, base: int, limits: Limits
) -> tuple[int | None, int | None]:
    """Width and height within the limits for an exact size, a ratio or an aspect; square: (None, None)."""
    if size:
        return fit_size(size[0], size[1], limits)
    if ratio is None:
        if aspect is None or aspect is Aspect.SQUARE:
            return None, None
        ratio = aspect.ratio
    return fit_size(int(base * ratio**0.5), int(base / ratio**0.5), limits)


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
        if last and _EDIT.search(text):
            return self._edit(text, last, family)
        if not last and _ONLY_EDIT.match(text):
            return Plan(reply=m.REWRITE_NOTHING_TO_EDIT)
        return self._new(read(text), family)

    # ------------------------------------------------------------ new requests

    def _base(self, family: Family) -> int:
        return self.base_side or (1024 if family == "dalle" else 512)

    def _new(self, req: Request, family: Family) -> Plan:
        notes: list[str] = []
        width, height = size_for(req.aspect, req.ratio, req.size, self._base(family), self.limits)
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
        colours = _colours(rest, variants=False)  # an edit recolours; "at night" is an added phrase
        new_style = find_style(rest) if rx.style_re.search(rest) else None
        aspect, size, ratio = req.aspect, req.size, req.ratio
        if re.search(r"\bwider\b", text, re.I):
            aspect = Aspect.WIDE
        elif re.search(r"\btaller\b", text, re.I):
            aspect = Aspect.TALL
        count = req.count or (1 if re.search(r"\b(?:another\s+one|one\s+more)\b", text, re.I) else None)
        negatives = [mt.group("what").strip() for mt in _NEGATIVE.finditer(rest)]
        extra = _added_phrase(rest)
        notes: list[str] = []
        specs: list[ImageSpec] = []
        variants: list[str | None] = [*colours] or [None]
        for spec in last[:1] if colours else last:
            for colour in variants:
                upd: dict[str, object] = {"seed": req.seed, "style": new_style or spec.style}
                if colour or new_style or extra:
                    subject = _subject_of(spec, family)
                    if colour:
                        subject = _recolour(subject, colour)
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
                    upd["width"], upd["height"] = size_for(aspect, ratio, size, side, self.limits)
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


_EDIT_WORDS = re.compile(
    r"\b(?:again|instead|wider|taller|bigger|smaller|more|another|one|ones|versions?|images?|pictures?|style|format"
    r"|please|pls|but|it|them|in|as|a|an|the|colou?r|make|same|thing|to|of|and|with|add|adding|\d+|wide|landscape"
    r"|portrait|vertical|square|tall|this|time|now)\b",
    re.I,
)


def _added_phrase(rest: str) -> str:
    """What an edit adds to the picture ("now with a hat" -> "with a hat"); "" if it only changes settings."""
    rx = _rx()
    s = _NEGATIVE.sub("", rest)
    for pat in (rx.colour_re, rx.style_re, _ASPECT_TAG, _ASPECT_TAG_INLINE, _SEED, rx.count):
        s = pat.sub(" ", s)
    s = re.sub(r"\s+", " ", s).strip(" ,.!")
    if not _EDIT_WORDS.sub(" ", s).strip(" ,.!") or len(s.split()) > 12:
        return ""
    s = re.sub(r"^(?:(?:and|also|but|now|in|as)\s+)+", "", s, flags=re.I)
    s = re.sub(r"^(?:add|adding)\s+", "with ", s, flags=re.I)
    return s.strip(" ,.")


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


def _recolour(subject: str, colour: str) -> str:
    """Swap the first colour in ``subject`` for ``colour``, or put the colour before the main noun."""
    rx = _rx()
    mt = rx.colour_re.search(subject)
    if mt:
        return subject[: mt.start()] + colour + subject[mt.end() :]
    art = re.match(r"^(an?|the)\s+", subject, re.I)
    if art:
        article = "a" if art.group(1).lower() == "an" and colour[:1].lower() not in "aeiou" else art.group(1)
        if art.group(1).lower() == "a" and colour[:1].lower() in "aeiou":
            article = "an"
        return f"{article} {colour} {subject[art.end() :]}"
    return f"{colour} {subject}"


def describe_limits(limits: Limits) -> str:
    styles = ", ".join(p.label.lower() for p in prompts.styles().values())
    return m.REWRITE_SETTINGS.format(
        max_count=limits.max_count,
        max_side=limits.max_side,
        max_pixels=limits.max_pixels,
        max_steps=limits.max_steps,
        styles=styles,
    )


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
