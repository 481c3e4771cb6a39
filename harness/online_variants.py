"""`make online-eval`, scoring: the evaluated clicks, live MostPopular, hit rates and slices, and
which of the worker's recommendations a click was served.

A future click is evaluated when its user clicked before (past or future). Every variant is
scored on the list served after the user's previous click: the rank of the clicked item in it,
with every item the user clicked before removed (the seen filter), -1 when it is not in the top
`TOP_K`. A re-clicked item is never a hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from harness.online_data import Timeline

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


def slice_rows(ts: np.ndarray, hits: np.ndarray, n: int) -> list[dict[str, Any]]:
    """`n` equal-count slices of the evaluated clicks in data order: time range, clicks, HR@50."""
    out = []
    for chunk in np.array_split(np.arange(len(ts)), max(1, min(n, len(ts)))):
        if len(chunk):
            out.append({"from_ts": float(ts[chunk[0]]), "to_ts": float(ts[chunk[-1]]),
                        "clicks": len(chunk), "hitrate@50": float(hits[chunk].mean())})
    return out


def summarize(ranks: np.ndarray, points: Points, slices: int) -> dict[str, Any]:
    """Hit rates at 20 and 50, on new items, and per slice, of one variant's ranks [P]."""
    hit20 = (ranks >= 0) & (ranks < 20)
    hit50 = (ranks >= 0) & (ranks < 50)
    new = points.new
    return {
        "hitrate@20": float(hit20.mean()) if len(ranks) else None,
        "hitrate@50": float(hit50.mean()) if len(ranks) else None,
        "new_item_hitrate@50": float(hit50[new].mean()) if new.any() else None,
        "evaluated_clicks": len(ranks),
        "new_item_clicks": int(new.sum()),
        "slices": slice_rows(points.ts, hit50, slices),
    }


class Served(NamedTuple):
    """What the worker published for one click: its micro-batch (the batch's emit time, shared
    by every record of the batch), model version, items and the history it was made from."""

    batch: float
    version: str
    items: np.ndarray
    history: tuple[int, ...] = ()


Key = tuple[int, int, float]  # (user, clicked item, click ts): how a record names its click


@dataclass
class ContinuousStats:
    missing: int = 0  # future clicks without a recommendation
    same_batch: int = 0  # evaluated clicks whose previous click was answered in their batch
    from_cut: int = 0  # evaluated clicks served the frozen model's list at the cut
    by_updated_model: int = 0  # evaluated clicks served by a version newer than the initial
    seen_in_served: int = 0  # items the user had clicked before, in the served lists
    history_mismatch: int = 0  # served lists whose history is not the user's clicks so far

    def as_dict(self, points: int) -> dict[str, Any]:
        return {"missing_recommendations": self.missing, "same_batch_clicks": self.same_batch,
                "served_from_cut": self.from_cut, "served_by_updated_model": self.by_updated_model,
                "seen_items_per_served_list": self.seen_in_served / points if points else None,
                "served_history_mismatch": self.history_mismatch}


def continuous_ranks(timeline: Timeline, points: Points, seqs: Mapping[int, np.ndarray],
                     recs: Mapping[Key, Served], at_cut: Mapping[int, np.ndarray],
                     initial_version: str, top_k: int = TOP_K, history_len: int = 10
                     ) -> tuple[np.ndarray, np.ndarray, ContinuousStats]:
    """[P] ranks in what the worker served before each click, [P] how many of the user's clicks
    that list had seen, and the counts. Served: the record of the user's latest earlier click
    answered in an earlier micro-batch than the click itself (the worker answers a batch's
    clicks of one user with one list, made after all of them: that list was never shown
    before the batch's later clicks). None (previous click in the past, or every earlier stream
    click in the same batch): the frozen model's list at the cut, `at_cut[user]`. A served
    record whose history is not the user's last `history_len` clicks up to it is counted."""
    stats = ContinuousStats()
    ranks = np.full(len(points), -1, dtype=np.int64)
    state = np.zeros(len(points), dtype=np.int64)
    earlier: dict[int, list[tuple[Served, int]]] = {}  # user -> (record, clicks it had seen)
    count: dict[int, int] = {}
    for c in timeline.past:
        count[c.user] = count.get(c.user, 0) + 1
    n_past = dict(count)
    at = 0
    for pos, c in enumerate(timeline.future):
        own = recs.get((c.user, c.item, c.ts))
        stats.missing += own is None
        mine = earlier.setdefault(c.user, [])
        n = count.get(c.user, 0)
        if at < len(points) and points.pos[at] == pos:
            found = next((r for r in reversed(mine) if own is None or r[0].batch < own.batch),
                         None)
            if mine and (found is None or found is not mine[-1]):
                stats.same_batch += 1
            seen = seqs[c.user][:n]
            if found is None:
                stats.from_cut += 1
                items, state[at] = at_cut[c.user], n_past.get(c.user, 0)
            else:
                stats.by_updated_model += found[0].version != initial_version
                items, state[at] = found[0].items, found[1]
                want = seqs[c.user][max(0, found[1] - history_len):found[1]].tolist()
                stats.history_mismatch += bool(found[0].history) and list(found[0].history) != want
            stats.seen_in_served += int(np.isin(items[:top_k], seen).sum())
            ranks[at] = rank_in(items, c.item, seen, top_k)
            at += 1
        count[c.user] = n + 1
        if own is not None:
            mine.append((own, n + 1))
    return ranks, state, stats
