"""The co-occurrence counting rule and ItemCF scoring (model.cooccur), on small hand streams."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from model.cooccur import (
    CooccurConfig,
    CooccurCounts,
    CountsView,
    NearArrays,
    Neighbours,
    filled,
    recent_distinct,
    score_batch,
    score_users,
)


def test_a_click_pairs_with_the_distinct_previous_clicks_of_the_window() -> None:
    counts = CooccurCounts(CooccurConfig(window=3, normalize="read"))
    for item in (1, 2, 2, 3, 4):
        counts.add(7, item, 0.0)
    # 4 pairs with the last three clicks before it: 2, 2, 3 -> {3, 2}
    assert counts.co[4] == {3: 1.0, 2: 1.0}
    assert counts.co[2] == {1: 2.0, 3: 1.0, 4: 1.0}  # each click of 2 pairs with 1, not itself
    assert counts.n == {1: 1.0, 2: 2.0, 3: 1.0, 4: 1.0}
    assert recent_distinct([1, 2, 2, 3], 3) == [3, 2]


def test_the_weakest_neighbour_goes_first_ties_by_member_text() -> None:
    counts = CooccurCounts(CooccurConfig(cap=2))
    counts.click([10], 1, 0.0)
    counts.click([9], 1, 0.0)
    counts.click([10], 1, 0.0)  # 10 twice, 9 once
    counts.click([2], 1, 0.0)  # 9 and 2 tie at 1: "2" < "9" as text, so 2 goes
    assert counts.co[1] == {10: 2.0, 9: 1.0}


def test_counts_halve_every_half_life_and_rebasing_keeps_their_ratios() -> None:
    cfg = CooccurConfig(half_life_s=10.0)
    counts = CooccurCounts(cfg)
    counts.click([5], 1, 0.0)
    counts.click([6], 1, 10.0)  # one half-life later: weighs twice as much as the first
    assert counts.co[1][6] == 2 * counts.co[1][5]
    counts.click([5], 1, 400.0)  # 40 half-lives: the set's base moves forward
    assert counts.base[1] == 400.0
    assert counts.co[1][5] == pytest.approx(1 + 2.0 ** -40)
    assert counts.co[1][6] == pytest.approx(2.0 ** -39)


def test_itemcf_scores_are_position_weighted_cosines() -> None:
    cfg = CooccurConfig(pos_decay=0.5, normalize="read")
    counts = CooccurCounts(cfg)
    for user, items in {1: [1, 2], 2: [1, 3], 3: [2, 3], 4: [3, 4]}.items():
        for item in items:
            counts.add(user, item, 0.0)
    (ids, scores), = counts.recall([[1, 2]], [[1, 2]], 10)
    # history newest first: 2 (w 1), 1 (w 1/1.5); n: 1->2, 2->2, 3->3, 4->1
    want3 = 1 / math.sqrt(2 * 3) + (1 / 1.5) / math.sqrt(2 * 3)
    assert ids == [3] and scores == pytest.approx([want3])
    assert score_users([[9]], counts.view([[9]]), cfg, [[]], 5) == [([], [])]


def test_write_normalisation_divides_each_increment_by_the_neighbours_count_then() -> None:
    counts = CooccurCounts(CooccurConfig(window=1, normalize="write"))
    for user, items in {1: [5, 1], 2: [5, 1], 3: [5, 2], 4: [6, 2]}.items():
        for item in items:
            counts.add(user, item, 0.0)
    # set 1 gets 5 twice, when n(5) was 1 then 2; set 2 gets 5 (n 3) and 6 (n 1)
    assert counts.co[1] == {5: pytest.approx(1 + 1 / math.sqrt(2))}
    assert counts.co[2] == {5: pytest.approx(1 / math.sqrt(3)), 6: 1.0}
    (ids, _), = counts.recall([[2]], [[2]], 5)
    assert ids == [6, 5]  # the rarer co-clicked item first


def test_itemcf_is_the_cooccurrence_list_filled_with_popular_items() -> None:
    assert filled([3, 1], [1, 2, 3, 4, 5], 4).tolist() == [3, 1, 2, 4]
    assert filled([], [9, 8], 5).tolist() == [9, 8]
    assert filled([7, 6, 5], [1], 2).tolist() == [7, 6]


def as_arrays(near: Neighbours, view: CountsView, cfg: CooccurConfig) -> NearArrays:
    """What near.lua returns for one item: the neighbours read keeps (n(j) > 0 when it
    divides), each value co / sqrt(n(j)) or, written normalised, co."""
    kept = [(j, co if cfg.normalize == "write" else co / math.sqrt(view.n[j]))
            for j, co in near.items if cfg.normalize == "write" or view.n.get(j, 0.0) > 0]
    return NearArrays(near.n, near.base, np.array([j for j, _ in kept], dtype=np.int64),
                      np.array([v for _, v in kept], dtype=np.float64))


@pytest.mark.parametrize("cfg", [CooccurConfig(half_life_s=5000.0, read=7),
                                 CooccurConfig(normalize="write", read=30)])
@pytest.mark.parametrize("id_offset", [0, 2**61])  # large ids take the numbering path
def test_the_batched_numpy_scorer_gives_the_references_floats_and_order(
        cfg: CooccurConfig, id_offset: int) -> None:
    rng = random.Random(3)
    counts = CooccurCounts(cfg)
    ts = 0.0
    for _ in range(3000):
        ts += rng.choice([0.0, 60.0, 4000.0])
        counts.add(rng.randrange(40), id_offset + rng.randrange(60), ts)
    histories = [list(h) for h in counts.histories.values()] + [[id_offset + 999], []]
    exclude = [h[-rng.randrange(1, 5):] if h else [] for h in histories]
    view = counts.view(histories)
    near = {i: as_arrays(v, view, cfg) for i, v in view.near.items()}
    for top_k in (0, 5, 200):
        got = score_batch(histories, near, view.n_base, cfg, exclude, top_k)
        assert got == score_users(histories, view, cfg, exclude, top_k)
    assert any(ids for ids, _ in got)
