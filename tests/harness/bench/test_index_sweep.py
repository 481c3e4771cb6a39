"""The index sweep's pure parts: the clustered catalog fill, exact search, overlap, points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.bench.index_sweep import ExactIndex, builds, overlap
from harness.bench.items import SYNTHETIC_ID_BASE, cached_fill, fill, nearest_cosine


def clustered(n: int, dim: int = 16, centres: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))  # [C, D]
    return (c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, dim))).astype(
        np.float32)  # [n, D]


def test_fill_keeps_the_real_items_and_clusters_the_new_ones_around_them() -> None:
    real = clustered(500)
    ids = np.arange(1, 501)
    out_ids, out = fill(ids, real, 3000, seed=1)
    assert out.shape == (3000, 16) and out.dtype == np.float32
    np.testing.assert_array_equal(out_ids[:500], ids)
    np.testing.assert_array_equal(out[:500], real)
    assert out_ids[500] == SYNTHETIC_ID_BASE and len(set(out_ids.tolist())) == 3000
    norms = np.linalg.norm(real, axis=1)
    assert norms.min() - 1e-4 <= np.linalg.norm(out[500:], axis=1).min()
    assert np.linalg.norm(out[500:], axis=1).max() <= norms.max() + 1e-4
    # each new item is about as near to some real item as real items are to each other
    unit = real / norms[:, None]
    new = out[500:] / np.linalg.norm(out[500:], axis=1, keepdims=True)
    to_real = float(np.median((new @ unit.T).max(axis=1)))
    assert abs(to_real - nearest_cosine(real)) < 0.1
    # not spread evenly: far nearer to the real items than random directions are
    rand = np.random.default_rng(2).standard_normal((2500, 16))
    rand /= np.linalg.norm(rand, axis=1, keepdims=True)
    assert to_real > float(np.median((rand @ unit.T).max(axis=1))) + 0.1


def test_cached_fill_builds_once(tmp_path: Path) -> None:
    real = clustered(100)
    first = cached_fill(np.arange(100), real, 400, tmp_path, "m")
    again = cached_fill(np.arange(100), real, 400, tmp_path, "m")
    assert first[2] is not None and again[2] is None
    np.testing.assert_array_equal(first[1], again[1])


def test_exact_index_is_brute_force_top_k() -> None:
    table = clustered(300)
    ids = np.arange(1000, 1300)
    queries = clustered(70, seed=3)
    got_ids, got_scores = ExactIndex(ids, table, chunk=16).search(queries, 7)
    full = queries @ table.T  # [70, 300]
    want = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(got_ids, ids[want])
    # float32 products of a chunk and of the whole matrix may round a few ulps apart
    np.testing.assert_allclose(got_scores, np.take_along_axis(full, want, axis=1), rtol=1e-6)


def test_overlap_and_builds() -> None:
    assert overlap([[1, 2, 3, 4], [5]], [[1, 2, 9, 8], [5]]) == 0.75
    assert builds([16], [8, 32], []) == [("FLAT", {}, [{}]),
                                         ("IVF_FLAT", {"nlist": 16}, [{"nprobe": 8}])]
    assert builds([], [], [64])[1] == ("HNSW", {"M": 16, "efConstruction": 200}, [{"ef": 64}])
