"""Co-occurrence counts and transitions in a real Redis against the brute-force reference
(model.cooccur, model.transitions): exact under redelivery, with decay and rebasing, the memory
bound, the watermark queue, and the reader's scores."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from harness.stack.servers import LocalStack
from model.cooccur import CooccurConfig, CooccurCounts, CountsView, Neighbours, score_users
from model.transitions import recall_next
from streams.recall.cooccur_reader import CooccurReader
from streams.stores.history import ClickAt, HistoryStore
from tests.integration.conftest import empty_store

pytestmark = pytest.mark.integration

WATERMARK = "test:watermark"


def stream(n: int, users: int, items: int, seed: int) -> list[ClickAt]:
    """Clicks in time order with repeats, equal times and long gaps (days)."""
    rng = random.Random(seed)
    ts, out = 1_000_000.0, []
    for offset in range(n):
        ts += rng.choice([0.0, 1.0, 3.5, 7200.25, 3 * 86400.0])
        user = rng.randrange(users) + 1
        out.append(ClickAt(user, rng.randrange(items) + 1, ts, user % 4, offset))
    return out


def reference(clicks: list[ClickAt], cfg: CooccurConfig) -> CooccurCounts:
    ref = CooccurCounts(cfg)
    for c in clicks:
        ref.add(c.user_id, c.item_id, c.ts)
    return ref


def stored(store: HistoryStore) -> tuple[dict[int, dict[int, float]], dict[int, float]]:
    """Every neighbour set and count as Redis holds them."""
    r, p = store.client, store.co_prefix
    sets = {}
    for key in r.scan_iter(match=f"{p}*"):
        name = key.decode()[len(p):]
        if name.isdigit():
            sets[int(name)] = {int(m): s for m, s in r.zrange(key, 0, -1, withscores=True)}
    counts = {int(m): s for m, s in r.zrange(f"{p}n", 0, -1, withscores=True)}
    return sets, counts


def stored_next(store: HistoryStore) -> tuple[dict[int, dict[int, float]], dict[int, float]]:
    """Every follower set and out count as Redis holds them."""
    r, p = store.client, store.co_prefix
    sets = {}
    for key in r.scan_iter(match=f"{p}x*"):
        name = key.decode()[len(p) + 1:]
        if name.isdigit():
            sets[int(name)] = {int(m): s for m, s in r.zrange(key, 0, -1, withscores=True)}
    return sets, {int(m): s for m, s in r.zrange(f"{p}xo", 0, -1, withscores=True)}


@pytest.fixture()
def co_store(stack: LocalStack, request: pytest.FixtureRequest) -> Iterator[HistoryStore]:
    cfg, mode = request.param  # mode: True (a watermark), False, or "defer"
    with empty_store(stack.settings.redis_url, 10, seen_max=50, cooccur=cfg,
                     watermark_key=WATERMARK if mode is True else None,
                     defer_counts=mode == "defer") as store:
        store.client.delete(WATERMARK)
        yield store


NO_DECAY = CooccurConfig(cap=12, next_cap=4)
DECAY = CooccurConfig(cap=12, half_life_s=3600.0, next_cap=4)  # rebases many times
NO_DECAY_READ = CooccurConfig(cap=12, normalize="read")


@pytest.mark.parametrize("co_store", [(NO_DECAY, False), (DECAY, False)], indirect=True)
def test_counts_stay_exact_when_batches_are_redelivered(co_store: HistoryStore) -> None:
    clicks = stream(3000, users=40, items=60, seed=1)
    rng = random.Random(2)
    for start in range(0, len(clicks), 37):
        co_store.append(clicks[start:start + 37])
        if rng.random() < 0.4:  # a worker killed before its commit: the batch comes again,
            co_store.append(clicks[max(0, start - 50):start + 37])  # with older clicks too
    ref = reference(clicks, co_store.cooccur or NO_DECAY)
    sets, counts = stored(co_store)
    assert sets == ref.co  # every stored weight, to the last bit
    assert counts == ref.n
    follows, out = stored_next(co_store)
    assert follows == ref.nx and out == ref.out  # transitions too, cut at next_cap
    assert max(len(f) for f in follows.values()) == 4
    assert float(co_store.client.get(f"{co_store.co_prefix}ts")) == clicks[-1].ts


@pytest.mark.parametrize("co_store", [(CooccurConfig(cap=5), False)], indirect=True)
def test_memory_stays_bounded_by_the_cap(co_store: HistoryStore) -> None:
    clicks = stream(4000, users=50, items=200, seed=3)
    for start in range(0, len(clicks), 64):
        co_store.append(clicks[start:start + 64])
    sets, _ = stored(co_store)
    assert len(sets) == 200
    assert max(len(s) for s in sets.values()) == 5  # without the cap: dozens per item
    assert sets == reference(clicks, CooccurConfig(cap=5)).co


@pytest.mark.parametrize("co_store", [(DECAY, True)], indirect=True)
def test_watermark_holds_clicks_until_it_reaches_them(co_store: HistoryStore) -> None:
    clicks = stream(1500, users=30, items=50, seed=4)
    r, p = co_store.client, co_store.co_prefix
    for start in range(0, len(clicks), 25):
        co_store.append(clicks[start:start + 25])
        mark = clicks[max(0, start - 200)].ts
        r.set(WATERMARK, repr(mark))
        counted = r.get(f"{p}ts")
        assert counted is None or float(counted) <= mark  # nothing past the mark counted
    assert r.zcard(f"{p}q") > 0  # the last clicks still wait
    r.set(WATERMARK, "inf")
    co_store.count_due()
    assert r.zcard(f"{p}q") == 0
    sets, counts = stored(co_store)
    ref = reference(clicks, DECAY)
    assert sets == ref.co and counts == ref.n  # the same counts, in the same order
    assert stored_next(co_store) == (ref.nx, ref.out)


@pytest.mark.parametrize("co_store", [(DECAY, "defer")], indirect=True)
def test_deferred_counts_are_queued_by_the_append_and_counted_once(
        co_store: HistoryStore) -> None:
    """RECALL_COOCCUR_DEFER: the append queues its applied clicks under the replay guard and
    counts none; count_due (the worker's reader, beside the recall) counts every queued click
    once, however often batches are redelivered or how many wait."""
    clicks = stream(3000, users=40, items=60, seed=1)
    r, p = co_store.client, co_store.co_prefix
    co_store.append(clicks[:37])
    assert r.zcard(f"{p}q") == 37 and stored(co_store) == ({}, {})  # queued, none counted
    rng = random.Random(2)
    for start in range(37, len(clicks), 37):
        co_store.append(clicks[start:start + 37])
        if rng.random() < 0.4:  # redelivered, with older clicks too
            co_store.append(clicks[max(0, start - 50):start + 37])
        if rng.random() < 0.7:  # some batches' counts wait for a later call
            co_store.count_due()
    co_store.count_due()
    assert r.zcard(f"{p}q") == 0
    ref = reference(clicks, DECAY)
    assert stored(co_store) == (ref.co, ref.n)  # every weight to the last bit
    assert stored_next(co_store) == (ref.nx, ref.out)
    assert float(r.get(f"{p}ts")) == clicks[-1].ts


@pytest.mark.parametrize("co_store", [(DECAY, False), (NO_DECAY_READ, False)], indirect=True)
def test_redis_scores_as_the_reference_does(co_store: HistoryStore) -> None:
    cfg = co_store.cooccur or DECAY
    clicks = stream(2000, users=30, items=80, seed=5)
    co_store.append(clicks)
    ref = reference(clicks, cfg)
    reader = CooccurReader(co_store.client, cfg, co_store.co_prefix)
    reader.start()
    histories = [ref.histories[u] for u in sorted(ref.histories)]
    exclude = [h[-3:] for h in histories]
    got = reader.read(histories, exclude, 20, popular=10)
    assert got.lists == ref.recall(histories, exclude, 20)  # the same floats, the same order
    assert got.next_lists == recall_next(ref, histories, exclude, 20)
    assert all(ids and not set(ids) & set(ex)
               for (ids, _), ex in zip(got.next_lists, exclude, strict=True))
    assert all(len(ids) == 20 and not set(ids) & set(ex)
               for (ids, _), ex in zip(got.lists, exclude, strict=True))
    assert got.counts_ts == clicks[-1].ts
    assert got.popular == sorted(ref.n, key=lambda i: (ref.n[i], str(i)), reverse=True)[:10]


def half_counted(store: HistoryStore, seed: int
                 ) -> tuple[CooccurConfig, list[ClickAt], CooccurReader]:
    """A stream of 1,500 clicks with its first 1,000 counted, and a reader caching for an hour."""
    cfg = store.cooccur or NO_DECAY_READ
    clicks = stream(1500, users=20, items=50, seed=seed)
    store.append(clicks[:1000])
    return cfg, clicks, CooccurReader(store.client, cfg, store.co_prefix, cache_s=3600.0)


@pytest.mark.parametrize("co_store", [(NO_DECAY_READ, False)], indirect=True)
def test_cached_lists_are_older_than_the_counts_never_newer(co_store: HistoryStore) -> None:
    cfg, clicks, cached = half_counted(co_store, seed=8)
    fresh = CooccurReader(co_store.client, cfg, co_store.co_prefix, cache_s=0.0)
    before = reference(clicks[:1000], cfg)
    histories = [before.histories[u] for u in sorted(before.histories)]
    exclude = [h[-2:] for h in histories]
    first = cached.read(histories, exclude, 20)
    assert first.lists == before.recall(histories, exclude, 20)
    co_store.append(clicks[1000:])
    again, now = cached.read(histories, exclude, 20), fresh.read(histories, exclude, 20)
    assert again.lists == first.lists  # every item cached: the lists of the first read
    assert now.lists == reference(clicks, cfg).recall(histories, exclude, 20) != first.lists
    assert again.counts_ts == now.counts_ts == clicks[-1].ts  # an upper bound of what they hold
    cached.cache_s = 0.0  # expired: read afresh
    assert cached.read(histories, exclude, 20).lists == now.lists


@pytest.mark.parametrize("co_store", [(DECAY, False)], indirect=True)
def test_a_rebase_of_the_counts_empties_the_cache(co_store: HistoryStore) -> None:
    cfg, clicks, cached = half_counted(co_store, seed=9)
    histories = [reference(clicks[:1000], cfg).histories[u] for u in range(1, 21)]
    cached.read(histories, histories, 20)
    base = co_store.client.get(f"{co_store.co_prefix}nb")
    co_store.append(clicks[1000:])
    assert co_store.client.get(f"{co_store.co_prefix}nb") != base  # the counts were rebased
    got = cached.read(histories, histories, 20)
    assert got.lists == reference(clicks, cfg).recall(histories, histories, 20)


@pytest.mark.parametrize("co_store", [(NO_DECAY_READ, False)], indirect=True)
def test_each_batch_rereads_at_most_refresh_stale_lists_the_stalest_first(
        co_store: HistoryStore) -> None:
    cfg = co_store.cooccur or NO_DECAY_READ
    clicks = stream(600, users=10, items=40, seed=4)
    co_store.append(clicks)
    reader = CooccurReader(co_store.client, cfg, co_store.co_prefix, cache_s=3600.0, refresh=3)
    histories = [reference(clicks, cfg).histories[u] for u in range(1, 11)]
    reader.read(histories[:5], histories[:5], 10)
    first = {i: t for i, (t, _) in reader._cache.items()}
    reader.cache_s = 1e-9  # every cached list is stale now
    reader.read(histories, histories, 10)
    again = {i: t for i, (t, _) in reader._cache.items()}
    reread = {i for i in first if again[i] != first[i]}
    assert len(reread) == 3  # the refresh budget, though every cached list was stale
    assert set(again) - set(first)  # items never cached are read whatever the budget


@pytest.mark.parametrize("co_store", [(NO_DECAY_READ, False)], indirect=True)
def test_an_item_with_thousands_of_neighbours_reads_whole(co_store: HistoryStore) -> None:
    """More neighbours than one Lua unpack() can take (~8,000 values): read in pieces."""
    r, p = co_store.client, co_store.co_prefix
    neighbours = {j: float(j % 7 + 1) for j in range(2, 5002)}
    r.zadd(f"{p}1", {str(j): co for j, co in neighbours.items()})
    r.zadd(f"{p}n", {"1": 3.0, **{str(j): float(j % 5 + 1) for j in neighbours}})
    cfg = CooccurConfig(cap=6000, read=6000)
    got = CooccurReader(r, cfg, p).read([[1]], [[]], 6000)
    view = CountsView(near={1: Neighbours(0.0, 3.0, sorted(
        neighbours.items(), key=lambda kv: (kv[1], str(kv[0])), reverse=True))},
        n={j: float(j % 5 + 1) for j in neighbours})
    assert len(got.lists[0][0]) == 5000
    assert got.lists == score_users([[1]], view, cfg, [[]], 6000)
