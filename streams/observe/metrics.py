"""Prometheus metrics of the worker and the API: one object per process, built at the entry point.

Every metric lives in the object's own `CollectorRegistry` (never the global one), so tests
can build as many as they like. `WorkerMetrics` also keeps the worker's periodic log line
(`streams.observe.stats.Stats`): each event is recorded once and feeds both. Faust's own Prometheus
sensor (`faust.sensors.prometheus`, names `faust_*`) is registered into the same registry by
`streams.worker.observe`
and measures what Faust sees (messages in and out per topic, send and commit
latency, rebalances).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from streams.observe.stats import Stats

SERVERS = ("kafka", "redis", "milvus")
WORKER_STAGES = ("consume", "parse", "redis", "model", "search", "merge", "publish")
RECALL_STAGES = ("model", "search", "merge")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0, 30.0)
E2E_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

# Dead-letter reasons (free text, see streams.records) -> a small fixed set of label values.
REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern)) for label, pattern in (
        ("unpublishable", r"^could not publish"),
        ("processing_failed", r"^processing failed"),
        ("empty", r"^empty message"),
        ("too_large", r"^value of \d+ bytes is over"),
        ("not_json", r"^not JSON|^expected a JSON object"),
        ("schema", r"^unknown fields|^missing fields?|^wrong fields"),
        ("bad_id", r"^(user_id|item_id) must be"),
        ("bad_ts", r"^ts "),
        ("bad_vector", r"^vector|^deleted must be|^expected a (finite )?number"),
    )
)


def reason_label(reason: str) -> str:
    """The label value of a dead letter's reason: one of REASONS' labels, or "other"."""
    for label, pattern in REASONS:
        if pattern.search(reason):
            return label
    return "other"


def server_of(exc: BaseException) -> str:
    """Which server an outage is about: "redis", "milvus" or "kafka" (the default)."""
    text = f"{type(exc).__module__} {exc}".lower()
    for server in ("redis", "milvus"):
        if server in text:
            return server
    return "kafka"


class Metrics:
    """What both faces measure: recall stages, model, items in Milvus, servers' readiness."""

    stages: tuple[str, ...] = RECALL_STAGES

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram(
            "recall_stage_seconds", "Time per batch in each stage of the click step", ["stage"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.model_info = Gauge(
            "recall_model_info", "Model version loaded (1 for the current one)", ["version"],
            registry=r)
        self.model_reloads = Counter("recall_model_reloads", "Newer models switched to",
                                     registry=r)
        self.milvus_items = Gauge("recall_milvus_items", "Items in the Milvus collection",
                                  registry=r)
        self.server_up = Gauge(
            "recall_server_up", "1 when the last readiness check reached the server", ["server"],
            registry=r)
        self.popular_fallbacks = Counter(
            "recall_popular_fallbacks", "Users answered with popular items (no usable history)",
            registry=r)
        self.history_items_without_vector = Counter(
            "recall_history_items_without_vector",
            "History items skipped for having no vector (neither trained nor streamed)",
            registry=r)
        self._version = ""
        for stage in self.stages:
            self.stage_seconds.labels(stage)

    def observe_stages(self, timings: Mapping[str, float]) -> None:
        """Record one batch's seconds per stage."""
        for stage, seconds in timings.items():
            self.stage_seconds.labels(stage).observe(seconds)

    def set_model(self, version: str) -> None:
        """The loaded model's version is the only `recall_model_info` series."""
        if version != self._version:
            self.model_info.clear()
            self.model_info.labels(version).set(1)
            self._version = version

    def set_servers(self, up: Mapping[str, bool]) -> None:
        for server, ok in up.items():
            self.server_up.labels(server).set(1 if ok else 0)

    def recalled(self, popular: int, without_vector: int) -> None:
        self.popular_fallbacks.inc(popular)
        self.history_items_without_vector.inc(without_vector)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what /metrics answers)."""
        return generate_latest(self.registry)


class WorkerMetrics(Metrics):
    """The stream worker's metrics; also keeps the periodic `stats` log line."""

    stages = WORKER_STAGES

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.stats = Stats()
        self.clicks = Counter("recall_clicks_consumed", "Clicks consumed", registry=r)
        self.recommendations = Counter(
            "recall_recommendations_published", "Recommendations the broker acknowledged",
            registry=r)
        self.items = Counter("recall_items_consumed", "Valid item-embedding records applied",
                             registry=r)
        self.dead_letters = Counter(
            "recall_dead_letters", "Dead letters published, by source topic and reason",
            ["topic", "reason"], registry=r)
        self.dead_letters_lost = Counter(
            "recall_dead_letters_lost", "Dead letters that could not be published either",
            registry=r)
        self.batch_size = Histogram("recall_batch_size", "Messages per micro-batch", ["agent"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.click_to_publish = Histogram(
            "recall_click_to_publish_seconds",
            "From a click's Kafka timestamp to its recommendation acknowledged by the broker",
            buckets=E2E_BUCKETS, registry=r)
        self.consumer_lag = Gauge(
            "recall_consumer_lag", "Messages behind the end of each assigned partition",
            ["topic", "partition"], registry=r)
        self.retries = Counter("recall_retries", "Retries of a step or a send, by server",
                               ["server"], registry=r)
        self.outages = Counter(
            "recall_outages", "Outages by server (a batch or send had to wait and retry)",
            ["server"], registry=r)
        self.broker_resets = Counter("recall_broker_resets", "Clicks topic found recreated",
                                     registry=r)
        self.streamed_items = Gauge(
            "recall_streamed_items",
            "Streamed vectors of items the model was not trained on, held by this worker",
            registry=r)
        for server in SERVERS:
            self.retries.labels(server)
            self.outages.labels(server)
        for agent in ("recommend", "upsert_items"):
            self.batch_size.labels(agent)

    def click_batch(self, size: int, recommendations: int, timings: Mapping[str, float],
                    counts: Mapping[str, int], ages_s: Sequence[float]) -> None:
        """One click batch done: its size, stage times, output counts and click ages."""
        self.clicks.inc(size)
        self.recommendations.inc(recommendations)
        self.batch_size.labels("recommend").observe(size)
        self.observe_stages(timings)
        for age in ages_s:
            self.click_to_publish.observe(max(age, 0.0))
        self.recalled(counts.get("popular_fallbacks", 0),
                      counts.get("history_items_without_vector", 0))
        self.broker_resets.inc(counts.get("broker_resets", 0))
        stats = self.stats
        stats.observe("click_step_ms", 1000 * sum(v for k, v in timings.items()
                                                  if k not in ("publish", "consume")))
        for stage in ("consume", "search", "publish"):
            if stage in timings:
                stats.observe(f"click_{stage}_ms", 1000 * timings[stage])
        stats.observe("click_publish_ms", 1000 * timings.get("publish", 0.0))
        stats.observe("clicks_per_batch", size)
        stats.add("clicks", size)
        stats.add("recommendations", recommendations)
        for name, count in counts.items():
            stats.add(name, count)

    def item_batch(self, size: int, applied: int) -> None:
        self.batch_size.labels("upsert_items").observe(size)
        self.items.inc(applied)
        self.stats.add("items", applied)

    def delivered(self, letters: Sequence[tuple[bytes | None, bytes]], lost: int,
                  unpublishable: int) -> None:
        """Dead letters published (by topic and reason), lost, and records not publishable."""
        for _, value in letters:
            try:
                record = json.loads(value)
                topic, reason = str(record["topic"]), reason_label(str(record["reason"]))
            except (ValueError, KeyError, TypeError):
                topic, reason = "unknown", "other"
            self.dead_letters.labels(topic, reason).inc()
        self.dead_letters_lost.inc(lost)
        self.stats.add("unpublishable_records", unpublishable)
        self.stats.add("dead_letters", len(letters))
        self.stats.add("dead_letters_lost", lost)

    def retry(self, exc: BaseException, first: bool, server: str | None = None) -> None:
        """A retry after `exc`; `first`: the first of a run (an outage begins)."""
        name = server or server_of(exc)
        self.retries.labels(name).inc()
        if first:
            self.outages.labels(name).inc()

    def reloaded(self, version: str) -> None:
        self.model_reloads.inc()
        self.set_model(version)
        self.stats.add("model_reloads")

    def set_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Replace the lag series with those of the current assignment."""
        self.consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic, str(partition)).set(max(lag, 0))

    def report(self) -> str:
        return self.stats.report()


class ApiMetrics(Metrics):
    """The HTTP API's metrics: requests by route and status, and their latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.requests = Counter("recall_api_requests", "HTTP requests by route and status",
                                ["path", "status"], registry=self.registry)
        self.request_seconds = Histogram(
            "recall_api_request_seconds", "HTTP request latency by route", ["path"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
