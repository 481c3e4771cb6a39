"""`make online-eval`, the worker's variants: which recommendation each click was served, the
three lists in it, and the leak check.

From one served record: `continuous` is its MIND channel (`channel_lists["mind"]`), `itemcf`
its co-occurrence channel filled up to TOP_K with its popularity channel (duplicates dropped),
`served` the fused list the worker published (`item_ids`). A record without `channel_lists`
(a worker older than RECALL_RECORD_CHANNEL_LISTS) gives `continuous` = `item_ids` and neither
of the other two (counted as unavailable). A record without a MIND list (no history item had a
vector: MIND alone would have served popular items) gives `continuous` its popularity channel.
Leak check: the served record's `counts_ts` and its model version's `trained_ts_max` must not
be later than the click scored on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from harness.online.data import Timeline
from harness.online.variants import TOP_K, Points, rank_in
from model.cooccur import filled
from streams.records import Recommendation

WORKER_VARIANTS = ("continuous", "itemcf", "served")
EMPTY = np.empty(0, dtype=np.int64)


class Served(NamedTuple):
    """What the worker published for one click: its micro-batch (the batch's emit time, shared
    by every record of the batch), model version, items, the history it was made from, each
    channel's own list, the data time of the newest click its co-occurrence counts held, and
    the data time of the click it answered."""

    batch: float
    version: str
    items: np.ndarray
    history: tuple[int, ...] = ()
    lists: Mapping[str, np.ndarray] | None = None
    counts_ts: float | None = None
    click_ts: float | None = None  # data time of the click it answered

    @classmethod
    def of(cls, rec: Recommendation) -> Served:
        lists = None if rec.channel_lists is None else {
            k: np.asarray(v, dtype=np.int64) for k, v in rec.channel_lists.items()}
        return cls(rec.emit_ts, rec.model_version, np.asarray(rec.item_ids, dtype=np.int64),
                   tuple(rec.history), lists, rec.counts_ts, rec.click_ts)


def variant_lists(rec: Served, k: int = TOP_K) -> dict[str, np.ndarray | None]:
    """The three worker variants' lists in one record (None: the record cannot say)."""
    if rec.lists is None:
        return {"continuous": rec.items, "itemcf": None, "served": None}
    get = rec.lists.get
    mind = get("mind")  # absent: no history item had a vector, MIND fell back to popularity
    return {"continuous": get("popular", EMPTY) if mind is None else mind,
            "itemcf": filled(get("cooccur", EMPTY), get("popular", EMPTY), k),
            "served": rec.items}


@dataclass
class ServedStats:
    missing: int = 0  # future clicks without a recommendation
    same_batch: int = 0  # evaluated clicks whose previous click was answered in their batch
    from_cut: int = 0  # evaluated clicks served the lists at the cut
    by_updated_model: int = 0  # evaluated clicks served by a version newer than the initial
    seen_in_served: int = 0  # items the user had clicked before, in the served lists
    history_mismatch: int = 0  # served lists whose history is not the user's clicks so far
    without_lists: int = 0  # evaluated clicks served a record without channel_lists
    mind_fallbacks: int = 0  # evaluated clicks served a record without a MIND list

    def as_dict(self, points: int) -> dict[str, Any]:
        return {"missing_recommendations": self.missing, "same_batch_clicks": self.same_batch,
                "served_from_cut": self.from_cut, "served_by_updated_model": self.by_updated_model,
                "seen_items_per_served_list": self.seen_in_served / points if points else None,
                "served_history_mismatch": self.history_mismatch,
                "served_without_channel_lists": self.without_lists,
                "served_without_mind_list": self.mind_fallbacks}


@dataclass
class WorkerRanks:
    """Per worker variant [P] ranks (-1: not in the top TOP_K) and [P] whether the variant had
    a list; [P] how many of the user's clicks the served list had seen; [P] the future index
    of the served record (-1: the lists at the cut)."""

    ranks: dict[str, np.ndarray]
    available: dict[str, np.ndarray]
    state: np.ndarray
    picked: np.ndarray
    stats: ServedStats = field(default_factory=ServedStats)


def worker_ranks(timeline: Timeline, points: Points, seqs: Mapping[int, np.ndarray],
                 recs: Mapping[int, Served], at_cut: Mapping[str, Mapping[int, np.ndarray]],
                 initial_version: str, top_k: int = TOP_K, history_len: int = 10
                 ) -> WorkerRanks:
    """Score the worker variants. `recs`: future index -> its record. Served: the record of the
    user's latest earlier click answered in an earlier micro-batch than the click itself (the
    worker answers a batch's clicks of one user with one list, made after all of them: that
    list was never shown before the batch's later clicks). None (previous click in the past,
    or every earlier stream click in the same batch): the lists at the cut, `at_cut[variant]
    [user]` (absent: unavailable). A served record whose history is not the user's last
    `history_len` clicks up to it is counted."""
    n_points = len(points)
    out = WorkerRanks({v: np.full(n_points, -1, dtype=np.int64) for v in WORKER_VARIANTS},
                      {v: np.ones(n_points, dtype=bool) for v in WORKER_VARIANTS},
                      np.zeros(n_points, dtype=np.int64), np.full(n_points, -1, dtype=np.int64))
    stats = out.stats
    earlier: dict[int, list[tuple[Served, int, int]]] = {}  # user -> (record, seen, index)
    count: dict[int, int] = {}
    for c in timeline.past:
        count[c.user] = count.get(c.user, 0) + 1
    n_past = dict(count)
    at = 0
    for pos, c in enumerate(timeline.future):
        own = recs.get(pos)
        stats.missing += own is None
        mine = earlier.setdefault(c.user, [])
        n = count.get(c.user, 0)
        if at < n_points and points.pos[at] == pos:
            found = next((r for r in reversed(mine) if own is None or r[0].batch < own.batch),
                         None)
            if mine and (found is None or found is not mine[-1]):
                stats.same_batch += 1
            seen = seqs[c.user][:n]
            lists: dict[str, np.ndarray | None]
            if found is None:
                stats.from_cut += 1
                lists = {v: at_cut.get(v, {}).get(c.user) for v in WORKER_VARIANTS}
                out.state[at] = n_past.get(c.user, 0)
            else:
                rec, out.state[at], out.picked[at] = found
                stats.by_updated_model += rec.version != initial_version
                stats.without_lists += rec.lists is None
                stats.mind_fallbacks += rec.lists is not None and "mind" not in rec.lists
                lists = variant_lists(rec, top_k)
                want = seqs[c.user][max(0, found[1] - history_len):found[1]].tolist()
                stats.history_mismatch += bool(rec.history) and list(rec.history) != want
            shown = lists["served"] if lists["served"] is not None else lists["continuous"]
            if shown is not None:
                stats.seen_in_served += int(np.isin(shown[:top_k], seen).sum())
            for v, items in lists.items():
                if items is None:
                    out.available[v][at] = False
                else:
                    out.ranks[v][at] = rank_in(items, c.item, seen, top_k)
            at += 1
        count[c.user] = n + 1
        if own is not None:
            mine.append((own, n + 1, pos))
    return out


def _check(name: str, values: list[tuple[int, float | None, float | None]], points: Points,
           examples: int, extra: Mapping[int, dict[str, Any]]) -> dict[str, Any]:
    """Violations (value later than the click), unknowns (no value), and how far (median,
    data time) the value was behind the scored click and behind the click the list answered."""
    bad = [(at, v) for at, v, _ in values if v is not None and v > points.ts[at]]
    lag = [points.ts[at] - v for at, v, _ in values if v is not None]
    behind = [made - v for _, v, made in values if v is not None and made is not None]
    return {
        "checked": len(values), "violations": len(bad),
        "unknown": sum(v is None for _, v, _ in values),
        "lag_s_median": float(np.median(lag)) if lag else None,
        "behind_answered_click_s_median": float(np.median(behind)) if behind else None,
        "examples": [{"click": int(points.pos[at]), "user": int(points.user[at]),
                      "item": int(points.item[at]), "ts": float(points.ts[at]), name: v,
                      **extra.get(at, {})} for at, v in bad[:examples]],
    }


def leak_check(points: Points, picked: np.ndarray, recs: Mapping[int, Served],
               trained_ts: Mapping[str, float | None], examples: int = 5) -> dict[str, Any]:
    """For every evaluated click served a record: is the newest click in its co-occurrence
    counts (`counts_ts`) or learned by its model version (`trained_ts_max`, from the version's
    meta.json) later than the click? Counts of violations, of unknowns and a few examples;
    clicks served the lists at the cut (past data only) are counted apart."""
    served = np.flatnonzero(picked >= 0)
    counts, model = [], []
    info: dict[int, dict[str, Any]] = {}
    for at in served.tolist():
        rec = recs[int(picked[at])]
        counts.append((at, rec.counts_ts, rec.click_ts))
        model.append((at, trained_ts.get(rec.version), rec.click_ts))
        info[at] = {"version": rec.version, "served_by_click": int(picked[at])}
    return {"at_cut": int(len(picked) - len(served)),
            "counts_ts": _check("counts_ts", counts, points, examples, info),
            "model": _check("trained_ts_max", model, points, examples, info)}
