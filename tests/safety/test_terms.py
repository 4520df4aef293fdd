"""Blocked terms: disguised spellings are refused, ordinary prompts pass, the list stays private."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcanvas.config import load_settings
from chatcanvas.errors import ConfigError
from chatcanvas.safety.terms import check_text, find_blocked, normalize, parse_terms, rules_for


@pytest.fixture
def zorblax(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATCANVAS_BLOCKED_TERMS", "zorblax")
    return load_settings(data_dir=tmp_path / "data")


@pytest.mark.parametrize(
    "text",
    [
        "a ZORBLAX on a mug",
        "a zor\u200bblax on a mug",  # zero-width space
        "a zоrblax",  # Cyrillic о
        "z0rblax",
        "Zorblax.",
        "a z o r b l a x on a mug",
        "z.o.r.b.l.a.x",
        "ｚｏｒｂｌａｘ stickers",  # fullwidth
        "𝐳𝐨𝐫𝐛𝐥𝐚𝐱",  # mathematical bold
        "zörblax",  # an accent
        "ΖΟRΒLΑΧ",  # Greek capitals
        "z\u00adorb\u200dlax",  # soft hyphen, zero-width joiner
        "two zorblaxes",
        "the zorblax’s hat",
        "zorb1ax",
        "#zorblax",
        "zorblax\nplease",
    ],
)
def test_disguised_term_is_refused_naming_the_rule(zorblax, text: str) -> None:  # type: ignore[no-untyped-def]
    match = check_text(text, zorblax)
    assert match is not None, text
    assert match.name == "blocked_terms#1"
    assert "blocked term #1" in match.reason
    assert "zorblax" not in match.reason.lower() and "zorblax" not in repr(match).lower()


@pytest.mark.parametrize(
    "text",
    [
        "a red mug",
        "a classic sneaker",
        "Scunthorpe",
        "zorblaxian",  # a longer word: whole words only (documented); use re:zorblax\w* for stems
        "zorb lax",  # two separate words
        "our canvas tote in navy and forest green, studio light",
        "a mug with 0 1 2 3 4 5 written on it",
        "",
    ],
)
def test_ordinary_text_passes(zorblax, text: str) -> None:  # type: ignore[no-untyped-def]
    assert check_text(text, zorblax) is None


def test_list_numbering_regex_and_file(tmp_path: Path) -> None:
    rules = parse_terms(" mug , ,re:sn[e3]+aker\\d+ ,sun hat")
    assert [r.label for r in rules] == ["blocked term #1", "blocked term #2", "blocked term #3"]
    assert find_blocked("a SNEEAKER42 ad", rules).name == "blocked_terms#2"  # type: ignore[union-attr]
    assert find_blocked("a sun  hat", rules).name == "blocked_terms#3"  # type: ignore[union-attr]
    assert find_blocked("a sunhat", rules) is None and find_blocked("smug", rules) is None

    listing = tmp_path / "terms.txt"
    listing.write_text("# our list\nquuxly\n\nre:fl[o0]+b\n", encoding="utf-8")
    from_file = parse_terms(f"@{listing}")
    assert [r.name for r in from_file] == ["blocked_terms#1", "blocked_terms#2"]
    assert find_blocked("so QUUXLY", from_file).label == "blocked term #1"  # type: ignore[union-attr]
    assert find_blocked("floo0ob", from_file).label == "blocked term #2"  # type: ignore[union-attr]


def test_term_file_is_read_again_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    listing = tmp_path / "terms.txt"
    listing.write_text("quuxly\n", encoding="utf-8")
    s = load_settings(data_dir=tmp_path, blocked_terms=f"@{listing}")
    assert check_text("quuxly", s) is not None and check_text("flibber", s) is None
    listing.write_text("quuxly\nflibber\n", encoding="utf-8")
    st = listing.stat()
    os.utime(listing, (st.st_atime, st.st_mtime + 5))
    assert check_text("flibber", s) is not None


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_terms("ok,re:(unclosed")
    assert "CHATCANVAS_BLOCKED_TERMS" in str(err.value) and "blocked term #2" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_terms(f"@{tmp_path / 'missing.txt'}")
    assert "CHATCANVAS_BLOCKED_TERMS" in str(err.value) and "missing.txt" in str(err.value)


@pytest.mark.parametrize(
    "text", ["a p0rn poster", "h e n t a i", "make it NSFW", "Pornographic art", "a dildo on a table"]
)
def test_shipped_list_is_on_by_default_and_lifted_where_nsfw_is_allowed(cfg, text: str) -> None:  # type: ignore[no-untyped-def]
    match = check_text(text, cfg)
    assert match is not None and match.name.startswith("sfw_terms#")
    assert "blocked term" in match.reason
    assert check_text(text, cfg, nsfw_allowed=True) is None
    off = cfg.model_copy(update={"sfw_terms": False})
    assert check_text(text, off) is None


@pytest.mark.parametrize(
    "text",
    [
        "a classic sneaker",
        "Scunthorpe United scarf",
        "nude lipstick in a glossy tube",
        "blue tits on a branch",
        "a cum laude diploma frame",
        "a same-sex couple on a wedding card",
        "Sussex and Essex postcards",
        "an XXXL hoodie",
        "a cocktail glass, passion fruit",
        "analysis chart of grape sales",
        "a binary poster: 1 0 1 1 0 1",
        "a rooster, a cockerel",
        "a naked cake with berries",
    ],
)
def test_shipped_list_leaves_shop_prompts_alone(cfg, text: str) -> None:  # type: ignore[no-untyped-def]
    assert check_text(text, cfg) is None


def test_shipped_list_passes_the_corpus_of_real_requests(cfg) -> None:  # type: ignore[no-untyped-def]
    import json

    corpus = Path(__file__).parents[1] / "bot" / "data" / "heldout_like.jsonl"
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    assert len(texts) > 50
    assert [t for t in texts if check_text(t, cfg) is not None] == []


def test_configured_terms_come_before_the_shipped_list(zorblax) -> None:  # type: ignore[no-untyped-def]
    rules = rules_for(zorblax)
    assert rules[0].name == "blocked_terms#1" and any(r.name.startswith("sfw_terms#") for r in rules)
    assert rules_for(zorblax, nsfw_allowed=True) == rules[:1]


def test_normalize_folds_disguises() -> None:
    assert normalize("ZО\u200bRВLАХ") == "zorblax"  # Cyrillic capitals and a zero-width space
    assert normalize("Ｃａｆé\u0301") == "cafe"
