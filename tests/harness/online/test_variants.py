"""harness.online.variants: evaluated clicks, live MostPopular, hit rates, slices, halves."""

from __future__ import annotations

import numpy as np

from harness.online.data import LoggedClick, Timeline, user_sequences
from harness.online.variants import (
    evaluated_points,
    most_popular_ranks,
    rank_in,
    slice_rows,
    summarize,
)

PAST = [LoggedClick(1, 10, 1), LoggedClick(2, 20, 2), LoggedClick(1, 11, 3), LoggedClick(3, 30, 4)]
FUTURE = [LoggedClick(1, 12, 5), LoggedClick(4, 10, 6), LoggedClick(2, 10, 7),
          LoggedClick(4, 20, 8), LoggedClick(1, 10, 9)]
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


def test_summarize_hit_rates_new_items_slices_and_halves() -> None:
    p = evaluated_points(TIMELINE)
    out = summarize(np.array([30, 0, 2, -1]), p, slices=2)
    assert out["hitrate@20"] == 0.5
    assert out["hitrate@50"] == 0.75
    assert out["new_item_hitrate@50"] == 1.0
    assert out["evaluated_clicks"] == 4 and out["new_item_clicks"] == 1
    assert out["slices"] == [
        {"from_ts": 5.0, "to_ts": 7.0, "clicks": 2, "hitrate@50": 1.0},
        {"from_ts": 8.0, "to_ts": 9.0, "clicks": 2, "hitrate@50": 0.5}]
    first, second = out["halves"]["first"], out["halves"]["second"]
    assert (first["hitrate@20"], first["hitrate@50"], first["new_item_hitrate@50"]) == \
        (0.5, 1.0, 1.0)
    assert (second["hitrate@50"], second["new_item_hitrate@50"]) == (0.5, None)
    assert (first["from_ts"], first["to_ts"], second["from_ts"]) == (5.0, 7.0, 8.0)
    assert out["unavailable"] == 0


def test_summarize_only_where_the_variant_had_a_list() -> None:
    p = evaluated_points(TIMELINE)
    out = summarize(np.array([30, 0, 2, -1]), p, slices=2,
                    valid=np.array([False, True, True, True]))
    assert out["hitrate@50"] == 2 / 3 and out["evaluated_clicks"] == 3
    assert out["unavailable"] == 1 and out["new_item_hitrate@50"] is None
    assert [s["clicks"] for s in out["slices"]] == [1, 2]  # the same slices as the others
    assert out["slices"][0]["from_ts"] == 5.0
    none = summarize(np.array([30, 0, 2, -1]), p, slices=2, valid=np.zeros(4, dtype=bool))
    assert none["hitrate@50"] is None and none["slices"][0]["hitrate@50"] is None


def test_slice_rows_never_makes_empty_slices() -> None:
    rows = slice_rows(np.array([1.0, 2.0]), np.array([True, False]), 5)
    assert [r["clicks"] for r in rows] == [1, 1]
