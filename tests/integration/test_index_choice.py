"""The index chosen for large catalogs (streams.stores.index.recommended_index), on a real Milvus
standalone (Milvus Lite builds neither IVF_FLAT nor HNSW): with its chosen search parameters a
small collection, fully indexed, keeps >= 95% of exact search's top-k on a fixed set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from harness.bench.index_sweep import ExactIndex, overlap
from harness.bench.items import fill
from harness.stack.servers import free_ports
from harness.stack.standalone import compact, connect, milvus_standalone, rebuild
from streams.stores.index import IndexChoice, ItemIndex, recommended_index

pytestmark = pytest.mark.integration

DIM, ITEMS, QUERIES, K = 32, 10_000, 200, 60


@pytest.fixture(scope="module")
def standalone() -> Iterator[str]:
    with milvus_standalone(free_ports(1)[0]) as server:
        yield server.uri


def world() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clustered table (harness.bench.items) and queries near its items, fixed seeds."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, DIM))  # [50, D]
    real = (centres[rng.integers(0, 50, 2000)]
            + 0.5 * rng.standard_normal((2000, DIM))).astype(np.float32)  # [2000, D]
    ids, vectors = fill(np.arange(2000), real, ITEMS, seed=1)
    queries = vectors[rng.integers(0, ITEMS, QUERIES)] \
        + 0.3 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)  # [Q, D]
    return ids, vectors, queries.astype(np.float32)


# each distinct choice of the catalog sizes the sweep measured, tested once
CHOICES = list({repr(c): c for c in map(recommended_index, [100_000, 1_000_000])}.values())


@pytest.mark.parametrize("choice", CHOICES, ids=[c.index for c in CHOICES])
def test_recommended_index_keeps_exact_top_k(standalone: str, choice: IndexChoice) -> None:
    assert choice.index in ("IVF_FLAT", "HNSW")
    ids, vectors, queries = world()
    index = ItemIndex(standalone, f"choice_{uuid.uuid4().hex[:8]}", DIM, "FLAT")
    connect(index)
    try:
        for start in range(0, ITEMS, 2_000):  # several segments, merged as the bench does
            index.upsert(ids[start:start + 2_000], vectors[start:start + 2_000])
            index.client.flush(index.collection)
        assert compact(index, timeout_s=120) >= 0
        assert index.count() == ITEMS
        rebuild(index, choice.index, choice.build)
        want, _ = ExactIndex(ids, vectors).search(queries, K)
        got, _ = index.search(queries, K, choice.search)
        assert overlap(got.tolist(), want.tolist()) >= 0.95
        state = index.client.describe_index(index.collection, "vector")
        assert state["index_type"] == choice.index and state["indexed_rows"] == ITEMS
        if choice.index == "IVF_FLAT":  # nprobe reaches the index: one cluster is far worse
            worse, _ = index.search(queries, K, {"nprobe": 1})
            assert overlap(worse.tolist(), want.tolist()) < 0.9
    finally:
        index.destroy()
        index.close()
