"""HistoryStore against a real Redis and a real 3-node Redis Cluster: time order, truncation,
replay guard, one script call per hash slot, seen items, expiry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from harness.stack.servers import LocalStack
from streams.stores.history import ClickAt, HistoryStore, UserState
from tests.integration.conftest import empty_store
from tests.integration.redis_cluster import redis_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, stack: LocalStack) -> tuple[str, bool]:
    """Every test of this module runs on the stack's Redis and on a Redis Cluster."""
    cluster = request.param == "cluster"
    return (request.getfixturevalue("cluster_url") if cluster else stack.settings.redis_url,
            cluster)


@pytest.fixture()
def redis_store(redis_url: tuple[str, bool], stack: LocalStack) -> Iterator[HistoryStore]:
    url, cluster = redis_url
    with empty_store(url, stack.settings.history_len, cluster) as store:
        yield store


@pytest.fixture()
def seen_store(redis_url: tuple[str, bool]) -> Iterator[HistoryStore]:
    """A store keeping the last 4 clicks and 5 seen items, whose hashes expire after 60 s."""
    url, cluster = redis_url
    with empty_store(url, 4, cluster, seen_max=5, ttl_s=60.0) as store:
        yield store


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


def test_a_batch_over_many_slots_and_nodes_matches_one_by_one(
        redis_store: HistoryStore) -> None:
    """200 users (slots on every node), 3 clicks each, as one batch: each user's history is
    what appending its clicks alone gives; on a cluster the keys stay where Redis puts them."""
    users = range(9000, 9200)
    batch = [ClickAt(u, u * 10 + i, 100.0 + i, u % 4, i) for i in range(3) for u in users]
    calls = redis_store.calls(batch)
    assert len(calls) == (len({redis_store.slot(u) for u in users}) if redis_store.cluster
                          else 1)
    out = redis_store.append(batch)
    assert out == {u: [u * 10, u * 10 + 1, u * 10 + 2] for u in users}
    assert redis_store.get(list(users)) == out
    assert redis_store.append(batch) == out  # replayed whole: the guard holds on every node
    if redis_store.cluster:
        client = redis_store._client
        assert isinstance(client, RedisCluster)
        nodes = {client.get_node_from_key(redis_store.key(u)).name for u in users}
        assert len(nodes) == 3
        client.script_flush()  # e.g. a node restarted: its EVALSHAs fail, are run again
        more = [ClickAt(u, 7, 200.0, 0, 10) for u in users]
        assert redis_store.append(more) == {u: [*out[u], 7] for u in users}
        out = redis_store.get(list(users))
    redis_store.clear_users(list(users)[:100])
    assert all(h == [] for h in redis_store.get(list(users)[:100]).values())
    redis_store.flush()
    assert all(h == [] for h in redis_store.get(list(users)).values())


def test_seen_items_are_capped_least_recent_first_and_unique(seen_store: HistoryStore) -> None:
    out = seen_store.append_seen([ClickAt(1, i, float(i), 0, i) for i in range(1, 8)])
    assert out == {1: UserState([4, 5, 6, 7], [3, 4, 5, 6, 7])}
    # a click again moves its item to the newest end; the least recent goes past seen_max
    out = seen_store.append_seen([ClickAt(1, 4, 8.0, 0, 8), ClickAt(1, 8, 9.0, 0, 9)])
    assert out == {1: UserState([6, 7, 4, 8], [5, 6, 7, 4, 8])}
    out = seen_store.append_seen([ClickAt(1, 6, 10.0, 0, 10), ClickAt(1, 6, 11.0, 0, 11)])
    assert out[1].seen == [5, 7, 4, 8, 6]
    assert seen_store.seen([1, 2]) == {1: [5, 7, 4, 8, 6], 2: []}
    assert seen_store.append([]) == {} and seen_store.get([1]) == {1: out[1].history}
    assert seen_store._client.hget(seen_store.key(1), "s") == b"5 7 4 8 6"


def test_a_replayed_click_is_not_seen_twice(seen_store: HistoryStore) -> None:
    batch = [ClickAt(u, 10 + i, 1.0 + i, 0, i) for i in range(3) for u in (1, 2)]
    first = seen_store.append_seen(batch)
    assert first[1].seen == [10, 11, 12]
    raw = {u: seen_store._client.hgetall(seen_store.key(u)) for u in (1, 2)}
    assert seen_store.append_seen(batch[:2]) == {1: first[1], 2: first[2]}  # item 10 again
    assert {u: seen_store._client.hgetall(seen_store.key(u)) for u in (1, 2)} == raw


def test_hashes_expire_only_when_a_ttl_is_set(seen_store: HistoryStore,
                                              redis_store: HistoryStore) -> None:
    seen_store.append([ClickAt(1, 10, 1.0, 0, 0)])
    redis_store.append([ClickAt(2, 10, 1.0, 0, 0)])
    assert 0 < seen_store._client.pttl(seen_store.key(1)) <= 60_000
    assert redis_store._client.pttl(redis_store.key(2)) == -1


def test_a_hash_without_seen_items_reads_as_none_seen(seen_store: HistoryStore,
                                                      redis_store: HistoryStore) -> None:
    """Hashes written before seen items existed (or with them off) have no `s` field."""
    redis_store.append([ClickAt(3, 10, 1.0, 0, 0), ClickAt(3, 11, 2.0, 0, 1)])
    assert b"s" not in redis_store._client.hgetall(redis_store.key(3))
    assert redis_store.append_seen([ClickAt(3, 12, 3.0, 0, 2)]) == {3: UserState([10, 11, 12], [])}
    assert seen_store.seen([3]) == {3: []}
    out = seen_store.append_seen([ClickAt(3, 11, 2.0, 0, 1), ClickAt(3, 13, 4.0, 0, 3)])
    assert out == {3: UserState([10, 11, 12, 13], [13])}  # offset 1: already applied
    assert out[3].excluded() == [13, 10, 11, 12]


def test_seen_items_over_many_slots(seen_store: HistoryStore) -> None:
    users = list(range(9000, 9100))
    batch = [ClickAt(u, u * 10 + i, 100.0 + i, 0, i) for i in range(3) for u in users]
    out = seen_store.append_seen(batch)
    assert all(out[u].seen == out[u].history == [u * 10, u * 10 + 1, u * 10 + 2] for u in users)
    assert seen_store.seen(users) == {u: out[u].seen for u in users}
