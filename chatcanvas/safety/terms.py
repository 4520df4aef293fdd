"""Blocked terms: ``CHATCANVAS_BLOCKED_TERMS`` and the shipped safe-for-work list.

The text is normalised before matching, so the usual disguises do not get a term through:

* case and Unicode compatibility forms (NFKC: fullwidth, mathematical bold, circled letters, ligatures);
* invisible characters (zero-width spaces and joiners, soft hyphens, bidi marks, control characters)
  are removed; accents and other combining marks are dropped;
* look-alike letters from other scripts (Cyrillic ``о``, Greek ``ο``, dotless ``ı``...) become Latin;
* in a plain term each letter also matches the digits and signs people type for it
  (``0`` o, ``1`` i/l, ``3`` e, ``4`` a, ``5`` s, ``7`` t, ``@`` a, ``$`` s, ``!`` i);
* a single-word term of four letters or more also matches spelled out in letters with separators
  between every one (``z o r b l a x``, ``z.o.r.b.l.a.x``); digits are not taken there, so
  ``1 0 1 1`` in a table is not a word, and a match elsewhere must be at least half letters.

Plain terms match **whole words**, plus their plural and possessive (``zorblaxes``, ``zorblax's``),
never inside another word: ``Scunthorpe`` passes a list holding its middle four letters, and a
longer word such as ``zorblaxian`` passes ``zorblax``. For stems, write a regular expression:
``re:zorblax\\w*``. A ``re:`` rule is searched case-insensitively in the normalised text and in the
text as written.

A refusal names the rule by its place in the list (``blocked term #3``), never the term itself, so
the list stays private.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError

if TYPE_CHECKING:
    from chatcanvas.config import Settings

__all__ = [
    "SFW_TERMS_FILE",
    "TermMatch",
    "TermRule",
    "check_text",
    "find_blocked",
    "normalize",
    "parse_terms",
    "rules_for",
    "shipped_rules",
]

SFW_TERMS_FILE = Path(__file__).with_name("nsfw_terms.txt")

# Characters that render as nothing (or as a blank) and are used to split a word invisibly.
_INVISIBLE = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x034F, 0x180E}

# Letters from other scripts that look like a Latin letter (upper and lower case).
_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "А": "a", "а": "a", "В": "b", "Е": "e", "е": "e", "К": "k", "к": "k", "М": "m", "Н": "h",
        "О": "o", "о": "o", "Р": "p", "р": "p", "С": "c", "с": "c", "Т": "t", "У": "y", "у": "y",
        "Х": "x", "х": "x", "Ѕ": "s", "ѕ": "s", "І": "i", "і": "i", "Ј": "j", "ј": "j", "ԁ": "d",
        "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l", "Ӏ": "l", "ѵ": "v",
        # Greek
        "Α": "a", "α": "a", "Β": "b", "Ε": "e", "ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "ι": "i",
        "Κ": "k", "κ": "k", "Μ": "m", "Ν": "n", "ν": "v", "Ο": "o", "ο": "o", "Ρ": "p", "ρ": "p",
        "Τ": "t", "τ": "t", "Υ": "y", "υ": "u", "Χ": "x", "χ": "x", "ϲ": "c", "ϳ": "j",
        # Latin letters that are not a base letter plus a mark
        "ı": "i", "ɩ": "i", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "ħ": "h",
        "ŧ": "t", "ɑ": "a", "ɡ": "g", "ʏ": "y",
        # apostrophes, so "zorblax’s" is a possessive
        "’": "'", "‘": "'", "ʼ": "'", "`": "'",
    }
)

# What people type for a letter. Only letters of a plain term take these; the text is not rewritten,
# so a digit in ordinary text ("size 10", "4 mugs") never turns into a letter.
_LEET = {"a": "4@", "b": "8", "e": "3", "g": "9", "i": "1!|", "l": "1|", "o": "0", "s": "5$", "t": "7"}

_WORD_BEFORE = r"(?<![^\W_])"  # not right after a letter or digit
_WORD_AFTER = r"(?![^\W_])"  # not right before a letter or digit
_SUFFIX = r"(?:'?s|es)?"  # plural / possessive
_SPACER = r"[\s.\-_*·•,/~+]+"  # between the letters of a spelled-out word
_GAP = r"[\W_]+"  # between the words of a phrase


def normalize(text: str) -> str:
    """``text`` folded for matching: NFKC, no invisible characters or marks, Latin look-alikes, casefold."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or ord(ch) in _INVISIBLE:
            continue
        if cat == "Cc":
            if ch in "\t\n\r\x0b\x0c":
                out.append(" ")
            continue
        out.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(out))
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", bare).translate(_HOMOGLYPHS).casefold()


@dataclass(frozen=True)
class TermRule:
    """One blocked term. ``name`` goes to the audit log, ``label`` into the refusal; neither holds the term."""

    name: str  # "blocked_terms#3", "sfw_terms#12"
    label: str  # "blocked term #3", "blocked term (safe-for-work list) #12"
    patterns: tuple[re.Pattern[str], ...] = field(repr=False)
    regex: bool = False  # a "re:" rule: also searched in the text as written

    def search(self, raw: str, folded: str) -> bool:
        if self.regex:
            return any(p.search(folded) or p.search(raw) for p in self.patterns)
        return any(_mostly_letters(mt.group(0)) for p in self.patterns for mt in p.finditer(folded))


def _mostly_letters(found: str) -> bool:
    """A match of a plain term written at least half in letters: "z0rb1ax" yes, "1011" (for "loli") no."""
    letters = sum(ch.isalpha() for ch in found)
    others = sum(not ch.isalpha() and not ch.isspace() and ch not in "'" for ch in found)
    return letters >= 1 and letters >= others


@dataclass(frozen=True)
class TermMatch:
    rule: TermRule

    @property
    def name(self) -> str:
        """The rule's name for the audit log and ``Refused.rule``."""
        return self.rule.name

    @property
    def label(self) -> str:
        return self.rule.label

    @property
    def reason(self) -> str:
        """The refusal shown to the user: says "blocked term" and which one, never the term."""
        return m.BLOCKED_TERM.format(label=self.rule.label)


def _letter(ch: str) -> str:
    return "[" + "".join(re.escape(c) for c in ch + _LEET.get(ch, "")) + "]"


def _plain_patterns(term: str) -> tuple[re.Pattern[str], ...]:
    words = normalize(term).split()
    if not words:
        return ()
    body = _GAP.join("".join(_letter(c) for c in w) for w in words)
    patterns = [re.compile(_WORD_BEFORE + body + _SUFFIX + _WORD_AFTER)]
    if len(words) == 1 and len(words[0]) >= 4 and words[0].isalpha():
        spaced = _SPACER.join(re.escape(c) for c in words[0])  # letters only: "1 0 1 1" is not "loli"
        patterns.append(re.compile(_WORD_BEFORE + spaced + _WORD_AFTER))
    return tuple(patterns)


def _rule(entry: str, n: int, source: str, label: str) -> TermRule | None:
    entry = entry.strip()
    if not entry:
        return None
    name, shown = f"{source}#{n}", f"{label} #{n}"
    if entry.startswith("re:"):
        try:
            pattern = re.compile(entry[3:], re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(m.BLOCKED_TERMS_BAD_REGEX.format(label=shown, error=exc)) from None
        return TermRule(name, shown, (pattern,), regex=True)
    patterns = _plain_patterns(entry)
    return TermRule(name, shown, patterns) if patterns else None


def _entries_from_file(path: Path) -> list[str]:
    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(m.BLOCKED_TERMS_NO_FILE.format(path=path, error=exc)) from None
    return [ln for ln in lines if not ln.strip().startswith("#")]


def parse_terms(
    value: str | None, *, source: str = "blocked_terms", label: str = "blocked term"
) -> tuple[TermRule, ...]:
    """Rules from a ``CHATCANVAS_BLOCKED_TERMS`` value: a comma list, or ``@/path`` (one a line, # comments).

    Rules are numbered from 1 in list order (blank entries keep no number). A bad regular expression or
    an unreadable file raises :class:`ConfigError` naming the variable.
    """
    if not value or not value.strip():
        return ()
    value = value.strip()
    entries = _entries_from_file(Path(value[1:].strip())) if value.startswith("@") else value.split(",")
    rules: list[TermRule] = []
    for entry in entries:
        rule = _rule(entry, len(rules) + 1, source, label)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


@lru_cache(maxsize=1)
def shipped_rules() -> tuple[TermRule, ...]:
    """The shipped safe-for-work list (``nsfw_terms.txt`` in this package)."""
    return parse_terms(
        "@" + str(SFW_TERMS_FILE), source="sfw_terms", label="blocked term (safe-for-work list)"
    )


@lru_cache(maxsize=16)
def _configured(value: str, mtime: float) -> tuple[TermRule, ...]:
    return parse_terms(value)


def _file_mtime(value: str) -> float:
    if not value.strip().startswith("@"):
        return 0.0
    try:
        return Path(value.strip()[1:].strip()).expanduser().stat().st_mtime
    except OSError:
        return -1.0  # parse_terms reports the file


def rules_for(settings: Settings, *, nsfw_allowed: bool = False) -> tuple[TermRule, ...]:
    """The rules that apply: the configured terms, then the shipped list unless ``nsfw_allowed``.

    ``nsfw_allowed`` is the policy's decision (e.g. ``settings.allow_nsfw_channels and where.nsfw``).
    Parsed once per value; a term file is read again when it changes.
    """
    value = settings.blocked_terms or ""
    rules = _configured(value, _file_mtime(value)) if value.strip() else ()
    if settings.sfw_terms and not nsfw_allowed:
        rules = rules + shipped_rules()
    return rules


def find_blocked(text: str, rules: Sequence[TermRule]) -> TermMatch | None:
    """The first rule ``text`` breaks, or ``None``."""
    if not text or not rules:
        return None
    folded = normalize(text)
    for rule in rules:
        if rule.search(text, folded):
            return TermMatch(rule)
    return None


def check_text(text: str, settings: Settings, *, nsfw_allowed: bool = False) -> TermMatch | None:
    """``find_blocked(text, rules_for(settings, nsfw_allowed=...))``."""
    return find_blocked(text, rules_for(settings, nsfw_allowed=nsfw_allowed))
