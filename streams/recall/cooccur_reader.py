"""Reading the co-occurrence channel from Redis: one script call per batch (near.lua) returns
the neighbours of the batch's history items as packed doubles, the live popular items and the
newest counted data time; numpy scores every row at once (model.cooccur.score_batch, the same
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

from model.cooccur import CooccurConfig, NearArrays, recent_distinct, score_batch
from streams.stores.history import unavailable
from streams.stores.scripts import lua_script

NEAR_LUA = lua_script("near.lua")


@dataclass(frozen=True)
class CooccurLists:
    """One read: each row's candidates (items, scores), best first; the live popular items
    (most clicked first, counts decayed like the pairs); the newest counted data time."""

    lists: list[tuple[list[int], list[float]]]
    popular: list[int]
    counts_ts: float | None


def unpack(packed: bytes) -> NearArrays:
    """near.lua's string for one item: n, base, then (j, value) pairs, little-endian doubles."""
    a = np.frombuffer(packed, dtype="<f8")
    pairs = a[2:].reshape(-1, 2)
    return NearArrays(float(a[0]), float(a[1]), pairs[:, 0].astype(np.int64),
                      np.ascontiguousarray(pairs[:, 1]))


class CooccurReader:
    """Scores rows against the counts through the history store's Redis client, one script
    call per batch. `cache_s`: age at which a cached item's neighbours are stale (0: no cache,
    every batch reads every list); `refresh`: stale items re-read per batch, the stalest first;
    `cache_items`: past this many cached items the cache starts afresh (bounded memory)."""

    def __init__(self, client: Any, cfg: CooccurConfig, prefix: str = "co:",
                 cache_s: float = 0.0, refresh: int = 32, cache_items: int = 100_000) -> None:
        self.cfg = cfg
        self.prefix = prefix
        self.cache_s = cache_s
        self.refresh = refresh
        self.cache_items = cache_items
        self._client = client
        self._near = client.register_script(NEAR_LUA)
        self._cache: dict[int, tuple[float, NearArrays]] = {}
        self._n_base: bytes | None = None  # the counts' base the cached values stand against

    def start(self) -> None:
        with unavailable("script load"):
            self._client.script_load(NEAR_LUA)

    def _call(self, items: Sequence[int], popular: int) -> tuple[bytes, bytes, list, list]:
        args = [self.prefix, self.cfg.read, self.cfg.normalize, popular, *items]
        with unavailable("cooccur read"):
            n_base, counts_ts, pop, packed = self._near(args=args)
        return n_base, counts_ts, pop, packed

    def read(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
             top_k: int, popular: int = 0) -> CooccurLists:
        """Each history's top_k co-occurrence candidates without its `exclude` row, and the
        `popular` most clicked items."""
        wanted = list(dict.fromkeys(i for h in histories
                                    for i in recent_distinct(h, self.cfg.window)))
        now = time.monotonic()
        cached = {i: e for i in wanted if (e := self._cache.get(i)) is not None} \
            if self.cache_s > 0 else {}
        stale = sorted((e[0], i) for i, e in cached.items() if now - e[0] >= self.cache_s)
        for _, i in stale[:self.refresh]:
            del cached[i]
        kept = {i: e[1] for i, e in cached.items()}
        missing = [i for i in wanted if i not in kept]
        n_base, counts_ts, pop, packed = self._call(missing, popular)
        if n_base != self._n_base:  # the counts were rebased: cached values no longer apply
            self._cache.clear()
            self._n_base = n_base
            if kept:
                kept, missing = {}, wanted
                n_base, counts_ts, pop, packed = self._call(missing, popular)
        near = dict(kept)
        for i, data in zip(missing, packed, strict=True):
            near[i] = unpack(data)
        if self.cache_s > 0:
            if len(self._cache) + len(missing) > self.cache_items:
                self._cache.clear()
            self._cache.update((i, (now, near[i])) for i in missing)
        base = float(n_base) if n_base not in (b"", "") else 0.0
        lists = score_batch(histories, near, base, self.cfg, exclude, top_k)
        return CooccurLists(lists, [int(i) for i in pop],
                            float(counts_ts) if counts_ts not in (b"", "") else None)
