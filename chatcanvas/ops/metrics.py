"""Prometheus metrics with prometheus-client, in a registry of each app's own (never the global one).

Families (label values are bounded: backends by their registered names, platforms by a fixed list,
rules by their family: ``blocked_terms#3`` counts as ``blocked_terms``, ``moderation:violence`` as
``moderation``; no user, server or job id is ever a label):

- ``chatcanvas_jobs_total{status,backend,platform}`` counter: jobs queued, done, failed, cancelled
- ``chatcanvas_queue_depth{backend}`` gauge: jobs waiting, read from the store at each scrape
- ``chatcanvas_generation_seconds{backend}`` histogram: one backend call (a batch), start to end
- ``chatcanvas_queue_wait_seconds`` histogram: from asked to started
- ``chatcanvas_refusals_total{rule,platform}`` counter
- ``chatcanvas_images_total{backend}`` counter: images made and kept
- ``chatcanvas_openai_spend_usd_total`` counter: what the OpenAI images cost
- ``chatcanvas_backend_ready`` gauge: 1 once the configured backend has loaded its model
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["PLATFORMS", "Metrics", "platform_label", "rule_label"]

PLATFORMS = frozenset({"discord", "slack", "web", "cli", "terminal", "langchain"})
OTHER = "other"
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)
QUEUE_WAIT_BUCKETS = (0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
_RULE = re.compile(r"[a-z][a-z0-9_]{0,39}")
JOB_STATUSES = ("queued", "done", "failed", "cancelled")


def platform_label(platform: str) -> str:
    return platform if platform in PLATFORMS else OTHER


def rule_label(rule: str) -> str:
    """A rule's family: the part before ``#`` or ``:`` (``blocked_terms#3`` -> ``blocked_terms``)."""
    family = re.split(r"[#:]", rule or "", maxsplit=1)[0].strip().lower()
    return family if _RULE.fullmatch(family) else OTHER


class _Live(Collector):
    """The gauges read when scraped: the queue's depth per backend, whether the backend is ready."""

    def __init__(self, depths: Callable[[], dict[str, int]], ready: Callable[[], bool], backend: Callable[[str], str]):
        self.depths = depths
        self.ready = ready
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("chatcanvas_queue_depth", "Jobs waiting in the queue.", labels=["backend"])
        counts: dict[str, int] = {}
        for name, n in self.depths().items():
            label = self.backend(name)
            counts[label] = counts.get(label, 0) + n
        for label, n in sorted(counts.items()):
            depth.add_metric([label], n)
        yield depth
        yield GaugeMetricFamily(
            "chatcanvas_backend_ready", "1 once the configured backend has loaded its model.", value=int(self.ready())
        )

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("chatcanvas_queue_depth", "Jobs waiting in the queue.", labels=["backend"])
        yield GaugeMetricFamily("chatcanvas_backend_ready", "1 once the configured backend has loaded its model.")


class Metrics:
    """An app's metrics. ``backends``: the names a backend label may take (others count as "other")."""

    def __init__(
        self,
        backends: Iterable[str],
        *,
        depths: Callable[[], dict[str, int]] = dict,
        ready: Callable[[], bool] = lambda: False,
        default_backend: str = "",
    ) -> None:
        self.backends = frozenset(backends)
        self.default_backend = default_backend
        r = self.registry = CollectorRegistry()
        self.jobs = Counter(
            "chatcanvas_jobs", "Jobs by the status they reached.", ["status", "backend", "platform"], registry=r
        )
        self.queue_depth_collector = _Live(depths, ready, self.backend_label)
        r.register(self.queue_depth_collector)
        self.generation_seconds = Histogram(
            "chatcanvas_generation_seconds",
            "Seconds one backend call took (a batch of jobs).",
            ["backend"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "chatcanvas_queue_wait_seconds",
            "Seconds from a job being asked for to its start.",
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self.refusals = Counter(
            "chatcanvas_refusals", "Requests refused, by the rule that refused them.", ["rule", "platform"], registry=r
        )
        self.images = Counter("chatcanvas_images", "Images made and kept.", ["backend"], registry=r)
        self.openai_spend = Counter("chatcanvas_openai_spend_usd", "What the OpenAI images cost, in USD.", registry=r)

    def backend_label(self, name: str | None) -> str:
        name = name or self.default_backend
        return name if name in self.backends else OTHER

    # ------------------------------------------------------------ events

    def job(self, status: str, backend: str | None, platform: str) -> None:
        if status in JOB_STATUSES:
            self.jobs.labels(status=status, backend=self.backend_label(backend), platform=platform_label(platform)).inc()

    def refused(self, rule: str, platform: str) -> None:
        self.refusals.labels(rule=rule_label(rule), platform=platform_label(platform)).inc()

    def batch(self, backend: str, seconds: float) -> None:
        self.generation_seconds.labels(backend=self.backend_label(backend)).observe(max(0.0, seconds))

    def made(self, backend: str | None, images: int, cost_usd: float) -> None:
        if images:
            self.images.labels(backend=self.backend_label(backend)).inc(images)
        if cost_usd > 0:
            self.openai_spend.inc(cost_usd)

    # ------------------------------------------------------------ exposition

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
