"""Sparse per-row top-k: the core that the item-to-item channels (model/cooccur.py,
model/transitions.py) score a whole batch with, and that fusion (model/fusion.py) merges a
batch's lists with.

Each contribution is (row, item, value) given as blocks: a block is one history item's
neighbour list (ids and values), multiplied by its weight and added to its row. Scores are sums
over a row's blocks in input order, so they are the same floats as a loop over the blocks in
that order. The per-row work is one compiled loop (numba, `_rank_rows`): it sums each row's
entries into a slot per item, drops the row's excluded items, keeps the slots at or above the
row's k-th best score and sorts only those by (-score, item). It runs without the GIL, so the
worker's reader thread scores beside MIND's search without holding it up. It replaced a numpy
version (a table of (row, item) keys, bincount, a partition per row); docs/serving-speed.md
gives both side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from numba import njit

DENSE_FACTOR = 32  # items index a table of ids directly while it is at most this many per entry


def top_per_row(n_rows: int, rows: Sequence[int], weights: Sequence[float],
                cands: Sequence[np.ndarray], vals: Sequence[np.ndarray],
                exclude: Sequence[Iterable[int]] | Excluded, top_k: int
                ) -> list[tuple[list[int], list[float]]]:
    """Each row's top_k (items, scores), best first (ties: smaller id), none of its `exclude`
    row: block b adds weights[b] * vals[b] to the items cands[b] of row rows[b]."""
    if not cands or top_k <= 0:
        return [([], []) for _ in range(n_rows)]
    return top_per_row_flat(n_rows, rows, weights, cands, vals, exclude, top_k).pairs()


def top_per_row_flat(n_rows: int, rows: Sequence[int], weights: Sequence[float],
                     cands: Sequence[np.ndarray], vals: Sequence[np.ndarray],
                     exclude: Sequence[Iterable[int]] | Excluded, top_k: int) -> Ranked:
    """top_per_row's ranking, left as flat arrays."""
    if not cands or top_k <= 0:
        return Ranked.empty(n_rows, top_k)
    sizes = [len(c) for c in cands]
    return rank_flat(n_rows, np.repeat(np.array(rows, dtype=np.int64), sizes),
                     np.concatenate(cands),
                     np.repeat(np.array(weights), sizes) * np.concatenate(vals), exclude, top_k)


def rank_entries(n_rows: int, row_of: np.ndarray, ids: np.ndarray, values: np.ndarray,
                 exclude: Sequence[Iterable[int]] | Excluded, top_k: int,
                 tags: np.ndarray | None = None, best: bool = False
                 ) -> list[tuple[list[int], list[float], list[int]]]:
    """Entry e adds values[e] to item ids[e] of row row_of[e]; each row's top_k (items, sums,
    tags), best first (ties: smaller id), none of its `exclude` row. An item's tag is the tag
    of its largest entry (ties: the first in input order); without `tags`, tags are empty.
    `best`: an item's score is its largest entry instead of the sum (MIND's K lists merged,
    streams/recall/lists.py)."""
    return rank_flat(n_rows, row_of, ids, values, exclude, top_k, tags, best).rows(
        tags is not None)


@dataclass(frozen=True)
class Ranked:
    """rank_flat's answer: row r's items, scores and tags are [r * top_k, r * top_k + counts[r])
    of the flat arrays."""

    items: np.ndarray
    scores: np.ndarray
    tags: np.ndarray
    counts: np.ndarray
    top_k: int

    @classmethod
    def empty(cls, n_rows: int, top_k: int) -> Ranked:
        """n_rows rows of nothing."""
        none = np.zeros(0, dtype=np.int64)
        return cls(none, np.zeros(0), none, np.zeros(n_rows, dtype=np.int64), max(top_k, 0))

    @classmethod
    def of_pairs(cls, pairs: Sequence[tuple[Sequence[int], Sequence[float]]]) -> Ranked:
        """The flat form of per-row (items, scores) lists (tags all 0)."""
        k = max((len(items) for items, _ in pairs), default=0)
        items = np.zeros(len(pairs) * k, dtype=np.int64)
        scores = np.zeros(len(pairs) * k)
        for row, (got, values) in enumerate(pairs):
            items[row * k:row * k + len(got)] = got
            scores[row * k:row * k + len(got)] = values
        counts = np.array([len(got) for got, _ in pairs], dtype=np.int64)
        return cls(items, scores, np.zeros(len(items), dtype=np.int64), counts, k)

    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each row in the flat arrays."""
        k = self.top_k
        return [(row * k, row * k + n) for row, n in enumerate(self.counts.tolist())]

    def rows(self, with_tags: bool = True) -> list[tuple[list[int], list[float], list[int]]]:
        """Each row's (items, scores, tags) as lists (tags empty without `with_tags`)."""
        items, scores = self.items.tolist(), self.scores.tolist()  # one conversion each
        tags = self.tags.tolist() if with_tags else None
        return [(items[at:end], scores[at:end], tags[at:end] if tags is not None else [])
                for at, end in self.spans()]

    def pairs(self) -> list[tuple[list[int], list[float]]]:
        """Each row's (items, scores) as lists."""
        return [(items, scores) for items, scores, _ in self.rows(False)]

    def with_rows(self, rows: dict[int, Ranked]) -> Ranked:
        """A copy in which row r is the only row of rows[r] (each of the same top_k)."""
        k, n_rows = self.top_k, len(self.counts)
        items, scores = np.zeros(n_rows * k, dtype=np.int64), np.zeros(n_rows * k)
        tags, counts = np.zeros(n_rows * k, dtype=np.int64), self.counts.copy()
        if len(self.items):
            items[:], scores[:], tags[:] = self.items, self.scores, self.tags
        for row, one in rows.items():
            got = int(one.counts[0])
            at = slice(row * k, row * k + got)
            items[at], scores[at], tags[at] = one.items[:got], one.scores[:got], one.tags[:got]
            counts[row] = got
        return Ranked(items, scores, tags, counts, k)

    def kept(self, of: np.ndarray | None = None) -> np.ndarray:
        """The rows' items (or the entries of `of`, e.g. the tags) one after the other, without
        the padding (row r holds counts[r])."""
        flat = self.items if of is None else of
        if not len(flat):
            return np.zeros(0, dtype=flat.dtype)
        k = self.top_k
        return flat.reshape(-1, k)[np.arange(k) < self.counts[:, None]]


def rank_flat(n_rows: int, row_of: np.ndarray, ids: np.ndarray, values: np.ndarray,
              exclude: Sequence[Iterable[int]] | Excluded, top_k: int,
              tags: np.ndarray | None = None, best: bool = False) -> Ranked:
    """rank_entries' ranking, left as flat arrays (tags all 0 without `tags`)."""
    if not len(ids) or top_k <= 0:
        return Ranked.empty(n_rows, top_k)
    row_of = np.asarray(row_of, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if len(row_of) > 1 and bool((row_of[1:] < row_of[:-1]).any()):  # rows apart: gather them
        order = np.argsort(row_of, kind="stable")  # keeps each row's input order
        row_of, ids, values = row_of[order], ids[order], values[order]
        tags = tags[order] if tags is not None else None
    lo, hi = int(ids.min()), int(ids.max())
    items = None
    if lo < 0 or hi + 1 > DENSE_FACTOR * len(ids):  # ids too large or negative: number them
        items, slot_of = np.unique(ids, return_inverse=True)
        ids, span = slot_of.astype(np.int64), len(items)
    else:
        span = hi + 1
    drop_items, drop_bounds = Excluded.of(exclude).numbered(n_rows, items)
    bounds = np.searchsorted(row_of, np.arange(n_rows + 1)).astype(np.int64)
    got_tags = tags if tags is not None else np.zeros(len(ids), dtype=np.int64)
    out_items, out_scores, out_tags, counts = _rank_rows(
        bounds, ids, values, np.asarray(got_tags, dtype=np.int64), drop_bounds, drop_items,
        span, top_k, best)
    if items is not None:
        out_items = items[out_items]
    return Ranked(out_items, out_scores, out_tags, counts, top_k)


class Excluded:
    """Each row's excluded items as one array and the rows' bounds in it: built once when
    several rankings of the same rows exclude the same items (the co-occurrence and next
    channels of one batch)."""

    def __init__(self, exclude: Sequence[Iterable[int]]) -> None:
        drops = [d if isinstance(d, (list, tuple, np.ndarray)) else list(d) for d in exclude]
        sizes = [len(d) for d in drops]
        self.items = np.fromiter(chain.from_iterable(drops), dtype=np.int64, count=sum(sizes))
        self.bounds = np.zeros(len(drops) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.bounds[1:])

    @classmethod
    def of(cls, exclude: Sequence[Iterable[int]] | Excluded) -> Excluded:
        return exclude if isinstance(exclude, Excluded) else cls(exclude)

    def numbered(self, n_rows: int, items: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The items numbered like the entries (-1: an item no entry holds) and bounds for
        `n_rows` rows (rows past the given ones exclude nothing)."""
        flat, bounds = self.items, self.bounds[:n_rows + 1]
        if len(bounds) < n_rows + 1:
            bounds = np.concatenate([bounds, np.full(n_rows + 1 - len(bounds), bounds[-1])])
        if items is not None and len(flat):
            at = np.clip(np.searchsorted(items, flat), 0, len(items) - 1)
            flat = np.where(items[at] == flat, at, -1)
        return flat, bounds


@njit(nogil=True, cache=True)
def _rank_rows(bounds: np.ndarray, ids: np.ndarray, values: np.ndarray, tags: np.ndarray,
               drop_bounds: np.ndarray, drop_items: np.ndarray, span: int, top_k: int,
               take_max: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray
                                        ]:  # pragma: no cover
    n_rows = len(bounds) - 1
    stamp = np.zeros(span, dtype=np.int32)  # row + 1 where slot[item] is this row's
    slot = np.empty(span, dtype=np.int32)  # -1: excluded from the row
    longest = 0
    for r in range(n_rows):
        longest = max(longest, bounds[r + 1] - bounds[r])
    keys = np.empty(longest, dtype=np.int64)
    sums = np.empty(longest, dtype=np.float64)
    best = np.empty(longest, dtype=np.float64)
    key_tags = np.empty(longest, dtype=np.int64)
    chosen = np.empty(longest, dtype=np.int64)
    out_items = np.zeros(n_rows * top_k, dtype=np.int64)
    out_scores = np.empty(n_rows * top_k, dtype=np.float64)
    out_tags = np.empty(n_rows * top_k, dtype=np.int64)
    counts = np.zeros(n_rows, dtype=np.int64)
    for r in range(n_rows):
        mark = r + 1
        for d in range(drop_bounds[r], drop_bounds[r + 1]):
            item = drop_items[d]
            if 0 <= item < span:
                stamp[item] = mark
                slot[item] = -1
        n = 0
        for e in range(bounds[r], bounds[r + 1]):
            item = ids[e]
            v = values[e]
            if stamp[item] == mark:
                s = slot[item]
                if s >= 0:
                    sums[s] = max(sums[s], v) if take_max else sums[s] + v
                    if v > best[s]:
                        best[s] = v
                        key_tags[s] = tags[e]
            else:
                stamp[item] = mark
                slot[item] = n
                keys[n] = item
                sums[n] = v
                best[n] = v
                key_tags[n] = tags[e]
                n += 1
        k = min(n, top_k)
        m = n
        if n > k:  # only the slots at or above the k-th best score are sorted
            cut = np.partition(sums[:n], n - k)[n - k]
            m = 0
            for s in range(n):
                if sums[s] >= cut:
                    chosen[m] = s
                    m += 1
        else:
            chosen[:n] = np.arange(n)
        by_item = chosen[:m][np.argsort(keys[chosen[:m]])]
        by_score = np.argsort(-sums[by_item], kind="mergesort")  # stable: ties by item
        for j in range(k):
            s = by_item[by_score[j]]
            out_items[r * top_k + j] = keys[s]
            out_scores[r * top_k + j] = sums[s]
            out_tags[r * top_k + j] = key_tags[s]
        counts[r] = k
    return out_items, out_scores, out_tags, counts


def warm() -> None:
    """Compile (or load from numba's cache) the per-row loop now, not in the first batch."""
    rank_entries(1, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.ones(1),
                 [()], 1, tags=np.zeros(1, dtype=np.int64))
