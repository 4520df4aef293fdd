"""bench/rewriter.py scores the offline rewriter on the shared evaluation set and meets its goals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.rewriter import DEFAULT_DATA, GOALS, main, variations_ok


def test_variations_check_is_strict() -> None:
    assert variations_ok(["tote in red", "tote in navy"], ["red", "navy"])
    assert not variations_ok(["tote in red and navy", "tote in navy"], ["red", "navy"])
    assert not variations_ok(["tote in red"], ["red", "navy"])
    assert variations_ok(["tote in forest green", "tote in green"], ["forest green", "green"])


@pytest.mark.skipif(not DEFAULT_DATA.exists(), reason="no shared evaluation data next to the repo")
def test_offline_rewriter_meets_the_goals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in GOALS:
        assert f"| {name} |" in out


def test_custom_data_and_a_failing_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "r.jsonl"
    rows = [{"text": "a red mug", "count": 5, "variations": None, "aspect": "portrait", "style": None}]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["--data", str(data)]) == 1
    assert "count 1 != 5" in capsys.readouterr().out
