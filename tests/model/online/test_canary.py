"""Unit tests of the canary gate's scoring (pure numpy) and of its decision."""

from __future__ import annotations

import numpy as np
import paddle

from model.config import MindConfig
from model.network import MindUserTower
from model.online.canary import CHUNK, Gate, hits_at_k, known_rows
from model.online.learner import OnlineConfig, OnlineLearner

# items 1..4 on the axes of a 2-d space (row 0: padding); one interest pointing at item 1
TABLE = np.array([[0, 0], [1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
TOWARDS_1 = np.array([[[1.0, 0.0]]], dtype=np.float32)  # [1, K=1, D=2]


def hit(label: int, k: int, exclude: list[int] | None = None,
        interests: np.ndarray = TOWARDS_1) -> bool:
    drop = np.array([exclude or [0]])
    return bool(hits_at_k(interests, TABLE, np.array([label]), drop, k)[0])


def test_a_label_hits_when_fewer_than_k_items_score_higher() -> None:
    assert hit(1, 1) and not hit(2, 1) and hit(2, 2)
    assert hit(3, 3) and not hit(4, 3) and hit(4, 4)


def test_excluded_history_items_are_never_recalled_and_make_room() -> None:
    assert hit(2, 1, exclude=[1])  # item 1 out of the way: item 2 is the best left
    assert not hit(1, 4, exclude=[1])  # a re-click of a history item is a miss


def test_unknown_labels_and_histories_without_a_known_item_miss() -> None:
    assert not hit(0, 4) and not hit(5, 4)  # padding, beyond the table
    assert not hit(1, 4, interests=np.zeros((1, 1, 2), np.float32))  # all scores tie at 0
    assert hit(1, 1, exclude=[9])  # a history row beyond the table is ignored
    np.testing.assert_array_equal(known_rows(np.array([[0, 3, 5, 9]]), 4), [[0, 3, 0, 0]])


def test_max_over_interests_scores_an_item_by_its_best_interest() -> None:
    two = np.array([[[1.0, 0.0], [0.0, 0.5]]], dtype=np.float32)  # [1, K=2, D]
    labels, drop = np.array([3, 4]), np.zeros((2, 1), dtype=np.int64)
    both = np.concatenate([two, two])
    assert hits_at_k(both, TABLE, labels, drop, k=3).tolist() == [True, False]


def test_agrees_with_an_exact_sorted_top_k_over_many_chunks() -> None:
    rng = np.random.default_rng(4)
    table = rng.normal(size=(301, 8)).astype(np.float32)
    b = 2 * CHUNK + 7
    interests = rng.normal(size=(b, 3, 8)).astype(np.float32)
    labels = rng.integers(1, 301, b)
    hist = rng.integers(0, 301, (b, 5))
    got = hits_at_k(interests, table, labels, hist, k=50)
    scores = np.einsum("bkd,nd->bkn", interests, table).max(axis=1)  # [B, n + 1]
    for s, y, h, g in zip(scores, labels, hist, got, strict=True):
        s[0] = -np.inf
        s[h] = -np.inf
        top = np.argsort(-s, kind="stable")[:50]
        assert g == (y in top and np.isfinite(s[y]))
    assert 0 < got.sum() < b


def test_gate_waits_for_samples_exports_on_ties_and_skips_a_worse_learner() -> None:
    gate = Gate()
    assert gate.decide() == "wait"
    gate.add(np.array([True, False, True]), np.array([True, True, False]))
    assert (gate.samples, gate.learner, gate.serving) == (3, 2, 2)
    assert gate.decide() == "export" and gate.decide(min_samples=4) == "wait"
    gate.add(np.array([False]), np.array([True]))
    assert gate.decide(min_samples=4) == "skip"
    assert gate.meta() == {"samples": 4, "learner_hr50": 0.5, "serving_hr50": 0.75}


def test_gate_scores_the_learner_and_a_snapshot_that_lacks_the_newest_items() -> None:
    cfg = MindConfig(dim=8, num_interests=2, maxlen=4, negatives=16, seed=1)
    paddle.seed(1)
    vectors = np.random.default_rng(0).normal(0, 0.3, (20, 8)).astype(np.float32)
    model = OnlineLearner(cfg, OnlineConfig(seed=3, init_noise=0.0),
                          MindUserTower(cfg).state_dict(), np.arange(101, 121), vectors)
    serving = model.snapshot([])
    model.add_items([(999, [101, 102])])  # row 21: the learner knows it, the snapshot not
    hist = np.array([[1, 2, 0, 0], [21, 0, 0, 0], [21, 0, 0, 0]])
    label = np.array([21, 3, 21])
    np.testing.assert_array_equal(serving.interests_of_rows(hist)[1], 0.0)  # knows no item
    gate = Gate()
    gate.score(model, serving, hist, label)
    assert gate.samples == 3 and gate.serving == 0  # never recalls what it does not hold
    assert gate.learner == int(hits_at_k(model.interests_of_rows(hist), model.table, label,
                                         hist).sum())
    assert gate.learner >= 1  # row 21 starts at the mean of rows 1 and 2: near their interests
