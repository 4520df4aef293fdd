"""Midjourney's parameters, typed out of habit at the end of a prompt."""

from __future__ import annotations

import pytest

from chatcanvas.bot.midjourney_params import apply_params, split_params
from chatcanvas.bot.offline_rewriter import OfflineRewriter
from chatcanvas.types import ImageSpec, Limits


@pytest.mark.parametrize(
    ("text", "prompt", "ratio", "negatives", "seed", "ignored"),
    [
        ("isometric cozy cabin in the woods, soft morning light --ar 3:2 --v 6.1", "isometric cozy cabin in the woods, "
         "soft morning light", (3, 2), [], None, ["--v 6.1"]),
        ("product shot of a perfume bottle on wet slate --ar 4:5 --style raw --stylize 50 --no text, logo",
         "product shot of a perfume bottle on wet slate", (4, 5), ["text", "logo"], None, ["--style raw", "--stylize 50"]),
        ("koi pond from above --niji 6 --ar 9:16 --seed 1234", "koi pond from above", (9, 16), [], 1234, ["--niji 6"]),
        ("a red fox --aspect 16:9 in fresh snow", "a red fox in fresh snow", (16, 9), [], None, []),
        ("neon street at night \u2014ar 21:9 \u2014chaos 30", "neon street at night", (21, 9), [], None, ["--chaos 30"]),
        ("seamless lemon pattern --tile", "seamless lemon pattern", None, [], None, ["--tile"]),
        # prose keeps its dashes
        ("a knight -- tired, muddy -- after the battle", "a knight -- tired, muddy -- after the battle", None, [], None, []),
        ("a castle \u2014 at night --foo", "a castle \u2014 at night --foo", None, [], None, []),
        ("a cat --ar wide", "a cat", None, [], None, ["--ar wide"]),
    ],
)  # fmt: skip
def test_what_is_read_from_the_end_of_a_prompt(
    text: str, prompt: str, ratio: tuple[int, int] | None, negatives: list[str], seed: int | None, ignored: list[str]
) -> None:
    got = split_params(text)
    assert (got.prompt, got.ratio, got.negatives, got.seed, got.ignored) == (prompt, ratio, negatives, seed, ignored)


def test_a_form_prompt_gets_its_shape_negatives_and_seed() -> None:
    spec = ImageSpec(prompt="a lighthouse at dusk --ar 16:9 --no people, boats --seed 42 --r 2 --v 6.1",
                     negative_prompt="blurry")  # fmt: skip
    out, notes = apply_params(spec, split_params(spec.prompt), Limits(), native=512)
    assert out.prompt == "a lighthouse at dusk" and out.negative_prompt == "blurry, people, boats"
    assert out.seed == 42 and out.count == 2
    assert out.width and out.height and abs(out.width / out.height - 16 / 9) < 0.05
    assert notes and "--v 6.1" in notes[0]
    plain = ImageSpec(prompt="a lighthouse at dusk", width=640, height=512)
    assert apply_params(plain, split_params(plain.prompt), Limits(), native=512) == (plain, [])


def test_the_offline_rules_read_them_as_words() -> None:
    plan = OfflineRewriter().plan_text("an anime girl with pink hair, cherry blossoms --no text, watermark --ar 2:3")
    (spec,) = plan.specs
    assert "--" not in spec.prompt and "pink hair" in spec.prompt and "watermark" not in spec.prompt
    assert spec.negative_prompt.split(", ")[:2] == ["text", "watermark"]
    assert spec.negative_prompt.count("watermark") == 1
    assert spec.width and spec.height and spec.width < spec.height
    plan = OfflineRewriter().plan_text("a ceramic mug on a desk --r 3 --q 2")
    assert sum(s.count for s in plan.specs) == 3 and "--q 2" in " ".join(plan.notes)
