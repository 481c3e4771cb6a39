"""streams.observe.metrics: label classification, what a batch records, exposition format."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.errors import ServiceUnavailable
from streams.observe.metrics import ApiMetrics, WorkerMetrics, reason_label, server_of
from streams.records import DEFAULT_LIMITS, Click
from streams.worker.pipeline import RawMessage, dead_letter


def samples(metrics: WorkerMetrics | ApiMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                         float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def reason_of(raw: bytes | None) -> str:
    try:
        Click.parse(raw, DEFAULT_LIMITS)
    except Exception as exc:
        return str(exc)
    raise AssertionError("parsed")


@pytest.mark.parametrize(("raw", "label"), [
    (b"{oops", "not_json"),
    (b"[1]", "not_json"),
    (None, "empty"),
    (b'{"user_id": 1}', "schema"),
    (b'{"user_id": 1, "item_id": 1, "ts": 1, "x": 2}', "schema"),
    (b'{"user_id": "a", "item_id": 1, "ts": 1}', "bad_id"),
    (b'{"user_id": 1, "item_id": -1, "ts": 1}', "bad_id"),
    (b'{"user_id": 1, "item_id": 1, "ts": -1}', "bad_ts"),
    (b'{"user_id": 1, "item_id": 1, "ts": 1e12}', "bad_ts"),
    (b"x" * 5000, "too_large"),
])
def test_every_click_rejection_has_a_reason_label(raw: bytes | None, label: str) -> None:
    assert reason_label(reason_of(raw)) == label


def test_other_reasons() -> None:
    assert reason_label("could not publish: too big") == "unpublishable"
    assert reason_label("processing failed: ValueError()") == "processing_failed"
    assert reason_label("vector is all zeros") == "bad_vector"
    assert reason_label("something new") == "other"


def test_server_of_an_outage() -> None:
    assert server_of(ServiceUnavailable("redis append failed: x")) == "redis"
    assert server_of(ServiceUnavailable("milvus search failed: x")) == "milvus"
    assert server_of(ConnectionError("broker")) == "kafka"


def test_worker_metrics_record_a_batch_and_its_dead_letters() -> None:
    m = WorkerMetrics()
    m.click_batch(64, 63, {"parse": 0.001, "redis": 0.002, "model": 0.003, "search": 0.02,
                           "merge": 0.001, "publish": 0.005},
                  {"popular_fallbacks": 2, "history_items_without_vector": 3, "broker_resets": 1},
                  [0.05, 0.2])
    bad = RawMessage("clicks", 3, 17, b"k", b"{oops")
    m.delivered([dead_letter(bad, reason_of(b"{oops"))], lost=1, unpublishable=0)
    m.retry(ServiceUnavailable("redis append failed"), first=True)
    m.retry(ServiceUnavailable("redis append failed"), first=False)
    m.set_lag({("clicks", 0): 5, ("clicks", 1): -1})
    m.set_model("v1")
    m.set_model("v2")
    m.item_batch(10, 9)
    got = samples(m)
    assert got[("recall_clicks_consumed_total", ())] == 64
    assert got[("recall_recommendations_published_total", ())] == 63
    assert got[("recall_dead_letters_total", (("reason", "not_json"), ("topic", "clicks")))] == 1
    assert got[("recall_dead_letters_lost_total", ())] == 1
    assert got[("recall_batch_size_sum", (("agent", "recommend"),))] == 64
    assert got[("recall_batch_size_count", (("agent", "upsert_items"),))] == 1
    assert got[("recall_items_consumed_total", ())] == 9
    assert got[("recall_stage_seconds_count", (("stage", "search"),))] == 1
    assert got[("recall_click_to_publish_seconds_count", ())] == 2
    assert got[("recall_popular_fallbacks_total", ())] == 2
    assert got[("recall_history_items_without_vector_total", ())] == 3
    assert got[("recall_broker_resets_total", ())] == 1
    assert got[("recall_retries_total", (("server", "redis"),))] == 2
    assert got[("recall_outages_total", (("server", "redis"),))] == 1
    assert got[("recall_outages_total", (("server", "milvus"),))] == 0  # every server listed
    assert got[("recall_consumer_lag", (("partition", "0"), ("topic", "clicks")))] == 5
    assert got[("recall_consumer_lag", (("partition", "1"), ("topic", "clicks")))] == 0
    assert ("recall_model_info", (("version", "v1"),)) not in got
    assert got[("recall_model_info", (("version", "v2"),))] == 1
    assert "clicks=64" in m.report() and "dead_letters=1" in m.report()


def test_api_metrics_have_no_worker_series_and_registries_are_separate() -> None:
    api, other = ApiMetrics(), ApiMetrics()
    api.requests.labels("/recall", "200").inc()
    api.observe_stages({"model": 0.01})
    api.set_servers({"milvus": True, "model": False})
    got = samples(api)
    assert got[("recall_api_requests_total", (("path", "/recall"), ("status", "200")))] == 1
    assert got[("recall_server_up", (("server", "model"),))] == 0
    assert not any(name.startswith("recall_clicks") for name, _ in got)
    assert ("recall_api_requests_total", (("path", "/recall"), ("status", "200"))) not in samples(
        other)
