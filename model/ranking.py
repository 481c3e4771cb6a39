"""Sparse per-row top-k: the numpy core that the item-to-item channels (model/cooccur.py,
model/transitions.py) score a whole batch with, and that fusion (model/fusion.py) merges a
batch's lists with.

Each contribution is (row, item, value) given as blocks: a block is one history item's
neighbour list (ids and values), multiplied by its weight and added to its row. Scores are sums
over a row's blocks in input order (np.bincount adds in input order), so they are the same
floats as a loop over the blocks in that order. (row, item) keys are marked in a table when it
is small beside them (a 12k catalog), else sorted; each row's top_k is found by a partition,
then only those are sorted: 2-3x faster than sorting every score (the same lists).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np

DENSE_FACTOR = 32  # mark (row, item) keys in a table while it is at most this many per key


def top_per_row(n_rows: int, rows: Sequence[int], weights: Sequence[float],
                cands: Sequence[np.ndarray], vals: Sequence[np.ndarray],
                exclude: Sequence[Iterable[int]], top_k: int
                ) -> list[tuple[list[int], list[float]]]:
    """Each row's top_k (items, scores), best first (ties: smaller id), none of its `exclude`
    row: block b adds weights[b] * vals[b] to the items cands[b] of row rows[b]."""
    if not cands or top_k <= 0:
        return [([], []) for _ in range(n_rows)]
    sizes = [len(c) for c in cands]
    ranked = rank_entries(n_rows, np.repeat(np.array(rows, dtype=np.int64), sizes),
                          np.concatenate(cands),
                          np.repeat(np.array(weights), sizes) * np.concatenate(vals),
                          exclude, top_k)
    return [(items, scores) for items, scores, _ in ranked]


def rank_entries(n_rows: int, row_of: np.ndarray, ids: np.ndarray, values: np.ndarray,
                 exclude: Sequence[Iterable[int]], top_k: int, tags: np.ndarray | None = None
                 ) -> list[tuple[list[int], list[float], list[int]]]:
    """Entry e adds values[e] to item ids[e] of row row_of[e]; each row's top_k (items, sums,
    tags), best first (ties: smaller id), none of its `exclude` row. An item's tag is the tag
    of its largest entry (ties: the first in input order); without `tags`, tags are empty."""
    out: list[tuple[list[int], list[float], list[int]]] = [([], [], []) for _ in range(n_rows)]
    if not len(ids) or top_k <= 0:
        return out
    span = int(ids.max()) + 1 if ids.min() >= 0 else 0
    if 0 < span < 2**62 // max(n_rows, 1):  # (row, item) as one int64 key
        items, item_of = None, ids
    else:  # ids too large or negative: number them first
        items, item_of = np.unique(ids, return_inverse=True)
        span = len(items)
    keys, group = _distinct(row_of * span + item_of, n_rows * span)  # sorted by (row, item)
    scores = np.bincount(group, weights=values, minlength=len(keys))
    key_tags = None
    if tags is not None:  # each key's largest entry: the first of its group by -value
        order = np.lexsort((-values, group))
        starts = np.flatnonzero(np.diff(group[order], prepend=-1))
        key_tags = tags[order[starts]]
    keep = _not_excluded(keys, exclude, span, items)
    if keep is not None:
        keys, scores = keys[keep], scores[keep]
        key_tags = key_tags[keep] if key_tags is not None else None
    key_rows = keys // span
    bounds = np.searchsorted(key_rows, np.arange(n_rows + 1))
    best = _best(scores, bounds, top_k)  # each row's top_k, and ties with its last
    order = best[np.lexsort((-scores[best], key_rows[best]))]  # stable: ties keep item order
    key_rows, key_items, scores = key_rows[order], keys[order] % span, scores[order]
    if items is not None:
        key_items = items[key_items]
    key_tags = key_tags[order] if key_tags is not None else None
    bounds = np.searchsorted(key_rows, np.arange(n_rows + 1))
    for row in range(n_rows):
        lo = bounds[row]
        hi = min(bounds[row + 1], lo + top_k)
        out[row] = (key_items[lo:hi].tolist(), scores[lo:hi].tolist(),
                    key_tags[lo:hi].tolist() if key_tags is not None else [])
    return out


def _distinct(pair: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(pair, return_inverse=True) for keys in [0, size): by marking a table when it
    is small beside the keys (several times faster than sorting them), else by sorting."""
    if size > DENSE_FACTOR * len(pair):
        keys, group = np.unique(pair, return_inverse=True)
        return keys, group
    seen = np.zeros(size, dtype=bool)
    seen[pair] = True
    keys = np.flatnonzero(seen)
    slot = np.empty(size, dtype=np.int64)
    slot[keys] = np.arange(len(keys))
    return keys, slot[pair]


def _not_excluded(keys: np.ndarray, exclude: Sequence[Iterable[int]], span: int,
                  items: np.ndarray | None) -> np.ndarray | None:
    """A mask of the sorted (row, item) `keys` keeping none of each row's `exclude` items
    (None: nothing to drop)."""
    drops = [d if isinstance(d, (list, tuple, np.ndarray)) else list(d) for d in exclude]
    dropped = [len(d) for d in drops]
    if not sum(dropped):
        return None
    g_items = np.fromiter(chain.from_iterable(drops), dtype=np.int64, count=sum(dropped))
    g_rows = np.repeat(np.arange(len(drops), dtype=np.int64), dropped)
    if items is None:
        hit = (g_items >= 0) & (g_items < span)
        g_keys = g_rows[hit] * span + g_items[hit]
    else:
        at = np.clip(np.searchsorted(items, g_items), 0, len(items) - 1)
        hit = items[at] == g_items
        g_keys = g_rows[hit] * span + at[hit]
    keep = np.ones(len(keys), dtype=bool)
    if len(keys) and len(g_keys):
        at = np.clip(np.searchsorted(keys, g_keys), 0, len(keys) - 1)
        keep[at[keys[at] == g_keys]] = False
    return keep


def _best(scores: np.ndarray, bounds: np.ndarray, top_k: int) -> np.ndarray:
    """The indices of each row's top_k scores and of every score tied with its k-th
    (ascending), rows given by `bounds`: a partition per row instead of sorting them all."""
    parts = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi - lo <= top_k:
            parts.append(np.arange(lo, hi))
            continue
        seg = scores[lo:hi]
        cut = hi - lo - top_k
        parts.append(lo + np.flatnonzero(seg >= np.partition(seg, cut)[cut]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
