"""harness.online.recall: rows of the frozen variants and the batched recall driver, on a
fake model and index (no servers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.online.data import user_sequences
from harness.online.recall import Row, point_rows, ranks_of, recall_rows
from harness.online.variants import evaluated_points
from streams.recall.recaller import Recaller
from tests.harness.online.test_variants import TIMELINE


class FakeModel:
    """One interest per user, zero (no usable item) for an empty history."""

    version = "fake"

    def interests(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.zeros((len(histories), 1, 2), dtype=np.float32)
        for row, history in enumerate(histories):
            if len(history):
                vectors[row, 0] = [1.0, 0.0]
        return vectors, np.zeros(len(histories), dtype=np.int64)

    def popular(self, n: int) -> list[int]:
        return [900 + i for i in range(n)]


class FakeIndex:
    """Items 1, 2, 3, ... best first for every query; records each call's top-k."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def search(self, vectors: np.ndarray, top_k: int,
               params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append((len(vectors), top_k))
        ids = np.tile(np.arange(1, top_k + 1, dtype=np.int64), (len(vectors), 1))
        return ids, -ids.astype(np.float32)


def test_point_rows_take_history_ends_and_exclude_everything_before() -> None:
    p = evaluated_points(TIMELINE)
    seqs = user_sequences(TIMELINE)
    live = point_rows(p, seqs, 2, p.before)
    assert [r.history.tolist() for r in live] == [[10, 11], [20], [10], [11, 12]]
    assert [r.exclude.tolist() for r in live] == [[10, 11], [20], [10], [10, 11, 12]]
    assert [r.target for r in live] == [12, 10, 20, 10]
    frozen = point_rows(p, seqs, 2, p.n_past, np.array([2, 3]))
    assert [r.history.tolist() for r in frozen] == [[], [10, 11]]
    assert [r.exclude.tolist() for r in frozen] == [[10], [10, 11, 12]]


def test_recall_rows_keep_row_order_exclude_seen_items_and_fall_back_to_popular() -> None:
    index = FakeIndex()
    recaller = Recaller(FakeModel(), index, top_k=50, pruning="none")
    seqs = {1: np.arange(1, 61, dtype=np.int64)}
    rows = [Row(seqs[1][:3], seqs[1][:60], 61),  # 60 seen: 61.. remain
            Row(seqs[1][:1], seqs[1][:1], 2),  # 1 seen: 2.. remain
            Row(np.empty(0, dtype=np.int64), seqs[1][:2], 905)]  # empty history: popular
    lists, fallbacks = recall_rows(recaller, rows, interests=1, desc="test", top_k=5)
    assert [x.tolist() for x in lists] == [[61, 62, 63, 64, 65], [2, 3, 4, 5, 6],
                                           [900, 901, 902, 903, 904]]
    assert fallbacks.tolist() == [False, False, True]
    assert ranks_of(lists, rows, top_k=5).tolist() == [0, 0, -1]
    assert index.calls == [(2, 65)]  # one call; per interest top_k + the longest seen row
