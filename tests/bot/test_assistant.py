"""The assistant end to end on the tiny checkpoint: one chat turn in, events out."""

from __future__ import annotations

import re

from chatcanvas.generation.metadata import parameters_from_png
from chatcanvas.types import Accepted, ChatTurn, Images, Place, Refused, Text, UserRef

WHO = UserRef(platform="test", user="ann", server="shop")
WHERE = Place(platform="test", channel="c1")


async def events(it):  # type: ignore[no-untyped-def]
    return [e async for e in it]


async def test_one_turn_three_colours_three_images(app) -> None:  # type: ignore[no-untyped-def]
    evs = await events(
        app.assistant.handle(ChatTurn(who=WHO, where=WHERE, text="our mug in red, blue and green"))
    )
    accepted = [e for e in evs if isinstance(e, Accepted)]
    assert len(accepted) == 1 and len(accepted[0].job_ids) == 3
    images = [i for e in evs if isinstance(e, Images) for i in e.images]
    prompts = [parameters_from_png(i.png)["prompt"] for i in images]
    assert len(prompts) == 3
    for colour in ("red", "blue", "green"):
        assert sum(re.search(rf"\b{colour}\b", p) is not None for p in prompts) == 1, prompts


async def test_reroll_vary_upscale_from_an_image(app) -> None:  # type: ignore[no-untyped-def]
    evs = await events(app.assistant.handle(ChatTurn(who=WHO, where=WHERE, text="a cap")))
    first = next(e for e in evs if isinstance(e, Images)).images[0]

    reroll = next(
        e for e in await events(app.assistant.reroll(first.id, WHO, WHERE)) if isinstance(e, Images)
    )
    r = reroll.images[0].recipe
    assert r.prompt == first.recipe.prompt and r.seed != first.recipe.seed

    vary = next(e for e in await events(app.assistant.vary(first.id, WHO, WHERE)) if isinstance(e, Images))
    assert vary.images[0].recipe.init_image == first.id and vary.images[0].recipe.mode == "img2img"

    up = next(e for e in await events(app.assistant.upscale(first.id, WHO, WHERE)) if isinstance(e, Images))
    assert up.images[0].recipe.width == 2 * first.recipe.width

    assert "Seed: " in app.assistant.recipe(first.id)


async def test_refusals_are_events_not_exceptions(app) -> None:  # type: ignore[no-untyped-def]
    evs = await events(app.assistant.reroll("no-such-image", WHO, WHERE))
    assert len(evs) == 1 and isinstance(evs[0], Refused) and evs[0].rule == "image_ref"  # not an id: refused
    app.settings.__dict__["max_queued_per_user"] = 0  # nobody may queue anything
    evs = await events(app.assistant.handle(ChatTurn(who=WHO, where=WHERE, text="a mug")))
    assert any(isinstance(e, Refused) and "waiting" in e.reason for e in evs)


async def test_too_many_images_are_clamped_and_the_user_told(app) -> None:  # type: ignore[no-untyped-def]
    evs = await events(app.assistant.handle(ChatTurn(who=WHO, where=WHERE, text="9 pictures of a tote bag")))
    texts = " ".join(e.text for e in evs if isinstance(e, Text))
    n = sum(len(e.images) for e in evs if isinstance(e, Images))
    assert n == app.settings.max_count
    assert str(app.settings.max_count) in texts
