"""Unit tests of the recall core's merge and batching, with in-memory model and index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from streams.recall.lists import merge
from streams.recall.recaller import Recaller


def test_merge_keeps_best_score_per_item_and_drops_history_and_padding() -> None:
    ids = np.array([[[5, 3, -1], [3, 7, 9]], [[1, 2, 3], [4, 5, 6]]])  # [B=2, K=2, k=3]
    scores = np.array([[[0.9, 0.2, -np.inf], [0.8, 0.5, 0.1]],
                       [[0.1, 0.7, 0.3], [0.6, 0.2, 0.9]]], dtype=np.float32)
    (items, item_scores, origin), (other, _, other_origin) = merge(
        ids, scores, [[9], [6, 2]], top_k=10)
    assert items == [5, 3, 7]
    assert np.allclose(item_scores, [0.9, 0.8, 0.5])
    assert origin == [0, 1, 1]  # item 3: 0.2 from interest 0, 0.8 from interest 1
    assert other == [4, 3, 5, 1]
    assert other_origin == [1, 0, 1, 0]


def test_merge_truncates_to_top_k() -> None:
    ids = np.arange(20).reshape(1, 4, 5)
    scores = -np.arange(20, dtype=np.float32).reshape(1, 4, 5)
    [(items, _, _)] = merge(ids, scores, [[]], top_k=3)
    assert items == [0, 1, 2]


class ExactIndex:
    """NumPy inner-product index standing in for Milvus; counts calls."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray):
        self.ids, self.vectors, self.calls = ids, vectors, 0

    def search(self, vectors: np.ndarray, top_k: int,
               params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        scores = vectors @ self.vectors.T  # [N, items]
        order = np.argsort(-scores, axis=1)[:, :top_k]
        return self.ids[order], np.take_along_axis(scores, order, axis=1)


class TableModel:
    """Interests = the last 4 history items' vectors (zeros when the history has no known item)."""

    version = "test-1"

    def __init__(self, table: dict[int, np.ndarray]):
        self.table, self.calls = table, 0

    def interests(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        out = np.zeros((len(histories), 4, 8), dtype=np.float32)
        skipped = np.array([sum(i not in self.table for i in h) for h in histories])
        for row, history in enumerate(histories):
            known = [self.table[i] for i in history if i in self.table][-4:]
            for k, vec in enumerate(known):
                out[row, k] = vec
        return out, skipped

    def popular(self, n: int) -> list[int]:
        return list(range(1, n + 1))


def test_recall_one_model_call_one_search_and_popular_fallback() -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(1, 101)
    vectors = rng.standard_normal((100, 8)).astype(np.float32)
    model = TableModel({int(i): v for i, v in zip(ids, vectors, strict=True)})
    index = ExactIndex(ids, vectors)
    recaller = Recaller(model, index, top_k=5)
    out = recaller.recall([[1, 2, 3], [999], [50]])
    assert model.calls == 1 and index.calls == 1
    assert len(out) == 3
    first = out[0]
    assert first.source == "mind" and len(first.item_ids) == 5
    assert not set(first.item_ids) & {1, 2, 3}
    best_scores = (vectors[:3] @ vectors.T).max(axis=0)  # [items]
    best = {int(i): float(s) for i, s in zip(ids, best_scores, strict=True)}
    expected = sorted((i for i in best if i not in {1, 2, 3}), key=lambda i: -best[i])[:5]
    assert first.item_ids == expected
    assert out[1].source == "popular" and out[1].item_ids == [1, 2, 3, 4, 5]
    assert out[2].source == "mind" and 50 not in out[2].item_ids
    assert [c.skipped for c in out] == [0, 1, 0]


def random_items(seed: int, n: int, top_k: int) -> tuple[np.ndarray, Recaller]:
    """Items 1..n with random vectors [n, 8], and a Recaller over them (exact index)."""
    ids = np.arange(1, n + 1)
    vectors = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    model = TableModel({int(i): v for i, v in zip(ids, vectors, strict=True)})
    return vectors, Recaller(model, ExactIndex(ids, vectors), top_k=top_k)


def test_recall_marks_each_candidate_with_the_interest_that_found_it() -> None:
    vectors, recaller = random_items(1, 200, top_k=20)
    history = [7, 8, 9, 10]
    [found, fallback] = recaller.recall([history, [999]])
    per_interest = vectors[[6, 7, 8, 9]] @ vectors.T  # [K, items]: interest k = item 7 + k
    for item, score, interest in zip(found.item_ids, found.scores, found.interests, strict=True):
        assert int(np.argmax(per_interest[:, item - 1])) == interest
        assert np.isclose(per_interest[interest, item - 1], score, atol=1e-5)
    assert len(set(found.interests)) > 1
    assert fallback.interests == [-1] * len(fallback.item_ids)


def test_inspect_shows_each_interest_and_the_same_merged_list_as_recall() -> None:
    vectors, recaller = random_items(2, 100, top_k=5)
    history = [3, 1, 4, 15]
    insight = recaller.inspect(history)
    assert insight.vectors.shape == (4, 8)
    assert insight.merged == recaller.recall([history])[0]
    for k, (items, scores) in enumerate(insight.per_interest):
        own = vectors[history[k] - 1] @ vectors.T
        expected = [int(i) for i in np.argsort(-own) + 1 if i not in history][:5]
        assert items == expected and scores == sorted(scores, reverse=True)
    for item, interest in zip(insight.merged.item_ids, insight.merged.interests, strict=True):
        assert item in insight.per_interest[interest][0]


def test_exclude_rows_replace_the_history_as_the_items_never_returned() -> None:
    ids = np.array([[[5, 6, 7, 8]]])  # [B=1, K=1, 4]
    scores = np.array([[[4.0, 3.0, 2.0, 1.0]]])
    long_row = [5, *range(100, 140)]  # over 32 ids: the sorted-lookup path
    [(items, _, _)] = merge(ids, scores, [long_row], top_k=3)
    [(short, _, _)] = merge(ids, scores, [[5, 7]], top_k=3)
    assert items == [6, 7, 8]
    assert short == [6, 8]


def test_recall_with_exclude_never_returns_seen_items_and_still_fills_top_k() -> None:
    vectors, recaller = random_items(3, 200, top_k=10)
    history = [3, 4]
    plain = recaller.recall([history])[0].item_ids
    seen = [3, 4, *plain[:5], *range(150, 190)]  # earlier clicks beyond the history
    found, fallback = recaller.recall([history, [999]], exclude=[seen, [1, 2]])
    assert len(found.item_ids) == 10 and not set(found.item_ids) & set(seen)
    assert found.item_ids[:5] == [i for i in plain if i not in seen][:5]
    assert fallback.source == "popular" and fallback.item_ids[:2] == [3, 4]


def test_inspect_with_exclude_matches_recall_with_the_same_row() -> None:
    vectors, recaller = random_items(4, 200, top_k=8)
    history = [3, 1, 4, 15]
    seen = [*history, *recaller.recall([history])[0].item_ids[:4], *range(120, 160)]
    insight = recaller.inspect(history, exclude=seen)
    assert insight.merged == recaller.recall([history], exclude=[seen])[0]
    assert len(insight.merged.item_ids) == 8
    for items, _ in insight.per_interest:
        assert len(items) == 8 and not set(items) & set(seen)


class RecordingIndex(ExactIndex):
    """ExactIndex that also records each call's (queries, top_k)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray):
        super().__init__(ids, vectors)
        self.asked: list[tuple[int, int]] = []

    def search(self, vectors: np.ndarray, top_k: int,
               params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        self.asked.append((len(vectors), top_k))
        return super().search(vectors, top_k, params)


def test_capped_first_search_then_deeper_only_where_short_gives_the_same_lists() -> None:
    rng = np.random.default_rng(3)
    ids = np.arange(1, 401)
    vectors = rng.standard_normal((400, 8)).astype(np.float32)
    model = TableModel({int(i): v for i, v in zip(ids, vectors, strict=True)})
    histories = [[1, 2, 3, 4], [5, 6], [7, 8, 9]]
    # user 0 has seen the 150 items nearest its first interest: its lists run short
    near = ids[np.argsort(-(vectors @ vectors[0]))[:150]].tolist()
    exclude = [near, [5, 6, 10], list(range(100, 130))]
    exact = RecordingIndex(ids, vectors)
    want = Recaller(model, exact, top_k=10).recall(histories, exclude=exclude)
    assert exact.asked == [(9, 160)]  # every query as deep as the heaviest user's row
    capped = RecordingIndex(ids, vectors)
    recaller = Recaller(model, capped, top_k=10, extra_cap=20)
    got = recaller.recall(histories, exclude=exclude)
    assert [(c.item_ids, c.interests) for c in got] == [(c.item_ids, c.interests) for c in want]
    assert np.allclose([s for c in got for s in c.scores], [s for c in want for s in c.scores])
    first, *again = capped.asked
    assert first == (9, 30)  # top_k + the cap
    assert again and again[0][1] == 160 and again[0][0] < 4  # user 0's short queries only
    # no user past the cap: one search, as before
    light = RecordingIndex(ids, vectors)
    Recaller(model, light, top_k=10, extra_cap=20).recall(histories, exclude=[[1], [2], [3]])
    assert light.asked == [(9, 11)]
    # a user without a usable interest still gets top_k popular items outside what it saw
    unknown = [[999], [5]]
    seen = [list(range(1, 60)), [5]]
    deep = Recaller(model, RecordingIndex(ids, vectors), top_k=10).recall(unknown, exclude=seen)
    capped_out = recaller.recall(unknown, exclude=seen)
    assert capped_out[0].source == "popular" and len(capped_out[0].item_ids) == 10
    assert capped_out[0].item_ids == deep[0].item_ids == list(range(60, 70))
    # inspect sees the deeper lists too
    shown = recaller.inspect(histories[0], exclude=exclude[0])
    assert shown.merged.item_ids == want[0].item_ids
    assert not set(shown.merged.item_ids) & set(near)
