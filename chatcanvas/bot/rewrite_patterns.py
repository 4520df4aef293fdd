"""The word lists and patterns the offline rewriter reads requests with."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

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
