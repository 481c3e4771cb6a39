"""harness.online_variants: evaluated clicks, live MostPopular, hit rates, slices, and which
worker recommendation each click was served."""

from __future__ import annotations

import numpy as np

from harness.online_data import Click, Timeline, user_sequences
from harness.online_variants import (
    Served,
    continuous_ranks,
    evaluated_points,
    most_popular_ranks,
    rank_in,
    slice_rows,
    summarize,
)

PAST = [Click(1, 10, 1), Click(2, 20, 2), Click(1, 11, 3), Click(3, 30, 4)]
FUTURE = [Click(1, 12, 5), Click(4, 10, 6), Click(2, 10, 7), Click(4, 20, 8), Click(1, 10, 9)]
TIMELINE = Timeline(PAST, FUTURE)


def test_evaluated_points_are_future_clicks_of_users_who_clicked_before() -> None:
    p = evaluated_points(TIMELINE)
    assert p.pos.tolist() == [0, 2, 3, 4]  # user 4's first click is not evaluated
    assert p.user.tolist() == [1, 2, 4, 1]
    assert p.item.tolist() == [12, 10, 20, 10]
    assert p.new.tolist() == [True, False, False, False]
    assert p.before.tolist() == [2, 1, 1, 3]
    assert p.n_past.tolist() == [2, 1, 0, 2]
    assert p.ts.tolist() == [5.0, 7.0, 8.0, 9.0]


def test_rank_in_removes_seen_items_first() -> None:
    seen = np.array([7, 8])
    assert rank_in([7, 9, 8, 5], 5, seen) == 1
    assert rank_in([7, 9, 8, 5], 7, seen) == -1  # a re-click is never a hit
    assert rank_in([1, 2, 3], 3, seen, top_k=2) == -1
    assert rank_in([1, 2, 3], 4, seen) == -1


def test_most_popular_counts_live_ties_by_id_and_skips_seen_items() -> None:
    p = evaluated_points(TIMELINE)
    ranks = most_popular_ranks(TIMELINE, p, user_sequences(TIMELINE))
    # click 0: item 12 never clicked yet -> not listed; click 2: item 10 (2 clicks) leads;
    # click 3: 10 (3 clicks), then 11 and 12 (1 click, smaller ids) come before 20, and user 4
    # saw 10 -> rank 2; click 4: user 1 re-clicks 10 -> excluded
    assert ranks.tolist() == [-1, 0, 2, -1]
    assert most_popular_ranks(TIMELINE, p, user_sequences(TIMELINE), top_k=2).tolist() == \
        [-1, 0, -1, -1]


def test_summarize_hit_rates_new_items_and_slices() -> None:
    p = evaluated_points(TIMELINE)
    out = summarize(np.array([30, 0, 2, -1]), p, slices=2)
    assert out["hitrate@20"] == 0.5
    assert out["hitrate@50"] == 0.75
    assert out["new_item_hitrate@50"] == 1.0
    assert out["evaluated_clicks"] == 4 and out["new_item_clicks"] == 1
    assert out["slices"] == [
        {"from_ts": 5.0, "to_ts": 7.0, "clicks": 2, "hitrate@50": 1.0},
        {"from_ts": 8.0, "to_ts": 9.0, "clicks": 2, "hitrate@50": 0.5}]


def test_slice_rows_never_makes_empty_slices() -> None:
    rows = slice_rows(np.array([1.0, 2.0]), np.array([True, False]), 5)
    assert [r["clicks"] for r in rows] == [1, 1]


def served(batch: float, version: str, items: list[int],
           history: tuple[int, ...] = ()) -> Served:
    return Served(batch, version, np.array(items, dtype=np.int64), history)


AT_CUT = {1: np.array([10, 30, 12]), 2: np.array([30, 10]), 4: np.array([20, 10])}


def test_continuous_serves_the_previous_batch_the_cut_list_and_counts_missing() -> None:
    p = evaluated_points(TIMELINE)
    recs = {(1, 12, 5.0): served(100, "v0", [30, 12, 11], (10, 11, 12)),
            (4, 10, 6.0): served(100, "v1", [20, 30], (99,)),  # not user 4's history
            (2, 10, 7.0): served(101, "v1", [10, 30]),
            (4, 20, 8.0): served(101, "v1", [99])}  # (1, 10, 9.0) is missing
    ranks, state, stats = continuous_ranks(TIMELINE, p, user_sequences(TIMELINE), recs, AT_CUT,
                                           "v0")
    # click 0: previous click in the past -> the cut list minus seen 10, 11 -> [30, 12];
    # click 2: likewise [30, 10]; click 3: user 4's click at 6 (batch 100) -> [20, 30];
    # click 4: its own record is missing -> the latest earlier one, 10 was seen -> miss
    assert ranks.tolist() == [1, 1, 0, -1]
    assert state.tolist() == [2, 1, 1, 3]  # user 1's last list had seen 10, 11 and 12
    assert stats.as_dict(len(p)) == {
        "missing_recommendations": 1, "same_batch_clicks": 0, "served_from_cut": 2,
        "served_by_updated_model": 1, "seen_items_per_served_list": 3 / 4,
        "served_history_mismatch": 1}


def test_continuous_never_serves_a_list_made_in_the_clicks_own_batch() -> None:
    p = evaluated_points(TIMELINE)
    recs = {(4, 10, 6.0): served(101, "v1", [99]),  # made after both clicks of user 4
            (4, 20, 8.0): served(101, "v1", [99])}
    ranks, state, stats = continuous_ranks(TIMELINE, p, user_sequences(TIMELINE), recs, AT_CUT,
                                           "v0")
    assert ranks[2] == 0  # user 4 had nothing served before: the cut list [20, 10]
    assert state[2] == 0  # no click of user 4 before the cut
    assert stats.same_batch == 1
    assert stats.from_cut == 4  # also user 1's and 2's clicks (no records before them)
    assert stats.missing == 3
