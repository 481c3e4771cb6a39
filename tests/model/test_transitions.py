"""The `next` channel's rule (model.transitions) on the in-memory reference counts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from model.cooccur import CooccurConfig, CooccurCounts
from model.transitions import recall_next, score_next


def test_a_click_follows_the_previous_window_distinct_items() -> None:
    counts = CooccurCounts(CooccurConfig(next_window=3))
    for item in (1, 2, 1, 3, 4):  # 1 again: the window's distinct items are 1, 2 then 3, 1, 2
        counts.add(7, item, 0.0)
    assert counts.nx == {1: {2: 1.0, 3: 1.0, 4: 1.0}, 2: {1: 1.0, 3: 1.0, 4: 1.0},
                         3: {4: 1.0}}
    assert counts.out == {1: 3.0, 2: 3.0, 3: 1.0}
    ids, shares = counts.followers(1)
    assert ids.tolist() == [4, 3, 2] and shares.tolist() == [1 / 3] * 3  # ties: larger text


def test_no_window_counts_no_transitions() -> None:
    counts = CooccurCounts(CooccurConfig(next_window=0))
    for item in (1, 2, 3):
        counts.add(7, item, 0.0)
    assert counts.nx == {} and counts.out == {} and counts.co  # co-occurrence still counted


def test_the_cap_keeps_the_strongest_followers_and_out_counts_them_all() -> None:
    counts = CooccurCounts(CooccurConfig(next_window=1, next_cap=2))
    for user, item in enumerate((5, 6, 7, 6, 8), start=1):
        counts.add(user, 1, 0.0)
        counts.add(user, item, 0.0)
    assert counts.nx[1] == {6: 2.0, 8: 1.0}  # 5 and 7 were cut (ties: the smaller text goes)
    assert counts.out[1] == 5.0


def test_scores_weigh_the_newest_items_most() -> None:
    cfg = CooccurConfig(next_history=2, next_pos_decay=0.5)
    followers = {1: ([10, 11], [0.75, 0.25]), 2: ([11, 12], [0.5, 0.5])}
    arrays = {i: (np.array(a), np.array(b))
              for i, (a, b) in followers.items()}
    (ids, scores), = score_next([[1, 2]], arrays, cfg, [[12]], 10)  # newest: 2, then 1
    assert ids == [11, 10]  # 11 follows both; 10 only the older 1
    assert scores == pytest.approx([0.5 + 0.25 / 1.5, 0.75 / 1.5])


def test_recall_matches_a_plain_loop_over_the_counts() -> None:
    rng = random.Random(3)
    cfg = CooccurConfig(next_window=3, next_cap=6, next_read=4, next_history=3)
    counts = CooccurCounts(cfg)
    for _ in range(3000):
        counts.add(rng.randrange(30), rng.randrange(40), 0.0)
    histories = [counts.histories[u] for u in sorted(counts.histories)]
    exclude = [h[-2:] for h in histories]
    got = recall_next(counts, histories, exclude, 15)
    for history, drop, (ids, scores) in zip(histories, exclude, got, strict=True):
        want: dict[int, float] = {}
        newest = list(dict.fromkeys(reversed(history)))[:3]
        for pos, i in enumerate(newest):
            row = sorted(counts.nx.get(i, {}).items(), key=lambda kv: (kv[1], str(kv[0])),
                         reverse=True)[:4]
            for j, t in row:
                want[j] = want.get(j, 0.0) + t / counts.out[i] / (1 + 0.5 * pos)
        ranked = sorted((-s, j) for j, s in want.items() if j not in drop)[:15]
        assert ids == [j for _, j in ranked]
        assert scores == pytest.approx([-s for s, _ in ranked])
