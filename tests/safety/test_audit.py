"""Every refusal is recorded (who, where, when, rule); the text only when asked; `chatcanvas audit` shows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chatcanvas.config import Settings
from chatcanvas.safety.audit import record_refusal, refusals
from chatcanvas.store import Store
from chatcanvas.types import Place, UserRef

ALICE = UserRef(platform="discord", user="4242", server="guild-7")
GENERAL = Place(platform="discord", channel="c-100", thread="t-5")


def test_refusal_is_recorded_without_the_text_by_default(cfg: Settings) -> None:
    store = Store(cfg.data_dir)
    try:
        record_refusal(store, ALICE, GENERAL, "blocked_terms#3", "a zorblax mug", cfg, reason="not allowed (blocked term #3)")
        [rec] = refusals(store)
    finally:
        store.close()
    assert rec.user_key == "discord:guild-7:4242" and rec.platform == "discord"
    assert rec.place == "discord:c-100:t-5" and rec.rule == "blocked_terms#3"
    assert rec.text is None and rec.retry_after is None and rec.at > 0


def test_text_is_kept_only_with_audit_text_and_secrets_scrubbed(cfg: Settings) -> None:
    on = cfg.model_copy(update={"audit_text": True, "openai_api_key": "sk-proj-secretsecretsecret1234"})
    store = Store(cfg.data_dir)
    try:
        record_refusal(store, ALICE, GENERAL, "moderation:violence", "an axe, key sk-proj-secretsecretsecret1234", on)
        record_refusal(store, ALICE, None, "rate_limit", "a red mug", on, retry_after=12.5)
        newest, older = refusals(store)
    finally:
        store.close()
    assert newest.rule == "rate_limit" and newest.retry_after == 12.5 and newest.place == ""
    assert older.text is not None and older.text.startswith("an axe") and "secretsecret" not in older.text


def test_filter_by_rule_family_and_limit(cfg: Settings) -> None:
    store = Store(cfg.data_dir)
    try:
        rules = ["moderation:violence", "blocked_terms#1", "moderation:hate", "moderation_unavailable", "blocked_terms#12"]
        for i, rule in enumerate(rules):
            record_refusal(store, ALICE, GENERAL, rule, None, cfg, at=1000.0 + i)
        assert [r.rule for r in refusals(store, rule="moderation")] == ["moderation:hate", "moderation:violence"]
        assert [r.rule for r in refusals(store, rule="blocked_terms")] == ["blocked_terms#12", "blocked_terms#1"]
        assert [r.rule for r in refusals(store, rule="blocked_terms#1")] == ["blocked_terms#1"]
        assert [r.rule for r in refusals(store, limit=2)] == ["blocked_terms#12", "moderation_unavailable"]
    finally:
        store.close()


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCANVAS_", "OPENAI_"))}
    env["CHATCANVAS_DATA_DIR"] = str(tmp / "data")
    return subprocess.run(
        [sys.executable, "-m", "chatcanvas.cli", "audit", *args],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=120,
    )


def test_audit_command(cfg: Settings, tmp_path: Path) -> None:
    p = _cli(tmp_path)
    assert p.returncode == 0 and "No refusals recorded." in p.stdout
    store = Store(cfg.data_dir)
    try:
        record_refusal(store, ALICE, GENERAL, "moderation:violence", "an axe", cfg, at=1_700_000_000.0)
        bob = UserRef(platform="slack", user="U9", server="T1")
        slack = Place(platform="slack", channel="C1")
        record_refusal(store, bob, slack, "rate_limit", None, cfg, retry_after=30, at=1_700_000_100.0)
    finally:
        store.close()
    p = _cli(tmp_path)
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and len(lines) == 2
    assert "rate_limit" in lines[0] and "slack:T1:U9" in lines[0] and "retry after 30 s" in lines[0]
    assert "2023-11-14 22:13:20Z" in lines[1] and "moderation:violence" in lines[1] and "an axe" not in p.stdout
    p = _cli(tmp_path, "--rule", "moderation", "--json")
    [row] = [json.loads(x) for x in p.stdout.strip().splitlines()]
    assert row["rule"] == "moderation:violence" and row["user_key"] == "discord:guild-7:4242" and row["text"] is None
    p = _cli(tmp_path, "--limit", "1")
    assert len(p.stdout.strip().splitlines()) == 1 and "rate_limit" in p.stdout
