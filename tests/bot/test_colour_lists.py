"""The offline rewriter reads colour phrases as phrases: one image per listed colour, and each image's
prompt names its own colour and no word of another one. Follow-ups replace the colour (and the product)
of the last request instead of splicing words into it.

The requests are written the way people type them in a shop's chat, Discord or Slack (case, "pls",
"thanks!", emoji, colour/color and grey/gray); none is taken from the evaluation sets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatcanvas import prompts
from chatcanvas.bot.offline_rewriter import OfflineRewriter
from chatcanvas.bot.rewrite_patterns import SD_QUALITY
from chatcanvas.types import ImageSpec, Limits

BIG = Limits(max_count=16, max_side=2048, max_pixels=2048 * 2048)
REWRITER = OfflineRewriter(BIG)

# Pieces of the message that must never reach a prompt: dangling list words, chat filler.
FRAGMENT = re.compile(
    r"\b(?:and|or|in|with)\s*(?:,|$)|\b(?:in|and|or)\s+(?:and|or|in)\b|\s/\s|colou?rways?\s*:"
    r"|\b(?:but|pls|please|thanks|thx|hmm|try)\b|[\U0001f300-\U0001faff]",
    re.I,
)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9#]+", text.lower().replace("gray", "grey")))


def names(prompt: str, phrase: str) -> bool:
    """``prompt`` names ``phrase`` as whole words (any case, grey or gray)."""
    p, v = prompt.lower().replace("gray", "grey"), phrase.lower().replace("gray", "grey")
    return re.search(rf"(?<![\w#-]){re.escape(v)}(?![\w-])", p) is not None


def preset_words(spec: ImageSpec) -> set[str]:
    preset = prompts.style(spec.style)
    return words(preset.sd if preset else SD_QUALITY)


def images(specs: list[ImageSpec]) -> list[ImageSpec]:
    return [s for s in specs for _ in range(s.count)]


def assert_each_names_only_its_own(said: str, specs: list[ImageSpec], variations: list[str]) -> None:
    """One image per variation, in order; each prompt names its variation whole, and holds no word of
    another variation's phrase unless the message says that word outside its list (or the style preset
    adds it: "soft even lighting")."""
    made = images(specs)
    assert len(made) == len(variations), [s.prompt for s in made]
    outside = said.lower().replace("gray", "grey")
    for v in sorted(variations, key=len, reverse=True):
        outside = outside.replace(v.lower().replace("gray", "grey"), " ")
    context = words(outside)  # "studio light" says "light" outside the list "light blue, burgundy"
    for spec, own in zip(made, variations, strict=True):
        assert names(spec.prompt, own), (own, spec.prompt)
        for other in variations:
            if other == own:
                continue
            stray = (words(other) - words(own) - context - preset_words(spec)) & words(spec.prompt)
            assert not stray, (own, other, stray, spec.prompt)
        assert not FRAGMENT.search(spec.prompt), spec.prompt


# One request a line, scored by the bench too (``bench/rewriter.py --data``): the first five are the lists
# that came out mangled before ("navy yellow", one image for two colours), the rest written for this test.
DATA = Path(__file__).parent / "data" / "colour_phrases.jsonl"
CASES = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
LISTS = [(c["text"], c["variations"]) for c in CASES if c["variations"]]
SINGLES = [c["text"] for c in CASES if not c["variations"]]


@pytest.mark.parametrize(("text", "variations"), LISTS)
def test_one_image_per_colour_phrase(text: str, variations: list[str]) -> None:
    plan = REWRITER.plan_text(text)
    assert_each_names_only_its_own(text, plan.specs, variations)
    assert len({s.seed for s in plan.specs}) == 1  # the images differ only in the colour


def test_the_bench_scores_every_request() -> None:
    import asyncio

    from bench.rewriter import run

    score, _ = asyncio.run(run(DATA, "offline", "sd"))
    assert len(LISTS) >= 30 and len(SINGLES) >= 8
    assert (score.count, score.variations, score.aspect) == (score.n, score.var_n, score.n), score.misses


def test_the_list_is_said_with_whole_phrases() -> None:
    plan = REWRITER.plan_text("our canvas tote in navy, forest green and mustard yellow")
    assert plan.notes[0] == "Making 3 images, one each: navy, forest green, mustard yellow."


def test_an_everyday_word_in_a_list_is_written_as_a_colour() -> None:
    """ "forest" and "slate" are colours in these lists; the prompt says so, or a model paints a forest."""
    forest = images(REWRITER.plan_text("beanie colourways: heather grey / mustard / forest").specs)[2]
    assert names(forest.prompt, "forest colour") and forest.prompt.startswith("beanie in forest")
    slate = images(REWRITER.plan_text("the water bottle in seafoam, coral and slate").specs)[2]
    assert names(slate.prompt, "slate colour")


@pytest.mark.parametrize("text", SINGLES)  # one sunset in two colours, one striped scarf, one armor, ...
def test_not_a_list_of_variations(text: str) -> None:
    made = images(REWRITER.plan_text(text).specs)
    assert len(made) == 1, [s.prompt for s in made]
    assert not FRAGMENT.search(made[0].prompt.replace("pls", "")), made[0].prompt


TOTES = "our canvas tote in navy, forest green and mustard yellow, studio light"
OLD_COLOURS = {"navy", "forest", "green", "mustard", "yellow"}


@pytest.fixture
def totes() -> list[ImageSpec]:
    return REWRITER.plan_text(TOTES).specs


@pytest.mark.parametrize(
    ("follow_up", "colours"),
    [
        ("same sneaker but in light blue and in burgundy please", ["light blue", "burgundy"]),
        ("Same Sneaker But In Light Blue 👟", ["Light Blue"]),
        ("same sneakers but in cream / olive, thanks!", ["cream", "olive"]),
    ],
)
def test_a_follow_up_names_a_new_product_and_colours(
    totes: list[ImageSpec], follow_up: str, colours: list[str]
) -> None:
    plan = REWRITER.plan_text(follow_up, totes)
    assert_each_names_only_its_own(f"{TOTES}. {follow_up}", plan.specs, colours)
    for spec in plan.specs:
        assert re.search(r"\bsneakers?\b", spec.prompt, re.I), spec.prompt
        assert not words(spec.prompt) & (OLD_COLOURS | {"tote", "canvas"}) - words(follow_up), spec.prompt
        assert "studio light" in spec.prompt and spec.style == "product"  # the rest of the request stays


@pytest.mark.parametrize(
    ("follow_up", "colour"),
    [
        ("now in burgundy", "burgundy"),
        ("make it navy instead", "navy"),
        ("and in red?", "red"),
        ("what about olive green?", "olive green"),
        ("Burgundy pls 🙏", "Burgundy"),
        ("hmm, try dusty rose instead, thanks!", "dusty rose"),
        ("make it #e07b39", "#e07b39"),
        ("now in tan leather", "tan leather"),
    ],
)
def test_a_follow_up_replaces_the_colour(totes: list[ImageSpec], follow_up: str, colour: str) -> None:
    plan = REWRITER.plan_text(follow_up, totes)
    made = images(plan.specs)
    assert len(made) == 1, [s.prompt for s in made]
    prompt = made[0].prompt
    assert names(prompt, colour) and names(prompt, "canvas tote") or names(prompt, "tote in tan leather")
    assert not (words(prompt) & OLD_COLOURS) - words(colour), prompt
    assert "studio light" in prompt and made[0].style == "product"
    assert not FRAGMENT.search(prompt), prompt


def test_a_follow_up_may_change_only_the_product(totes: list[ImageSpec]) -> None:
    plan = REWRITER.plan_text("same but as a hoodie", totes)
    assert_each_names_only_its_own(TOTES, plan.specs, ["navy", "forest green", "mustard yellow"])
    assert all("hoodie" in s.prompt and "tote" not in s.prompt for s in plan.specs)


def test_an_added_thing_with_a_colour_does_not_recolour(totes: list[ImageSpec]) -> None:
    plan = REWRITER.plan_text("now with a gold zipper", totes)
    assert_each_names_only_its_own(TOTES, plan.specs, ["navy", "forest green", "mustard yellow"])
    assert all(s.prompt.count("gold zipper") == 1 for s in plan.specs)


def test_a_follow_up_colours_the_thing_not_its_surroundings() -> None:
    dog = REWRITER.plan_text("a dog in the park with an orange ball").specs
    black = REWRITER.plan_text("make it black", dog).specs[0].prompt
    assert black.startswith("a black dog in the park with an orange ball")
    rose = REWRITER.plan_text("a rose in a vase").specs
    assert REWRITER.plan_text("make it blue", rose).specs[0].prompt.startswith("a blue rose in a vase")
    armchair = REWRITER.plan_text("the armchair in emerald velvet").specs
    plum = REWRITER.plan_text("now in plum", armchair).specs[0].prompt
    assert names(plum, "armchair in plum velvet") and "emerald" not in plum


async def test_the_assistant_remembers_the_request_a_follow_up_edits(app) -> None:  # type: ignore[no-untyped-def]
    """Two turns in one conversation through the assistant and its memory, images made on the tiny model."""
    from chatcanvas.generation.metadata import parameters_from_png
    from chatcanvas.types import ChatTurn, Images, Place, UserRef

    who = UserRef(platform="test", user="ann", server="shop")
    where = Place(platform="test", channel="c1")

    async def prompts_of(text: str) -> list[str]:
        evs = [e async for e in app.assistant.handle(ChatTurn(who=who, where=where, text=text))]
        return [parameters_from_png(i.png)["prompt"] for e in evs if isinstance(e, Images) for i in e.images]

    first = await prompts_of("our canvas tote in navy and forest green, studio light")
    assert len(first) == 2
    second = await prompts_of("same sneaker but in light blue and in burgundy please")
    assert len(second) == 2, second
    assert sorted(names(p, "light blue") for p in second) == [False, True]
    assert sorted(names(p, "burgundy") for p in second) == [False, True]
    for p in second:
        assert "sneaker" in p and "tote" not in p and not words(p) & {"navy", "forest", "green"}, p
        assert not FRAGMENT.search(p), p
