"""The one view of a turn that every renderer formats."""

from __future__ import annotations

from chatcanvas.bot.view import TurnView
from chatcanvas.types import (
    Accepted,
    Cancelled,
    Failed,
    GeneratedImage,
    Images,
    Progress,
    Queued,
    Recipe,
    Refused,
    Started,
    Text,
    UserRef,
)


def image(seed: int) -> GeneratedImage:
    r = Recipe(prompt="a mug", width=8, height=8, seed=seed, steps=2, guidance=5, sampler="Euler", model="m", backend="local")
    return GeneratedImage(png=b"png%d" % seed, recipe=r)


def test_three_jobs_from_queue_to_done_failed_and_cancelled() -> None:
    v = TurnView()
    for ev in [
        Text(text="Making 3."),
        Accepted(job_ids=("a", "b", "c"), position=2, prompts=("red mug", "blue mug", "teal mug")),
    ]:
        v.apply(ev)
    assert v.status == "queued" and v.position == 2 and v.percent == 0
    assert [j.prompt for j in v.jobs.values()] == ["red mug", "blue mug", "teal mug"]
    v.apply(Queued(job_id="a", position=0))
    v.apply(Started(job_id="a"))
    v.apply(Progress(job_id="a", step=5, total=10, preview=b"p"))
    assert v.status == "running" and v.preview == b"p" and v.position == 3  # b's last known place
    v.apply(Queued(job_id="b", position=1))
    assert v.position == 1
    assert v.percent == 16  # half of one job of three
    v.apply(Images(job_id="a", images=(image(1),)))
    assert v.preview is None and [i.recipe.seed for i in v.images] == [1]
    v.apply(Failed(job_id="b", reason="out of memory"))
    v.apply(Cancelled(job_id="c"))
    assert v.over and v.status == "done" and v.percent == 100
    assert v.jobs["b"].error == "out of memory" and v.jobs["c"].state == "cancelled"
    assert v.texts == ["Making 3."]


def test_a_refused_turn() -> None:
    v = TurnView()
    v.apply(Refused(reason="Too fast (rule: user_rate)", rule="user_rate", retry_after=30))
    assert v.status == "refused" and v.over and v.refusals[0].rule == "user_rate"


def test_a_job_waiting_for_the_image_workers_says_so_on_slack_discord_and_the_api_until_it_steps() -> None:
    from chatcanvas.adapters.discord.render import Renderer
    from chatcanvas.adapters.slack.render import status_lines
    from chatcanvas.adapters.web.tracker import WebJob

    note = "Waiting for the image workers, which are unreachable (up to 240 s more)."
    v = TurnView()
    v.apply(Accepted(job_ids=("a",), position=0, prompts=("an olive mug",)))
    v.apply(Started(job_id="a"))
    web = WebJob(id="w", kind="generation", who=UserRef(platform="web", user="u"), key_id=None, view=v)
    web.record(Progress(job_id="a", step=0, total=20, note=note))
    assert status_lines(v) == {"a": note}
    discord = Renderer(surface=None, view=v)  # type: ignore[arg-type]  # only its status text is read
    assert note in discord._status()
    assert web.snapshot()["status"] == "queued" and web.snapshot()["note"] == note  # nothing runs meanwhile
    assert web.log[-1] == ("progress", {"job_id": "a", "step": 0, "total": 20, "percent": 0, "note": note})
    web.record(Progress(job_id="a", step=3, total=20))  # the workers are back
    assert v.jobs["a"].note is None and "15%" in status_lines(v)["a"]
    assert note not in discord._status()
    assert web.snapshot()["status"] == "running" and web.snapshot()["note"] is None
