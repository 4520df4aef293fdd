"""Prices, the spend ledger, and spending limits enforced before a request reaches the provider."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatcanvas.config import Settings, load_settings
from chatcanvas.errors import ConfigError, QuotaExceeded
from chatcanvas.generation.pricing import DEFAULT_EDIT_PRICES, DEFAULT_PRICES, Prices, estimate_cost
from chatcanvas.generation.spending import SpendLedger, install, period_bounds, usage_report
from chatcanvas.store import Store
from chatcanvas.types import Accepted, Images, ImageSpec, Place, Refused, UserRef
from tests.conftest import outcome
from tests.fakes.openai_server import FakeOpenAI, Fault

HERE = Place(platform="test", channel="c")
ALICE = UserRef(platform="test", user="alice", server="s1")
BOB = UserRef(platform="test", user="bob", server="s1")
DM = UserRef(platform="test", user="carol", server="")


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[arg-type,misc]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "data")
    yield s
    s.close()


def settings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Settings:
    monkeypatch.chdir(tmp_path)  # no .env
    base: dict[str, Any] = {"data_dir": tmp_path / "data", "openai_api_key": "sk-test"}
    base.update(kw)
    return Settings(**base)


# ---------------------------------------------------------------- prices


def test_default_prices_are_the_list_prices() -> None:
    p = Prices()
    assert p.per_image("dall-e-3", "1024x1024", "standard") == 0.04
    assert p.per_image("dall-e-3", "1792x1024", "hd") == 0.12
    assert p.per_image("dall-e-2", "256x256", None) == 0.016
    assert p.per_image("gpt-image-1", "1536x1024", "low") == 0.016
    assert (
        p.per_image("gpt-image-1", "1024x1024", "auto") == 0.167
    )  # "auto" is priced as high: an upper bound
    assert DEFAULT_PRICES["gpt-image-1"]["medium"]["1024x1024"] == 0.042


def test_price_overrides_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "CHATCANVAS_PRICES", '{"dall-e-3": {"hd": {"1024x1024": 0.09}}, "my-model": {"x": {"1x1": 1}}}'
    )
    p = Prices(load_settings().prices)
    assert p.per_image("dall-e-3", "1024x1024", "hd") == 0.09
    assert p.per_image("dall-e-3", "1024x1024", "standard") == 0.04  # the rest keeps its default
    assert p.per_image("my-model", "1x1", "x") == 1.0


def test_missing_or_bad_prices_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="CHATCANVAS_PRICES"):
        Prices().per_image("dall-e-3", "512x512", "standard")
    with pytest.raises(ConfigError, match="CHATCANVAS_PRICES.*-1"):
        Prices({"dall-e-3": {"hd": {"1024x1024": -1}}})


def test_estimate_maps_the_size_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_for(tmp_path, monkeypatch, openai_quality="hd")
    assert estimate_cost(ImageSpec(prompt="x", width=768, height=512, count=3), s) == pytest.approx(0.36)
    s = settings_for(tmp_path, monkeypatch, openai_image_model="gpt-image-1")
    assert estimate_cost(ImageSpec(prompt="x", count=2), s) == pytest.approx(0.084)  # medium by default


def test_edits_are_priced_from_the_edits_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = Prices()
    # gpt-image-1 edits also pay for the init image (input tokens): more than the generation price
    assert p.per_image("gpt-image-1", "1024x1024", "medium", edit=True) == pytest.approx(0.04965)
    assert p.per_image("gpt-image-1", "1536x1024", "high", edit=True) == pytest.approx(0.26105)
    assert p.per_image("dall-e-2", "512x512", None, edit=True) == 0.018
    assert "dall-e-3" not in DEFAULT_EDIT_PRICES  # it makes no edits
    with pytest.raises(ConfigError, match="CHATCANVAS_EDIT_PRICES"):
        p.per_image("dall-e-3", "1024x1024", "standard", edit=True)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATCANVAS_EDIT_PRICES", '{"gpt-image-1": {"medium": {"1024x1024": 0.07}}}')
    s = load_settings().model_copy(update={"openai_image_model": "gpt-image-1"})
    variation = ImageSpec(prompt="the tote in forest green", init_image="tote.png", count=2)
    assert estimate_cost(variation, s) == pytest.approx(0.14)
    assert estimate_cost(ImageSpec(prompt="a tote", count=2), s) == pytest.approx(0.084)  # generations


# ---------------------------------------------------------------- periods


def test_period_bounds_are_utc_calendar_days_and_months() -> None:
    now = ts(2025, 12, 31, 23, 30)
    assert period_bounds(now, "daily") == (ts(2025, 12, 31), ts(2026, 1, 1))
    assert period_bounds(now, "monthly") == (ts(2025, 12, 1), ts(2026, 1, 1))
    assert period_bounds(ts(2024, 2, 10), "monthly") == (ts(2024, 2, 1), ts(2024, 3, 1))


# ---------------------------------------------------------------- the ledger


def test_daily_limit_refuses_with_time_to_midnight(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_for(tmp_path, monkeypatch, spend_limit_user_daily=0.10)
    clock = Clock(ts(2025, 6, 10, 18, 0))
    ledger = SpendLedger(store, now=clock)
    spec = ImageSpec(prompt="a fox")  # 0.04

    assert ledger.check(ALICE, spec, s) == pytest.approx(0.04)
    ledger.record(ALICE, "j1", 0.04, "dall-e-3")
    ledger.record(ALICE, "j2", 0.04, "dall-e-3")
    with pytest.raises(QuotaExceeded) as err:
        ledger.check(ALICE, spec, s)
    assert str(err.value) == (
        "That would cost about $0.04, over your daily spending limit of $0.10 (spent $0.08)."
    )
    assert err.value.retry_after == pytest.approx(6 * 3600)
    ledger.check(BOB, spec, s)  # someone else is fine

    ledger.record(ALICE, "j3", 0.02, "dall-e-3")
    with pytest.raises(
        QuotaExceeded, match=r"You've reached the daily spending limit of \$0.10 \(spent \$0.10\)"
    ):
        ledger.check(ALICE, 0.01, s)

    clock.t = ts(2025, 6, 11, 0, 0, 1)  # a new day
    ledger.check(ALICE, spec, s)


def test_monthly_limit_counts_earlier_days(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_for(tmp_path, monkeypatch, spend_limit_user_daily=1.0, spend_limit_user_monthly=1.5)
    clock = Clock(ts(2025, 6, 2, 12))
    ledger = SpendLedger(store, now=clock)
    ledger.record(ALICE, "j1", 0.9, "dall-e-3")
    clock.t = ts(2025, 6, 20, 12)
    ledger.record(ALICE, "j2", 0.5, "dall-e-3")
    with pytest.raises(QuotaExceeded, match="monthly") as err:
        ledger.check(ALICE, 0.2, s)
    assert err.value.retry_after == pytest.approx(ts(2025, 7, 1) - clock.t)
    clock.t = ts(2025, 7, 1, 0, 1)
    ledger.check(ALICE, 0.2, s)


def test_server_limit_counts_everyone_in_it_but_not_dms(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_for(tmp_path, monkeypatch, spend_limit_server_daily=0.05)
    ledger = SpendLedger(store)
    ledger.record(ALICE, "j1", 0.04, "dall-e-3")
    with pytest.raises(QuotaExceeded, match="This server has reached its daily image spending limit"):
        ledger.check(BOB, ImageSpec(prompt="x"), s)
    ledger.check(DM, ImageSpec(prompt="x"), s)
    ledger.check(UserRef(platform="test", user="bob", server="s2"), ImageSpec(prompt="x"), s)


def test_no_limits_means_no_refusal(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_for(tmp_path, monkeypatch)
    ledger = SpendLedger(store)
    ledger.record(ALICE, "j1", 1000.0, "dall-e-3")
    assert ledger.check(ALICE, ImageSpec(prompt="x", count=4), s) == pytest.approx(0.16)


def test_report_and_usage_text(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_for(tmp_path, monkeypatch, spend_limit_user_daily=2.0)
    clock = Clock(ts(2025, 6, 20, 12))
    ledger = SpendLedger(store, now=clock)
    ledger.record(ALICE, "j1", 0.5, "dall-e-3", images=2)
    ledger.record(BOB, "j2", 0.04, "dall-e-3")
    clock.t = ts(2025, 6, 21, 9)
    ledger.record(ALICE, "j3", 0.08, "dall-e-3", images=2)

    rows = ledger.report()
    assert [(r.user, r.images, r.today, r.month, r.total) for r in rows] == [
        ("alice", 4, pytest.approx(0.08), pytest.approx(0.58), pytest.approx(0.58)),
        ("bob", 1, 0.0, pytest.approx(0.04), pytest.approx(0.04)),
    ]
    text = usage_report(store, s)
    lines = text.splitlines()
    assert lines[0].split() == ["platform", "user", "images", "today", "this", "month", "total"]
    assert lines[1].split()[:3] == ["test", "alice", "4"]
    assert lines[3].split()[:3] == ["all", "users", "5"]
    assert lines[-1] == "Limits: $2.00 per user per day"


def test_usage_report_empty(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert usage_report(store, settings_for(tmp_path, monkeypatch)) == "No image spending recorded yet."


# ---------------------------------------------------------------- through the engine


@pytest.fixture
def fake() -> Any:
    with FakeOpenAI() as f:
        yield f


def engine_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI, **kw: Any) -> Settings:
    return settings_for(
        tmp_path,
        monkeypatch,
        backend="openai",
        openai_base_url=fake.base_url,
        moderation="off",  # these tests count the image requests; moderation has its own tests
        batch_wait_ms=0,
        **kw,
    )


async def test_over_the_limit_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    from chatcanvas.app import build_app

    s = engine_settings(tmp_path, monkeypatch, fake, spend_limit_user_daily=0.05)
    ctx = await build_app(s)
    try:
        SpendLedger(ctx.store).record(ALICE, "earlier", 0.05, "dall-e-3")
        ev = await outcome(ctx.assistant.run_specs([ImageSpec(prompt="a fox")], ALICE, HERE))
        assert isinstance(ev, Refused) and ev.rule == "spending"
        assert "You've reached the daily spending limit of $0.05" in ev.reason
        assert fake.requests == []
        assert ctx.engine.jobs(ALICE) == []  # not even queued
    finally:
        await ctx.aclose()


async def test_queued_jobs_count_against_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    from chatcanvas.app import build_app

    s = engine_settings(tmp_path, monkeypatch, fake, spend_limit_user_daily=0.10)
    ctx = await build_app(s, start=False)  # no workers: jobs stay queued
    try:
        ctx.engine._accepting = True
        for prompt in ("one", "two"):
            ev = await outcome(ctx.assistant.run_specs([ImageSpec(prompt=prompt)], ALICE, HERE))
            assert isinstance(ev, Accepted)
        ev = await outcome(ctx.assistant.run_specs([ImageSpec(prompt="three")], ALICE, HERE))
        assert isinstance(ev, Refused) and ev.rule == "spending"
        assert re.search(r"would cost about \$0.04.*spent \$0.08", ev.reason)
        assert fake.requests == []
    finally:
        await ctx.aclose()


async def test_a_done_job_records_its_cost_with_who_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    from chatcanvas.app import build_app

    s = engine_settings(tmp_path, monkeypatch, fake, spend_limit_user_daily=1.0, openai_quality="hd")
    ctx = await build_app(s)
    try:
        rec = await ctx.engine.submit(ImageSpec(prompt="a fox", count=2), ALICE, HERE)
        events = [ev async for ev in ctx.engine.follow(rec.id)]
        assert isinstance(events[-1], Images)
        assert [i.recipe.cost_usd for i in events[-1].images] == [0.08, 0.08]
        rows = SpendLedger(ctx.store).report()
        assert [(r.platform, r.user, r.images, r.total) for r in rows] == [
            ("test", "alice", 2, pytest.approx(0.16))
        ]
        assert len(fake.requests_to("/v1/images/generations")) == 2
    finally:
        await ctx.aclose()


async def test_a_partial_dalle3_failure_charges_only_the_images_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    from chatcanvas.app import build_app

    body = {"error": {"message": "Refused by the safety system.", "code": "content_policy_violation"}}
    fake.faults.append(Fault(status=400, body=body, path="/v1/images/generations"))
    ctx = await build_app(engine_settings(tmp_path, monkeypatch, fake))
    try:
        rec = await ctx.engine.submit(ImageSpec(prompt="three foxes in the snow", count=3), ALICE, HERE)
        events = [ev async for ev in ctx.engine.follow(rec.id)]
        assert isinstance(events[-1], Images)
        assert len(events[-1].images) == 2
        assert len(fake.requests_to("/v1/images/generations")) == 3
        rows = SpendLedger(ctx.store).report()
        assert [(r.user, r.images, r.total) for r in rows] == [("alice", 2, pytest.approx(0.08))]
    finally:
        await ctx.aclose()


async def test_a_tall_dalle3_image_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> None:
    from chatcanvas.app import build_app

    ctx = await build_app(engine_settings(tmp_path, monkeypatch, fake))
    try:
        rec = await ctx.engine.submit(ImageSpec(prompt="a fox", width=576, height=1024), ALICE, HERE)
        events = [ev async for ev in ctx.engine.follow(rec.id)]
        assert isinstance(events[-1], Images)
        assert fake.requests_to("/v1/images/generations")[0].json["size"] == "1024x1792"
        assert events[-1].images[0].recipe.cost_usd == 0.08
    finally:
        await ctx.aclose()


def test_install_records_cost_when_done(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Engine:
        on_done: list[Any] = []

    eng = Engine()
    install(eng, store, settings_for(tmp_path, monkeypatch))
    assert len(eng.on_done) == 1  # the limits themselves are the policy's (tests/bot/test_policy.py)
