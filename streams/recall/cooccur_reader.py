"""Reading the co-occurrence channel from Redis: one script call per batch (near.lua) returns
the neighbours of the batch's history items as packed doubles, the live popular items and the
newest counted data time; every row is scored at once (model.cooccur.rank_batch, the same
floats as the reference rule). The counts are written by the history append script
(streams/stores/lua/append.lua), in the same call that appends the clicks.

Scoring used to run inside Redis (Lua): 55 ms of Redis' one core per batch of 64 users. Here
Redis only reads and packs (still ~0.1-0.2 ms per item: formatting 100 scores), so a cache keeps
each item's neighbours: an entry older than `cache_s` is stale, and each batch re-reads every
item it has never seen plus at most `refresh` of its stale items, the stalest first. Redis' cost
per batch is bounded however fast clicks come; at a low rate every list is at most `cache_s`
old, under load the lists a batch uses age instead of Redis running out. A cached list is older
than the counts, never newer: `counts_ts` (read in the same call) stays an upper bound of every
click the lists hold."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.cooccur import CooccurConfig, NearArrays, rank_batch, recent_distinct
from model.ranking import Excluded, Ranked
from model.transitions import next_items, rank_next
from streams.stores.history import unavailable
from streams.stores.scripts import lua_script

NEAR_LUA = lua_script("near.lua")
Followers = tuple[np.ndarray, np.ndarray]  # an item's followers and their shares (t / out)


@dataclass(frozen=True)
class CooccurLists:
    """One read: each row's co-occurrence candidates and `next` candidates (flat rankings,
    model.ranking.Ranked; `lists` and `next_lists` give them as (items, scores) per row, best
    first); the live popular items (most clicked first, counts decayed like the pairs); the
    newest counted data time."""

    ranked: Ranked
    popular: list[int]
    counts_ts: float | None
    next_ranked: Ranked | None = None

    @property
    def lists(self) -> list[tuple[list[int], list[float]]]:
        return self.ranked.pairs()

    @property
    def next_lists(self) -> list[tuple[list[int], list[float]]]:
        return self.next_ranked.pairs() if self.next_ranked is not None else []


def unpack(packed: bytes) -> NearArrays:
    """near.lua's string for one item: n, base, then (j, value) pairs, little-endian doubles."""
    a = np.frombuffer(packed, dtype="<f8")
    pairs = a[2:].reshape(-1, 2)
    return NearArrays(float(a[0]), float(a[1]), pairs[:, 0].astype(np.int64),
                      np.ascontiguousarray(pairs[:, 1]))


def unpack_followers(packed: bytes) -> Followers:
    """near.lua's transition string for one item: (j, share) pairs, little-endian doubles."""
    pairs = np.frombuffer(packed, dtype="<f8").reshape(-1, 2)
    return pairs[:, 0].astype(np.int64), np.ascontiguousarray(pairs[:, 1])


class CooccurReader:
    """Scores rows against the counts through the history store's Redis client, one script
    call per batch. `cache_s`: age at which a cached item's lists are stale (0: no cache,
    every batch reads every list); `refresh`: stale entries re-read per batch, the stalest
    first; `cache_items`: past this many cached entries the cache starts afresh (bounded
    memory). Transitions (the `next` channel) are read and scored when `cfg` counts them
    (`next_window` > 0; streams.recall.core sets it to 0 when the channel is off)."""

    def __init__(self, client: Any, cfg: CooccurConfig, prefix: str = "co:",
                 cache_s: float = 0.0, refresh: int = 32, cache_items: int = 100_000) -> None:
        self.cfg = cfg
        self.prefix = prefix
        self.cache_s = cache_s
        self.refresh = refresh
        self.cache_items = cache_items
        self.next = cfg.next_window > 0
        self._client = client
        self._near = client.register_script(NEAR_LUA)
        # (kind, item) -> (read at, lists); kind "c": co-occurrence, "x": transitions
        self._cache: dict[tuple[str, int], tuple[float, Any]] = {}
        self._n_base: bytes | None = None  # the counts' base the cached values stand against

    def start(self) -> None:
        with unavailable("script load"):
            self._client.script_load(NEAR_LUA)

    def _call(self, missing: Sequence[tuple[str, int]], popular: int
              ) -> tuple[bytes, bytes, list, dict[tuple[str, int], Any]]:
        co = [i for kind, i in missing if kind == "c"]
        nx = [i for kind, i in missing if kind == "x"]
        args = [self.prefix, self.cfg.read, self.cfg.normalize, popular, len(co),
                self.cfg.next_read, *co, *nx]
        with unavailable("cooccur read"):
            n_base, counts_ts, pop, packed, xpacked = self._near(args=args)
        got: dict[tuple[str, int], Any] = {("c", i): unpack(d) for i, d in zip(co, packed,
                                                                                 strict=True)}
        got.update((("x", i), unpack_followers(d)) for i, d in zip(nx, xpacked, strict=True))
        return n_base, counts_ts, pop, got

    def _wanted(self, histories: Sequence[Sequence[int]]) -> list[tuple[str, int]]:
        co = [("c", i) for h in histories for i in recent_distinct(h, self.cfg.window)]
        nx = [("x", i) for h in histories for i in next_items(h, self.cfg)] if self.next else []
        return list(dict.fromkeys(co + nx))

    def read(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
             top_k: int, popular: int = 0) -> CooccurLists:
        """Each history's top_k co-occurrence (and `next`) candidates without its `exclude`
        row, and the `popular` most clicked items."""
        wanted = self._wanted(histories)
        now = time.monotonic()
        cached = {w: e for w in wanted if (e := self._cache.get(w)) is not None} \
            if self.cache_s > 0 else {}
        stale = sorted((e[0], w) for w, e in cached.items() if now - e[0] >= self.cache_s)
        for _, w in stale[:self.refresh]:
            del cached[w]
        kept = {w: e[1] for w, e in cached.items()}
        missing = [w for w in wanted if w not in kept]
        n_base, counts_ts, pop, got = self._call(missing, popular)
        if n_base != self._n_base:  # the counts were rebased: cached values no longer apply
            self._cache.clear()
            self._n_base = n_base
            if kept:
                kept, missing = {}, wanted
                n_base, counts_ts, pop, got = self._call(missing, popular)
        if self.cache_s > 0:
            if len(self._cache) + len(missing) > self.cache_items:
                self._cache.clear()
            self._cache.update((w, (now, got[w])) for w in missing)
        got.update(kept)
        base = float(n_base) if n_base not in (b"", "") else 0.0
        near = {i: v for (kind, i), v in got.items() if kind == "c"}
        drop = Excluded(exclude)  # flattened once for both channels
        ranked = rank_batch(histories, near, base, self.cfg, drop, top_k)
        follow = {i: v for (kind, i), v in got.items() if kind == "x"}
        next_ranked = rank_next(histories, follow, self.cfg, drop, top_k) if self.next \
            else None
        return CooccurLists(ranked, [int(i) for i in pop],
                            float(counts_ts) if counts_ts not in (b"", "") else None,
                            next_ranked)
