"""The Grafana dashboard in examples/ is valid JSON and asks only for series the app exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from chatcanvas.ops.metrics import Metrics

DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana_dashboard.json"


def exported_series() -> set[str]:
    metrics = Metrics(["local", "openai"], depths=lambda: {"local": 0}, ready=lambda: True, default_backend="local")
    metrics.job("done", "local", "web")
    metrics.refused("blocked_terms#2", "discord")
    metrics.batch("local", 1.5)
    metrics.queue_wait_seconds.observe(0.2)
    metrics.made("openai", 1, 0.04)
    body, _ = metrics.exposition()
    return {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def test_every_panel_queries_series_the_app_exports() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"chatcanvas_[a-z_]+", e)}
    assert used - exported_series() == set()
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for wanted in ("queue depth", "p50 / p95", "refusals by rule", "openai spend"):
        assert wanted in titles
    assert any("histogram_quantile(0.95" in e and "generation_seconds_bucket" in e for e in exprs)
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
