"""ItemIndex against a real Milvus-lite server: exact IP top-k, overwrite, delete, count, drop."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stack.servers import LocalStack
from streams.errors import InvalidRequest, classify
from streams.stores.index import ItemIndex

pytestmark = pytest.mark.integration


def _random(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)  # [n, dim]


def test_search_is_exact_inner_product_top_k(item_index: ItemIndex) -> None:
    items = _random(500, item_index.dim)  # [500, D]
    ids = np.arange(1, 501, dtype=np.int64)  # [500]
    assert item_index.upsert(ids, items) == 500
    queries = _random(16, item_index.dim, seed=1)  # [16, D]
    got_ids, got_scores = item_index.search(queries, 10)  # [16, 10], [16, 10]
    exact = queries @ items.T  # [16, 500]
    want = np.argsort(-exact, axis=1)[:, :10]  # [16, 10] row positions
    assert got_ids.dtype == np.int64 and got_scores.dtype == np.float32
    np.testing.assert_array_equal(got_ids, ids[want])
    np.testing.assert_allclose(got_scores, np.take_along_axis(exact, want, 1), rtol=1e-4, atol=1e-4)


def test_upsert_overwrites_and_delete_is_immediate(item_index: ItemIndex) -> None:
    eye = np.eye(item_index.dim, dtype=np.float32)  # [D, D]
    item_index.upsert([1, 2, 3], eye[:3])
    item_index.upsert([1], 2 * eye[2:3])  # item 1 now points along axis 2, longer
    assert item_index.count() == 3
    ids, scores = item_index.search(eye[2:3], 2)  # [1, 2]
    assert ids.tolist() == [[1, 3]]
    np.testing.assert_allclose(scores, [[2.0, 1.0]])
    item_index.delete([1])
    ids, _ = item_index.search(eye[2:3], 3)
    assert ids.tolist() == [[3, 2, -1]]
    assert item_index.count() == 2
    item_index.delete([12345])  # unknown ids are ignored
    assert item_index.count() == 2


def test_pads_short_results_and_drop_empties(item_index: ItemIndex) -> None:
    item_index.upsert([7, 8], _random(2, item_index.dim))
    ids, scores = item_index.search(_random(3, item_index.dim, seed=2), 5)  # [3, 5]
    assert ids.shape == scores.shape == (3, 5)
    assert (np.sort(ids[:, :2], axis=1) == [7, 8]).all()
    assert (ids[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()
    item_index.drop()
    assert item_index.count() == 0
    ids, scores = item_index.search(_random(1, item_index.dim), 4)
    assert (ids == -1).all() and np.isneginf(scores).all()
    empty_ids, empty_scores = item_index.search(np.zeros((0, item_index.dim), np.float32), 4)
    assert empty_ids.shape == empty_scores.shape == (0, 4)
    item_index.upsert([9], _random(1, item_index.dim))  # usable again after drop
    assert item_index.count() == 1


def test_two_clients_see_the_same_data(item_index: ItemIndex, stack: LocalStack) -> None:
    other = ItemIndex(stack.settings.milvus_uri, item_index.collection, item_index.dim)
    other.start()
    try:
        vecs = _random(20, item_index.dim, seed=3)  # [20, D]
        item_index.upsert(np.arange(100, 120), vecs)
        assert other.count() == 20
        ids, _ = other.search(vecs[:1], 1)
        assert ids[0, 0] == 100
        other.delete([100])
        assert item_index.count() == 19
    finally:
        other.close()


def test_ivf_flat_and_hnsw_are_accepted(stack: LocalStack) -> None:
    s = stack.settings
    for kind in ("IVF_FLAT", "HNSW"):
        index = ItemIndex(s.milvus_uri, f"kind_{kind.lower()}", s.embedding_dim, kind)
        index.start()
        try:
            vecs = _random(50, s.embedding_dim, seed=4)  # [50, D]
            index.upsert(np.arange(1, 51), vecs)
            ids, _ = index.search(vecs[:2], 1)
            assert ids[:, 0].tolist() == [1, 2]
            # milvus-lite has no HNSW: it falls back to FLAT
            assert index.index_type == ("IVF_FLAT" if kind == "IVF_FLAT" else "FLAT")
        finally:
            index.destroy()
            index.close()


def test_search_with_wrong_dimension_is_invalid_and_not_retriable(item_index: ItemIndex) -> None:
    item_index.upsert([1], _random(1, item_index.dim))
    item_index.dim += 1  # the index now sends vectors Milvus cannot take
    try:
        with pytest.raises(InvalidRequest) as info:
            item_index.search(_random(2, item_index.dim), 5)
    finally:
        item_index.dim -= 1
    assert not info.value.retriable and not classify(info.value).retriable
