"""Transitions (the `next` channel): which items users click right after an item.

Counting (with the co-occurrence counts, model/cooccur.py, in the same script call): each click
of item j follows the distinct items among the user's previous `next_window` clicks (i != j);
t(i, j) grows by the click's weight, and so does out(i), all of i's transitions out (a follower
cut off by the cap stays counted in out(i)). An item keeps its `next_cap` strongest followers;
weights decay with the co-occurrence counts' half-life and share their per-item base, so the
share t(i, j) / out(i) needs no base.

Scoring: candidate j of a user whose newest distinct items are i_0, i_1, ... (at most
`next_history`) scores sum_p t(i_p, j) / out(i_p) / (1 + next_pos_decay * p), over the first
`next_read` followers of each. Where co-occurrence asks "what goes with what this user
clicked", this asks "what do people click next after it": order and nearness, which the
co-occurrence window of 10 symmetric pairs washes out. Chosen on the dev streams' first halves
(docs/quality.md): adding it to the merged list raised HR@50 more than any weight change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from model.cooccur import CooccurConfig, CooccurCounts, recent_distinct
from model.ranking import Excluded, Ranked, top_per_row_flat


def score_next(histories: Sequence[Sequence[int]],
               followers: Mapping[int, tuple[np.ndarray, np.ndarray]], cfg: CooccurConfig,
               exclude: Sequence[Iterable[int]] | Excluded, top_k: int
               ) -> list[tuple[list[int], list[float]]]:
    """Each history's top_k `next` candidates (items, scores), best first (ties: smaller id),
    none of its `exclude` row; `followers`: item -> (ids, t/out) as near.lua reads them."""
    return rank_next(histories, followers, cfg, exclude, top_k).pairs()


def rank_next(histories: Sequence[Sequence[int]],
              followers: Mapping[int, tuple[np.ndarray, np.ndarray]], cfg: CooccurConfig,
              exclude: Sequence[Iterable[int]] | Excluded, top_k: int) -> Ranked:
    """score_next's ranking, left as flat arrays."""
    rows, weights, cands, vals = [], [], [], []
    for row, history in enumerate(histories):
        for pos, i in enumerate(next_items(history, cfg)):
            found = followers.get(i)
            if found is None or not len(found[0]):
                continue
            rows.append(row)
            weights.append(1.0 / (1.0 + cfg.next_pos_decay * pos))
            cands.append(found[0])
            vals.append(found[1])
    return top_per_row_flat(len(histories), rows, weights, cands, vals, exclude, top_k)


def next_items(history: Sequence[int], cfg: CooccurConfig) -> list[int]:
    """The history items whose followers scoring reads, newest first."""
    return recent_distinct(history, cfg.window)[: cfg.next_history]


def recall_next(counts: CooccurCounts, histories: Sequence[Sequence[int]],
                exclude: Sequence[Iterable[int]], top_k: int
                ) -> list[tuple[list[int], list[float]]]:
    """score_next over the in-memory reference counts (the offline simulation's channel, and
    what the Redis reader must equal)."""
    wanted = {i for h in histories for i in next_items(h, counts.cfg)}
    return score_next(histories, {i: counts.followers(i) for i in wanted}, counts.cfg,
                      exclude, top_k)
