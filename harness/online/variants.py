"""`make online-eval`, scoring: the evaluated clicks, live MostPopular, hit rates, slices and the
two halves of the future (online_served: the worker's variants).

A future click is evaluated when its user clicked before (past or future). Every variant is
scored on the list served after the user's previous click: the rank of the clicked item in it,
with every item the user clicked before removed (the seen filter), -1 when it is not in the top
`TOP_K`. A re-clicked item is never a hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.online.data import Timeline

TOP_K = 50


@dataclass(frozen=True)
class Points:
    """The evaluated clicks in data order; arrays [P]. `before`: how many clicks (past and
    future) the user made before this one; `n_past`: how many of them before the cut."""

    pos: np.ndarray  # index in timeline.future
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray  # float64 data time
    new: np.ndarray  # bool: item unknown at the cut
    before: np.ndarray
    n_past: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)


def evaluated_points(timeline: Timeline) -> Points:
    """Every future click of a user with an earlier click."""
    known = timeline.known
    count: dict[int, int] = {}
    for c in timeline.past:
        count[c.user] = count.get(c.user, 0) + 1
    past = dict(count)
    rows = []
    for pos, c in enumerate(timeline.future):
        before = count.get(c.user, 0)
        if before:
            rows.append((pos, c.user, c.item, c.ts, c.item not in known, before,
                         past.get(c.user, 0)))
        count[c.user] = before + 1
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    ints = [np.asarray(col, dtype=np.int64) for col in cols]
    return Points(ints[0], ints[1], ints[2], np.asarray(cols[3], dtype=np.float64),
                  np.asarray(cols[4], dtype=bool), ints[5], ints[6])


def rank_in(items: Sequence[int] | np.ndarray, target: int, seen: np.ndarray,
            top_k: int = TOP_K) -> int:
    """Rank (0-based) of `target` in `items` once the `seen` items are removed; -1 when it is
    not in the first `top_k` left or was seen itself."""
    if np.isin(target, seen):
        return -1
    arr = np.asarray(items, dtype=np.int64)
    kept = arr[~np.isin(arr, seen)][:top_k]
    found = np.flatnonzero(kept == target)
    return int(found[0]) if len(found) else -1


def most_popular_ranks(timeline: Timeline, points: Points, seqs: Mapping[int, np.ndarray],
                       top_k: int = TOP_K) -> np.ndarray:
    """[P] ranks of live MostPopular: items by clicks so far (past + streamed before the
    clicked one), most first, ties by smaller id, only items clicked at least once, without
    the user's seen items."""
    ids = np.unique([c.item for c in [*timeline.past, *timeline.future]])  # [N] sorted
    row = {int(i): r for r, i in enumerate(ids.tolist())}
    counts = np.bincount([row[c.item] for c in timeline.past], minlength=len(ids))  # [N]
    order = np.arange(len(ids))  # [N] smaller id first among equal counts
    ranks = np.full(len(points), -1, dtype=np.int64)
    at = 0
    for pos, c in enumerate(timeline.future):
        if at < len(points) and points.pos[at] == pos:
            seen = np.unique([row[i] for i in seqs[c.user][: points.before[at]].tolist()])
            target = row[c.item]
            mine = counts[target]
            if mine > 0 and not np.isin(target, seen):
                better = (counts > 0) & ((counts > mine) | ((counts == mine) & (order < target)))
                rank = int(better.sum() - better[seen].sum()) if len(seen) else int(better.sum())
                ranks[at] = rank if rank < top_k else -1
            at += 1
        counts[row[c.item]] += 1
    return ranks


def slice_rows(ts: np.ndarray, hits: np.ndarray, n: int,
               valid: np.ndarray | None = None) -> list[dict[str, Any]]:
    """`n` equal-count slices of the evaluated clicks in data order: time range, clicks, HR@50
    (with `valid`: over the valid clicks of each slice only, None where there are none)."""
    keep = np.ones(len(ts), dtype=bool) if valid is None else valid
    out = []
    for chunk in np.array_split(np.arange(len(ts)), max(1, min(n, len(ts)))):
        if len(chunk):
            mine = chunk[keep[chunk]]
            out.append({"from_ts": float(ts[chunk[0]]), "to_ts": float(ts[chunk[-1]]),
                        "clicks": len(mine),
                        "hitrate@50": float(hits[mine].mean()) if len(mine) else None})
    return out


def rates(ranks: np.ndarray, new: np.ndarray) -> dict[str, Any]:
    """HR@20, HR@50 and new-item HR@50 of ranks [n] (`new` [n]: the item is unknown at the
    cut); None where there is nothing to average."""
    hit20 = (ranks >= 0) & (ranks < 20)
    hit50 = (ranks >= 0) & (ranks < 50)
    return {
        "hitrate@20": float(hit20.mean()) if len(ranks) else None,
        "hitrate@50": float(hit50.mean()) if len(ranks) else None,
        "new_item_hitrate@50": float(hit50[new].mean()) if new.any() else None,
        "evaluated_clicks": len(ranks),
        "new_item_clicks": int(new.sum()),
    }


def summarize(ranks: np.ndarray, points: Points, slices: int,
              valid: np.ndarray | None = None) -> dict[str, Any]:
    """Hit rates at 20 and 50, on new items, per slice and in each half of the evaluated clicks
    (data order: the first half chooses settings, the second checks them), of one variant's
    ranks [P]; with `valid` [P], only over the clicks where the variant had a list (the others
    are counted as `unavailable`)."""
    keep = np.ones(len(ranks), dtype=bool) if valid is None else valid
    half = len(ranks) // 2
    first, second = np.arange(len(ranks)) < half, np.arange(len(ranks)) >= half
    hit50 = (ranks >= 0) & (ranks < 50)
    return {
        **rates(ranks[keep], points.new[keep]),
        "slices": slice_rows(points.ts, hit50, slices, keep),
        "halves": {name: {**rates(ranks[keep & part], points.new[keep & part]),
                          "from_ts": float(points.ts[part][0]) if part.any() else None,
                          "to_ts": float(points.ts[part][-1]) if part.any() else None}
                   for name, part in (("first", first), ("second", second))},
        "unavailable": int((~keep).sum()),
    }
