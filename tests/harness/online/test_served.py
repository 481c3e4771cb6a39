"""harness.online.served: which worker recommendation each click was served, the three worker
variants in it, and the leak check."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.online.data import user_sequences
from harness.online.served import Served, leak_check, variant_lists, worker_ranks
from harness.online.variants import evaluated_points
from model.cooccur import filled
from streams.records import Recommendation
from tests.harness.online.test_variants import TIMELINE

# TIMELINE.future: 0 (1, 12, 5), 1 (4, 10, 6), 2 (2, 10, 7), 3 (4, 20, 8), 4 (1, 10, 9)


def served(batch: float, version: str, items: list[int], history: tuple[int, ...] = (),
           lists: dict[str, list[int]] | None = None, counts_ts: float | None = None) -> Served:
    return Served(batch, version, np.array(items, dtype=np.int64), history,
                  None if lists is None else {k: np.array(v, dtype=np.int64)
                                              for k, v in lists.items()}, counts_ts)


AT_CUT = {"continuous": {1: np.array([10, 30, 12]), 2: np.array([30, 10]),
                         4: np.array([20, 10])}}


def test_continuous_serves_the_previous_batch_the_cut_list_and_counts_missing() -> None:
    p = evaluated_points(TIMELINE)
    recs = {0: served(100, "v0", [30, 12, 11], (10, 11, 12)),
            1: served(100, "v1", [20, 30], (99,)),  # not user 4's history
            2: served(101, "v1", [10, 30]),
            3: served(101, "v1", [99])}  # click 4's record is missing
    out = worker_ranks(TIMELINE, p, user_sequences(TIMELINE), recs, AT_CUT, "v0")
    # click 0: previous click in the past -> the cut list minus seen 10, 11 -> [30, 12];
    # click 2: likewise [30, 10]; click 3: user 4's click at 6 (batch 100) -> [20, 30];
    # click 4: its own record is missing -> the latest earlier one, 10 was seen -> miss
    assert out.ranks["continuous"].tolist() == [1, 1, 0, -1]
    assert out.state.tolist() == [2, 1, 1, 3]  # user 1's last list had seen 10, 11 and 12
    assert out.picked.tolist() == [-1, -1, 1, 0]
    # old records (no channel_lists) and no cut lists for them: itemcf and served unavailable
    assert out.available["itemcf"].tolist() == [False] * 4
    assert out.available["continuous"].all()
    assert out.stats.as_dict(len(p)) == {
        "missing_recommendations": 1, "same_batch_clicks": 0, "served_from_cut": 2,
        "served_by_updated_model": 1, "seen_items_per_served_list": 3 / 4,
        "served_history_mismatch": 1, "served_without_channel_lists": 2,
        "served_without_mind_list": 0}


def test_continuous_never_serves_a_list_made_in_the_clicks_own_batch() -> None:
    p = evaluated_points(TIMELINE)
    recs = {1: served(101, "v1", [99]),  # made after both clicks of user 4
            3: served(101, "v1", [99])}
    out = worker_ranks(TIMELINE, p, user_sequences(TIMELINE), recs, AT_CUT, "v0")
    assert out.ranks["continuous"][2] == 0  # user 4 had nothing served before: [20, 10]
    assert out.state[2] == 0  # no click of user 4 before the cut
    assert out.stats.same_batch == 1
    assert out.stats.from_cut == 4  # also user 1's and 2's clicks (no records before them)
    assert out.stats.missing == 3


def test_the_three_variants_come_from_the_records_channel_lists() -> None:
    p = evaluated_points(TIMELINE)
    lists = {"mind": [30, 20], "cooccur": [10, 7], "popular": [10, 8, 20]}
    recs = {1: served(100, "v1", [7, 30, 20], lists=lists, counts_ts=5.0),
            0: served(100, "v1", [1], lists={"cooccur": [], "popular": [50, 10]})}
    cut = {**AT_CUT, "itemcf": {1: np.array([12]), 2: np.array([10])},
           "served": {1: np.array([5, 12])}}
    out = worker_ranks(TIMELINE, p, user_sequences(TIMELINE), recs, cut, "v0")
    # click 3 (user 4 clicks 20, after 10 at 6): mind [30, 20] -> 1; itemcf [10, 7, 8, 20]
    # minus seen 10 -> [7, 8, 20] -> 2; served [7, 30, 20] -> 2
    assert [out.ranks[v][2] for v in ("continuous", "itemcf", "served")] == [1, 2, 2]
    # click 0 at the cut: mind [30, 12] -> 1, itemcf [12] -> 0, served [5, 12] -> 1; click
    # 2 (user 2): no served list at the cut
    assert [out.ranks[v][0] for v in ("continuous", "itemcf", "served")] == [1, 0, 1]
    assert out.available["served"].tolist() == [True, False, True, True]
    # click 4 (user 1 re-clicks 10): record 0 has no MIND list -> its popular channel
    assert out.stats.mind_fallbacks == 1 and out.ranks["continuous"][3] == -1


def test_itemcf_fills_cooccur_with_popular_without_duplicates() -> None:
    got = filled(np.array([3, 1]), np.array([1, 2, 3, 4, 5]), k=4)
    assert got.tolist() == [3, 1, 2, 4]
    assert filled(np.empty(0, dtype=np.int64), np.array([9, 8]), k=5).tolist() == [9, 8]
    rec = served(0, "v", [5], lists={"mind": [1], "popular": [2]})
    assert {k: None if v is None else v.tolist() for k, v in variant_lists(rec).items()} == \
        {"continuous": [1], "itemcf": [2], "served": [5]}
    old = served(0, "v", [5])
    assert variant_lists(old)["continuous"].tolist() == [5]  # type: ignore[union-attr]
    assert variant_lists(old)["served"] is None


def test_served_of_a_record_keeps_channel_lists_and_counts_ts() -> None:
    fields: dict[str, Any] = {
        "user_id": 1, "item_ids": [3, 4], "scores": [1.0, 0.5], "model_version": "v2",
        "click_item": 9, "click_ts": 7.0, "emit_ts": 100.0, "history": [8, 9]}
    rec = Recommendation(**fields, channel_lists={"mind": [3], "cooccur": [4]}, counts_ts=6.0)
    got = Served.of(rec)
    assert got.batch == 100.0 and got.version == "v2" and got.history == (8, 9)
    assert got.lists is not None and got.lists["cooccur"].tolist() == [4]
    assert got.counts_ts == 6.0
    assert Served.of(Recommendation(**fields)).lists is None


def test_leak_check_counts_lists_holding_a_later_click() -> None:
    p = evaluated_points(TIMELINE)  # evaluated: clicks 0 (ts 5), 2 (7), 3 (8), 4 (9)
    recs = {1: served(100, "v1", [1], counts_ts=8.5),  # serves click 3 (ts 8): a leak
            0: served(100, "v2", [1], counts_ts=5.0)}  # serves click 4 (ts 9)
    picked = np.array([-1, -1, 1, 0])
    got = leak_check(p, picked, recs, {"v1": 6.0, "v2": None})
    assert got["at_cut"] == 2
    assert got["counts_ts"]["checked"] == 2 and got["counts_ts"]["violations"] == 1
    assert got["counts_ts"]["examples"] == [
        {"click": 3, "user": 4, "item": 20, "ts": 8.0, "counts_ts": 8.5, "version": "v1",
         "served_by_click": 1}]
    assert got["counts_ts"]["lag_s_median"] == 1.75  # (-0.5 + 4.0) / 2
    assert got["model"]["violations"] == 0 and got["model"]["unknown"] == 1
    assert got["model"]["lag_s_median"] == 2.0
