"""The word lists and patterns the offline rewriter reads requests with, and the lists of variations it
finds in them: colour phrases from :mod:`chatcanvas.colours` (with their finish or material), materials,
seasons and times of day, listed with commas, "and in", "or", slashes or after "colourways:"."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from chatcanvas import prompts
from chatcanvas.types import Aspect

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
    material_re: re.Pattern[str]  # a material, finish or pattern: "velvet", "tan leather"'s "leather"
    finish_re: re.Pattern[str]  # a finish word in front of a colour: "glossy red", "metallic silver"
    scene_re: re.Pattern[str]  # a season or time of day
    scene_run: re.Pattern[str]
    sep: str
    list_sep: re.Pattern[str]  # between two listed variations: ", ", " and in ", " / ", ", or "
    list_lead: re.Pattern[str]  # what opens a list: "in", "colourways:", "in shades of"
    list_bare_tail: re.Pattern[str]  # what follows a list without "in": "red and blue mugs"
    list_not_variants: re.Pattern[str]  # "in red and white stripes": one pattern, not two images
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
    material = rf"(?<![\w-])(?:{_alt(lx['materials'])})(?![\w-])"
    scene = rf"(?<![\w-])(?:{_alt(lx['scene_variants'])})(?![\w-])"
    sep = (
        r"\s*(?:,\s*(?:and|or|&|plus)?|/|&|\+|\band\b|\bor\b|\bplus\b|\bvs\.?|\bversus\b)\s*"
        r"(?:(?:also\s+)?(?:in|at|during)\s+(?:the\s+)?)?"
    )
    list_sep = re.compile(
        r"\s*(?:,\s*(?:(?:and|or|plus)\b|&)?|/|\||&|\+|\b(?:and|or|plus|vs\.?|versus)\b)\s*"
        r"(?:(?:also|maybe|perhaps|then|even)\s+)?(?:(?:in|at|during)\s+(?:the\s+)?)?",
        re.I,
    )
    shades = r"(?:colou?rs?|colou?rways?|shades?|tones?|finish(?:es)?)"
    list_lead = re.compile(
        rf"(?<![\w-])(?:(?:in|into|colou?red|available\s+in)\s+(?:(?:the|some)\s+)?(?:{shades}(?:\s+of)?\s*:?\s*)?"
        rf"|colou?r(?:s|ways?)?(?:\s+(?:options?|choices?))?\s*(?::\s*|\s+(?:of\s+)?))",
        re.I,
    )
    list_not_variants = re.compile(
        r"\s*(?:stripes?|striped|pattern|patterned|checks?|checked|plaid|polka|gradient|two-tone|tones?|"
        r"colou?r\s*scheme|palette|tie-dye|camo|swirls?|marble|marbled|ombre|combo|combination|gingham|tartan|"
        r"checkered|houndstooth|paisley|herringbone|pinstripes?|florals?|leopard|rainbow)(?![\w-])",
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
    list_bare_tail = re.compile(
        rf"\s+(?:\w+\s+)?{plural}\b"
        rf"|\s+(?:for|of)\s+(?:{owners})\s+(?:[\w-]+\s+){{0,2}}?(?:{products})(?![\w-])",
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
        material_re=re.compile(material, re.I),
        finish_re=re.compile(rf"(?<![\w-])(?:{_alt(lx['finishes'])})[ -]+", re.I),
        scene_re=re.compile(scene, re.I),
        scene_run=scene_run,
        sep=sep,
        list_sep=list_sep,
        list_lead=list_lead,
        list_bare_tail=list_bare_tail,
        list_not_variants=list_not_variants,
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
    r"|lemme\s+see\s+|i'?m\s+looking\s+for\s+|(?:how|what)\s+about\s+)?"
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


# ---------------------------------------------------------------- listed variations: colour phrases and lists

PhraseKind = Literal["colour", "material", "scene"]


@dataclass(frozen=True)
class Phrase:
    """One variation a message can list: a colour phrase (with its finish or material: "glossy red",
    "emerald velvet", "#e07b39"), a material or pattern ("suede"), or a season or time of day."""

    start: int
    end: int
    kind: PhraseKind
    colour: tuple[int, int] | None = None  # the colour words' span inside a colour phrase
    sure: bool = True  # False: a colour only in a list ("slate", "forest": everyday words elsewhere)


@dataclass(frozen=True)
class Run:
    """Variations listed together: "navy, forest green and mustard yellow", "cognac brown and in jet black".

    ``lead``: where the words that open the list start ("in", "colourways:"), else the first item's start;
    ``named``: the list was opened by a colour word ("colourways:", "in colours:", "in shades of").
    """

    items: tuple[Phrase, ...]
    lead: int
    named: bool = False

    @property
    def start(self) -> int:
        return self.items[0].start

    @property
    def end(self) -> int:
        return self.items[-1].end


_LIST_WORD = re.compile(r"[^\W\d_][\w'\u2019]*(?:-[^\W\d_][\w'\u2019]*)*")
_WORD_GAP = re.compile(r"[ \t]+|[ \t]*-[ \t]*")
_NOT_A_LISTED_COLOUR = frozenset(
    "a an the and or in on at of with for to by from as each both one two three please pls plz thanks thx "
    "version versions image images photo photos pic pics style".split()
)


@cache
def _free_colours(text: str) -> dict[int, tuple[int, int]]:
    """Colour phrases in free text by start: (end, end of the colour words). Adjacent names join into one
    phrase ("cognac brown", "navy blue-grey")."""
    from chatcanvas.colours import find_colour_phrases

    spans = [(a, b) for a, b, _ in find_colour_phrases(text)]
    out: dict[int, tuple[int, int]] = {}
    i = 0
    while i < len(spans):
        a, b = spans[i]
        while i + 1 < len(spans) and _WORD_GAP.fullmatch(text[b : spans[i + 1][0]]):
            i += 1
            b = spans[i][1]
        out[a] = (b, b)
        i += 1
    return out


def _listed_colour(text: str, pos: int, named: bool) -> int | None:
    """The end of the longest colour name at ``pos`` that :func:`chatcanvas.colours.resolve_colour` takes
    ("forest", "slate"); in a list opened by "colourways:" (``named``) any one plain word is a colour."""
    from chatcanvas.colours import resolve_colour

    words: list[re.Match[str]] = []
    at = pos
    while len(words) < 5:
        mt = _LIST_WORD.match(text, at)
        if not mt:
            break
        words.append(mt)
        gap = _WORD_GAP.match(text, mt.end())
        if not gap:
            break
        at = gap.end()
    for mt in reversed(words):
        if resolve_colour(text[pos : mt.end()]) is not None:
            return mt.end()
    if named and words and words[0].group(0).lower() not in _NOT_A_LISTED_COLOUR:
        after = text[words[0].end() :]
        if not after.strip() or _rx().list_sep.match(after) or re.match(r"\s*[.;!?)]", after):
            return words[0].end()
    return None


def phrase_at(text: str, pos: int, listed: bool = True, named: bool = False) -> Phrase | None:
    """The variation phrase that starts at ``pos``, if any. ``listed``: ``pos`` is a place in a list, where
    everyday colour words count too ("in seafoam, coral and slate")."""
    rx = _rx()
    start = pos
    fm = rx.finish_re.match(text, pos)
    finished = rx.material_re.match(text, fm.end()) if fm else None
    if finished and pos not in _free_colours(text):  # "brushed brass", "polished chrome"
        return Phrase(pos, finished.end(), "material")
    if fm and (pos in _free_colours(text) or _listed_colour(text, fm.end(), named) is None):
        fm = None  # "matte black" is a colour name itself; "glossy" alone is no colour
    colour_at = fm.end() if fm else pos
    free = _free_colours(text).get(colour_at)
    end: int | None = free[0] if free else None
    sure = free is not None
    if listed:
        other = _listed_colour(text, colour_at, named)
        if other is not None and (end is None or other > end):
            end, sure = other, bool(fm)
    scene = rx.scene_re.match(text, pos)
    material = rx.material_re.match(text, pos)
    if scene and (end is None or scene.end() >= end):
        return Phrase(pos, scene.end(), "scene")
    if material and (end is None or material.end() > end or (material.end() == end and not sure)):
        return Phrase(pos, material.end(), "material")
    if end is None:
        return None
    colour = (colour_at, end)
    after = re.match(r"[ -]+", text[end:])
    if after:
        mm = rx.material_re.match(text, end + after.end())
        if mm:  # "emerald velvet", "tan leather": one variation
            end, sure = mm.end(), True
    return Phrase(start, end, "colour", colour, sure or bool(fm))


def parse_run(text: str, pos: int, lead: int | None = None, named: bool = False) -> Run | None:
    """The list of variations that starts at ``pos`` ("navy, forest green and mustard yellow")."""
    rx = _rx()
    first = phrase_at(text, pos, named=named)
    if first is None:
        return None
    items = [first]
    while True:
        sep = rx.list_sep.match(text, items[-1].end)
        if not sep or sep.end() == items[-1].end:
            break
        nxt = phrase_at(text, sep.end(), named=named)
        if nxt is None:
            break
        items.append(nxt)
    if any(p.kind == "colour" and p.sure for p in items):
        # among colours a word that is a colour and a material is the colour: "seafoam, coral and slate"
        from chatcanvas.colours import resolve_colour

        items = [
            Phrase(p.start, p.end, "colour", (p.start, p.end), sure=False)
            if p.kind == "material" and resolve_colour(text[p.start : p.end]) is not None
            else p
            for p in items
        ]
    return Run(tuple(items), pos if lead is None else lead, named)


@cache
def lead_runs(text: str) -> tuple[Run, ...]:
    """Lists opened by "in", "into", "colourways:", "available in", "in shades of" (a single item counts)."""
    rx = _rx()
    out: list[Run] = []
    for mt in rx.list_lead.finditer(text):
        if out and mt.start() < out[-1].end:
            continue
        named = bool(re.search(r"colou?r|shades?|tones?", mt.group(0), re.I))
        run = parse_run(text, mt.end(), mt.start(), named)
        if run and (named or any(p.sure for p in run.items)):
            out.append(run)
    return tuple(out)


@cache
def bare_runs(text: str) -> tuple[Run, ...]:
    """Lists of two or more colours that no "in" opens ("red and blue mugs", "teal / sand totes")."""
    inside = [(r.lead, r.end) for r in lead_runs(text)]
    out: list[Run] = []
    for start in sorted(_free_colours(text)):
        if any(a <= start < b for a, b in inside) or (out and start < out[-1].end):
            continue
        run = parse_run(text, start)
        if run and len(run.items) >= 2 and all(p.kind == "colour" for p in run.items):
            out.append(run)
    return tuple(out)


def is_variant(text: str) -> bool:
    """Is ``text`` one variation phrase and nothing else ("forest green", "tan leather", "winter")?"""
    t = text.strip()
    p = phrase_at(t, 0)
    return p is not None and p.end == len(t) and (p.sure or p.kind != "colour")


# ---------------------------------------------------------------- follow-ups

_EDIT_WORDS = re.compile(
    r"\b(?:again|instead|wider|taller|bigger|smaller|more|another|one|ones|versions?|images?|pictures?|style|format"
    r"|please|pls|plz|but|it|them|in|into|as|a|an|the|colou?r|make|same|thing|to|of|and|with|add|adding|\d+|wide"
    r"|landscape|portrait|vertical|square|tall|this|that|time|now|then|also|too|ok|okay|thanks|thank|you|thx|ty"
    r"|maybe|just|try|what|how|about|do|can|could|would|u|version|lol|haha|cool|nice|great|perfect|hmm+)\b",
    re.I,
)
# a reply that is only a colour: "navy pls", "what about burgundy?", "hmm, try forest green instead"
_COLOUR_REPLY_LEAD = re.compile(
    r"^(?:(?:ok(?:ay)?|hmm+|and|or|now|but|maybe|perhaps|also|then|so|actually|ooh|oh|nice|great|cool)\b[\s,.!]*)*"
    r"(?:(?:what|how)\s+about\s+|try\s+|go\s+(?:with|for)\s+|(?:let'?s\s+)?(?:see|do)\s+)?(?:(?:it\s+)?in\s+)?"
    r"(?:an?\s+)?",
    re.I,
)
_COLOUR_REPLY_TAIL = re.compile(
    r"(?:[\s,.!?]|\b(?:one|ones|version|versions|instead|then|too|as\s+well|please|pls|plz|thanks|thank\s+you|thx"
    r"|ty|maybe|now)\b|[^\w\s])*",
    re.I,
)
# what may stand before a product a follow-up names anew: "same sneaker", "but as a hoodie", "now the mug"
_PRODUCT_LEAD = re.compile(
    r"(?:[\s,.!]|\b(?:same|the|a|an|our|my|this|that|these|those|as|on|for|but|now|and|then|also|please|pls|ok"
    r"|okay|instead|make|do|it|them|in|try|what|how|about|same\s+thing|one)\b)*",
    re.I,
)
