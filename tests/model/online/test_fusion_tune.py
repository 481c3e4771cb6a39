"""The online blender of model.online.fusion_tune: each block of clicks is served by the grid
point with the most hits before it, never by what comes after."""

from __future__ import annotations

import numpy as np

from model.online.fusion_tune import choose, follow_the_leader


def test_each_block_follows_the_leader_of_the_clicks_before_it() -> None:
    hits = np.array([[1, 1, 0, 0, 0, 0],   # point 0 leads after the first block
                     [0, 0, 1, 1, 1, 1]], dtype=bool)  # point 1 is better from then on
    got = follow_the_leader(hits, start=1, every=2)
    # block 0: the start point (1); block 1: point 0 led (2 hits to 0); block 2: 2 to 2, the
    # first of the tied points (0); a leader is never chosen on the block it serves
    assert got.tolist() == [False, False, False, False, False, False]
    assert follow_the_leader(hits, start=0, every=3).tolist() == [True, True, False,
                                                                  False, False, False]


def test_the_rule_takes_the_best_point_that_keeps_itemcf_new_items() -> None:
    grid = [{"mean_ratio_first": 1.2, "new_items_at_least_itemcf_first": False},
            {"mean_ratio_first": 1.1, "new_items_at_least_itemcf_first": True},
            {"mean_ratio_first": 1.0, "new_items_at_least_itemcf_first": True}]
    assert choose(grid) is grid[1]
    assert choose([grid[0], {**grid[0], "mean_ratio_first": 1.3}])["mean_ratio_first"] == 1.3
