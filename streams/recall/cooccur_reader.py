"""Reading the co-occurrence channel from Redis: one script call per batch (near.lua) returns
the neighbours of the batch's history items as packed doubles, the live popular items and the
newest counted data time; numpy scores every row at once (model.cooccur.score_batch, the same
floats as the reference rule). The counts are written by the history append script
(streams/stores/lua/append.lua), in the same call that appends the clicks.

Scoring used to run inside Redis (Lua): 55 ms of Redis' one core per batch of 64 users. Here
Redis only reads and packs, and a small cache (`cache_s`) keeps each item's neighbours for that
many seconds, so a popular item is read once per interval rather than once per batch. A cached
list is older than the counts, never newer: `counts_ts` (read in the same call) stays an upper
bound of every click the lists hold."""

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
    call per batch. `cache_s`: seconds an item's neighbours are reused (0: read every batch);
    `cache_items`: past this many cached items the cache starts afresh (bounded memory)."""

    def __init__(self, client: Any, cfg: CooccurConfig, prefix: str = "co:",
                 cache_s: float = 0.0, cache_items: int = 200_000) -> None:
        self.cfg = cfg
        self.prefix = prefix
        self.cache_s = cache_s
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
        fresh = {i: e[1] for i in wanted
                 if (e := self._cache.get(i)) is not None and now - e[0] < self.cache_s}
        missing = [i for i in wanted if i not in fresh]
        n_base, counts_ts, pop, packed = self._call(missing, popular)
        if n_base != self._n_base:  # the counts were rebased: cached values no longer apply
            self._cache.clear()
            self._n_base = n_base
            if fresh:
                fresh, missing = {}, wanted
                n_base, counts_ts, pop, packed = self._call(missing, popular)
        near = dict(fresh)
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
