"""HistoryStore against a real Redis: time order, truncation, replay guard, one round trip."""

from __future__ import annotations

import pytest

from streams.history import ClickAt, HistoryStore

pytestmark = pytest.mark.integration


def test_keeps_time_order_with_ties_by_arrival(redis_store: HistoryStore) -> None:
    clicks = [ClickAt(1, 10, 5.0, 0, 0), ClickAt(1, 11, 3.0, 0, 1),
              ClickAt(1, 12, 4.0, 0, 2), ClickAt(1, 13, 4.0, 0, 3)]
    assert redis_store.append(clicks) == {1: [11, 12, 13, 10]}
    assert redis_store.append([ClickAt(1, 14, 3.5, 0, 4)]) == {1: [11, 14, 12, 13, 10]}
    assert redis_store.get([1, 2]) == {1: [11, 14, 12, 13, 10], 2: []}


def test_truncates_to_history_len(redis_store: HistoryStore) -> None:
    n = redis_store.history_len
    out = redis_store.append([ClickAt(7, 100 + i, 1000.0 + i, 0, i) for i in range(n + 5)])
    assert out == {7: [100 + i for i in range(5, n + 5)]}
    # a click older than every kept one falls off at once
    assert redis_store.append([ClickAt(7, 999, 1.0, 0, n + 5)]) == out
    # a precise float ts survives storage exactly (ordering against a near-equal ts)
    out = redis_store.append([ClickAt(8, 1, 1700000000.123456, 0, 0)])
    out = redis_store.append([ClickAt(8, 2, 1700000000.123455, 0, 1)])
    assert out == {8: [2, 1]}


def test_repeating_a_batch_changes_nothing(redis_store: HistoryStore) -> None:
    batch = [ClickAt(u, 50 + i, 10.0 + i, u % 2, i) for i in range(6) for u in (1, 2, 3)]
    first = redis_store.append(batch)
    raw_before = {u: redis_store._client.hgetall(redis_store.key(u)) for u in (1, 2, 3)}
    assert redis_store.append(batch) == first
    assert redis_store.append(batch[:4]) == {1: first[1], 2: first[2], 3: first[3]}
    assert {u: redis_store._client.hgetall(redis_store.key(u)) for u in (1, 2, 3)} == raw_before


def test_partition_offsets_are_independent(redis_store: HistoryStore) -> None:
    redis_store.append([ClickAt(5, 1, 1.0, 0, 5), ClickAt(5, 2, 2.0, 1, 3)])
    # partition 1 offset 3 again and partition 0 offset 4 (< 5) are replays
    assert redis_store.append([ClickAt(5, 3, 3.0, 1, 3), ClickAt(5, 4, 4.0, 0, 4)]) == {5: [1, 2]}
    # partition 1 offset 4 is new even though partition 0 is at 5
    assert redis_store.append([ClickAt(5, 5, 5.0, 1, 4)]) == {5: [1, 2, 5]}


def test_empty_batch_touches_nothing(redis_store: HistoryStore) -> None:
    assert redis_store.append([]) == {}


def test_a_new_log_epoch_rebaselines_the_replay_guard(redis_store: HistoryStore) -> None:
    """A recreated topic (broker reset) starts offsets at 0 again: with the new topic id as
    epoch those clicks are applied, while a replay within one epoch still is not."""
    first = [ClickAt(4, 100 + i, 10.0 + i, 0, i, "topic-a") for i in range(5)]
    assert redis_store.append(first) == {4: [100, 101, 102, 103, 104]}
    assert redis_store.append(first[:2]) == {4: [100, 101, 102, 103, 104]}  # redelivered
    reset = [ClickAt(4, 200 + i, 20.0 + i, 0, i, "topic-b") for i in range(2)]
    assert redis_store.append(reset) == {4: [100, 101, 102, 103, 104, 200, 201]}
    assert redis_store.append(reset) == {4: [100, 101, 102, 103, 104, 200, 201]}
    raw = redis_store._client.hget(redis_store.key(4), "o0")
    assert raw == b"1 topic-b"
