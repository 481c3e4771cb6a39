"""model.ranking_metrics: hand-computed metrics, merge semantics, MostPopular self-check."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from model.data import read_sequence_file
from model.ranking_metrics import (
    evaluate_vectors,
    exact_retriever,
    mean_sd,
    popular_retriever,
    score_lists,
)
from model.split import build_vocab, comirec_split, holdout


def test_hand_computed_metrics() -> None:
    got = score_lists([[5, 1, 7], [2, 3, 4]], [[1, 7, 9, 9], [8]], ns=[2, 3])
    # user 1: targets {1,7,9}; @2 hit at pos 1; @3 hits at pos 1,2. user 2: no hits.
    assert got["recall@2"] == pytest.approx((1 / 3) / 2)
    assert got["recall@3"] == pytest.approx((2 / 3) / 2)
    assert got["hitrate@2"] == pytest.approx(0.5)
    d = [1 / math.log2(p + 2) for p in range(3)]
    assert got["ndcg@2"] == pytest.approx(d[1] / (d[0] + d[1]) / 2)
    assert got["ndcg@3"] == pytest.approx((d[1] + d[2]) / sum(d) / 2)


def test_ndcg_ideal_uses_min_targets_n_not_hits_found() -> None:
    got = score_lists([[1, 2]], [[1, 3, 4]], ns=[2])
    assert got["ndcg@2"] < 1.0  # PaddleRec's variant would give 1.0 here


def test_exact_retriever_equals_per_interest_merge() -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(300, 8)).astype(np.float32)
    ids = np.arange(1000, 1300)
    users = rng.normal(size=(5, 3, 8)).astype(np.float32)
    got = exact_retriever(ids, items, chunk=2)(users, 20)
    for u in range(5):
        best: dict[int, float] = {}
        for k in range(3):
            s = items @ users[u, k]
            for r in np.argsort(-s)[:20]:
                best[int(ids[r])] = max(best.get(int(ids[r]), -np.inf), float(s[r]))
        want = sorted(best, key=lambda i: -best[i])[:20]
        assert got[u] == want


def test_mean_sd() -> None:
    out = mean_sd([{"a": 1.0}, {"a": 3.0}])
    assert out["a"] == 2.0 and out["a_sd"] == pytest.approx(math.sqrt(2))


# ../shared/data beside the repository (where CI puts it)
BEAUTY = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon-beauty.txt"


@pytest.mark.skipif(not BEAUTY.exists(), reason="shared data not mounted")
def test_most_popular_self_check_on_beauty() -> None:
    seqs = read_sequence_file(BEAUTY)
    split = comirec_split(seqs)
    vocab = build_vocab(seqs, split.train)
    _, targets = holdout(seqs, split.test)
    res = evaluate_vectors(np.zeros((len(targets), 1, 1), np.float32), targets,
                           popular_retriever(vocab.item_ids[:50].tolist()))
    assert len(targets) == 2237
    readme = {"recall@20": 2.58, "hitrate@20": 4.51, "recall@50": 4.73, "hitrate@50": 8.76}
    for key, want in readme.items():
        assert round(100 * res[key], 2) == want, key
