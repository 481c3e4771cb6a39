"""Latency percentiles, record following and formatting, and skipping malformed messages."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any

from consumers.kafka import poll_records
from consumers.recommendations import Deduplicator, LatencyStats, follow_records, format_line
from streams.records import Recommendation


def rec(user: int = 1, click_ts: float = 100.0, n: int = 8) -> Recommendation:
    return Recommendation(user_id=user, item_ids=list(range(10, 10 + n)),
                          scores=[1.0 - i / 10 for i in range(n)], model_version="v3",
                          click_item=42, click_ts=click_ts, emit_ts=click_ts + 0.01,
                          history=[41, 42])


def test_latency_percentiles_nearest_rank() -> None:
    stats = LatencyStats()
    for ms in range(1, 101):
        stats.add(ms)
    p = stats.percentiles()
    assert (p["count"], p["p50"], p["p90"], p["p99"], p["max"]) == (100, 50, 90, 99, 100)
    assert p["mean"] == 50.5
    assert "p99 99.0" in stats.summary()


def test_latency_stats_small_and_empty() -> None:
    empty = LatencyStats()
    assert len(empty) == 0 and math.isnan(empty.percentiles()["p50"])
    assert "no recommendations" in empty.summary()
    one = LatencyStats()
    one.add(7.5)
    assert one.percentiles()["p99"] == 7.5 and one.percentile(1) == 7.5


def test_follow_records_filters_user_and_measures_latency() -> None:
    records = [rec(1, 100.0), rec(2, 100.0), rec(1, 100.2)]
    out = list(follow_records(records, user=1, clock=lambda: 100.25))
    assert [r.user_id for r, _ in out] == [1, 1]
    assert [round(ms, 3) for _, ms in out] == [250.0, 50.0]


def test_format_line_shows_top_items_and_rest() -> None:
    line = format_line(rec(), 12.34, top=3)
    assert line == ("user 1 <- click 42 | 10:1.000 11:0.900 12:0.800 (+5) | model v3 | 12.3 ms")


class FakeConsumer:
    """Returns the queued batches one poll at a time, then nothing."""

    def __init__(self, values: list[Any]) -> None:
        msgs = [SimpleNamespace(topic="recommendations", partition=0, offset=i, value=v)
                for i, v in enumerate(values)]
        self.batches = [{"tp": msgs[:2]}, {"tp": msgs[2:]}]

    def poll(self, timeout_ms: int = 0) -> dict[str, list[Any]]:
        return self.batches.pop(0) if self.batches else {}


def test_poll_records_skips_malformed_messages() -> None:
    good = rec().to_bytes()
    consumer = FakeConsumer([b"{not json", good, None, json.dumps({"user_id": 1}).encode(), good])
    skipped: list[tuple[int, str]] = []
    out = list(poll_records(consumer, Recommendation, idle_timeout_s=0.0,  # type: ignore[arg-type]
                            report=lambda m, reason: skipped.append((m.offset, reason)),
                            poll_ms=0))
    assert [m.offset for m, _ in out] == [1, 4]
    assert all(r.user_id == 1 for _, r in out)
    assert [offset for offset, _ in skipped] == [0, 2, 3]


def test_poll_records_stops_at_max() -> None:
    consumer = FakeConsumer([rec(u).to_bytes() for u in (1, 2, 3, 4)])
    out = list(poll_records(consumer, Recommendation, max_records=3))  # type: ignore[arg-type]
    assert [r.user_id for _, r in out] == [1, 2, 3]


def test_deduplicator_drops_a_click_answered_twice() -> None:
    dedup = Deduplicator()
    first = rec(1, 100.0)
    again = rec(1, 100.0)  # redelivered: same click
    again.click_partition, again.click_offset = 2, 7
    other_user = rec(2, 100.0)
    later = rec(1, 100.5)
    assert [dedup.fresh(r) for r in (first, again, other_user, later)] == [True, False, True, True]
    assert dedup.dropped == 1 and dedup.summary() == "duplicates dropped: 1"


def test_deduplicator_keeps_a_new_click_at_a_reused_position() -> None:
    """After a broker reset offsets restart: another click at (partition, offset) is not a dup."""
    dedup = Deduplicator()
    old, new = rec(1, 100.0), rec(1, 200.0)
    for r in (old, new):
        r.click_partition, r.click_offset = 0, 5
    assert dedup.fresh(old) and dedup.fresh(new) and dedup.dropped == 0


def test_deduplicator_memory_is_bounded() -> None:
    dedup = Deduplicator(max_keys=2)
    for ts in (1.0, 2.0, 3.0):
        assert dedup.fresh(rec(1, ts))
    assert dedup.fresh(rec(1, 1.0))  # forgotten: the window is the last 2 clicks
    assert not dedup.fresh(rec(1, 3.0))
