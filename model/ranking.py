"""Sparse per-row top-k: the numpy core that the item-to-item channels (model/cooccur.py,
model/transitions.py) score a whole batch with.

Each contribution is (row, item, value) given as blocks: a block is one history item's
neighbour list (ids and values), multiplied by its weight and added to its row. Scores are sums
over a row's blocks in input order (np.bincount adds in input order), so they are the same
floats as a loop over the blocks in that order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np


def top_per_row(n_rows: int, rows: Sequence[int], weights: Sequence[float],
                cands: Sequence[np.ndarray], vals: Sequence[np.ndarray],
                exclude: Sequence[Iterable[int]], top_k: int
                ) -> list[tuple[list[int], list[float]]]:
    """Each row's top_k (items, scores), best first (ties: smaller id), none of its `exclude`
    row: block b adds weights[b] * vals[b] to the items cands[b] of row rows[b]."""
    out: list[tuple[list[int], list[float]]] = [([], []) for _ in range(n_rows)]
    if not cands or top_k <= 0:
        return out
    sizes = [len(c) for c in cands]
    ids = np.concatenate(cands)
    span = int(ids.max()) + 1 if ids.min() >= 0 else 0
    if 0 < span < 2**62 // max(n_rows, 1):  # (row, item) as one int64 key
        items = None
        pair = np.repeat(np.array(rows, dtype=np.int64) * span, sizes) + ids
    else:  # ids too large or negative: number them first
        items, item_of = np.unique(ids, return_inverse=True)
        span = len(items)
        pair = np.repeat(np.array(rows, dtype=np.int64) * span, sizes) + item_of
    keys, group = np.unique(pair, return_inverse=True)  # sorted by (row, item)
    scores = np.bincount(group, weights=np.repeat(np.array(weights), sizes)
                         * np.concatenate(vals))
    drops = [d if isinstance(d, (list, tuple, np.ndarray)) else list(d) for d in exclude]
    dropped = [len(d) for d in drops]
    if sum(dropped):
        g_items = np.fromiter(chain.from_iterable(drops), dtype=np.int64, count=sum(dropped))
        g_rows = np.repeat(np.arange(len(drops), dtype=np.int64), dropped)
        if items is None:
            hit = (g_items >= 0) & (g_items < span)
            g_keys = g_rows[hit] * span + g_items[hit]
        else:
            at = np.clip(np.searchsorted(items, g_items), 0, len(items) - 1)
            hit = items[at] == g_items
            g_keys = g_rows[hit] * span + at[hit]
        keep = ~np.isin(keys, g_keys)
        keys, scores = keys[keep], scores[keep]
    key_rows, key_items = keys // span, keys % span
    if items is not None:
        key_items = items[key_items]
    order = np.lexsort((-scores, key_rows))  # stable: equal scores keep the item order
    key_rows, key_items, scores = key_rows[order], key_items[order], scores[order]
    rank = np.arange(len(key_rows)) - np.searchsorted(key_rows, key_rows)
    top = rank < top_k
    key_rows, key_items, scores = key_rows[top], key_items[top], scores[top]
    bounds = np.searchsorted(key_rows, np.arange(n_rows + 1))
    for row in range(n_rows):
        lo, hi = bounds[row], bounds[row + 1]
        out[row] = (key_items[lo:hi].tolist(), scores[lo:hi].tolist())
    return out
