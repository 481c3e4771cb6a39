"""Unit tests of ItemIndex argument checks and error wrapping that need no Milvus."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymilvus.client.prepare import Prepare

from harness.stack.servers import free_ports
from streams.errors import ServiceUnavailable
from streams.stores.index import INDEX_PARAMS, SEARCH_PARAMS, ItemIndex, search_request


def test_rejects_unknown_index_type() -> None:
    with pytest.raises(ValueError, match="index_type"):
        ItemIndex("http://127.0.0.1:1", "items", 64, "DISKANN")
    assert set(INDEX_PARAMS) == set(SEARCH_PARAMS) == {"FLAT", "IVF_FLAT", "HNSW"}


def test_upsert_checks_shapes_before_any_call() -> None:
    index = ItemIndex("http://127.0.0.1:1", "items", 4)
    with pytest.raises(ValueError, match=r"\[2, 4\]"):
        index.upsert([1, 2], np.zeros((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="start"):
        index.count()


def test_unreachable_milvus_is_service_unavailable() -> None:
    (port,) = free_ports(1)
    index = ItemIndex(f"http://127.0.0.1:{port}", "items", 4, timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        index.start()
    assert info.value.retriable
    assert time.monotonic() - t0 < 15
    index.close()


def test_search_request_equals_pymilvus_own_packing() -> None:
    """Contract with the pinned pymilvus: byte rows and the schema give the request that
    pymilvus builds from numpy rows, byte for byte."""
    queries = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    params = {"metric_type": "IP", "params": {"ef": 64}}
    ours = search_request("items", queries, 7, params, 0)
    theirs = Prepare.search_requests_with_expr(
        "items", anns_field="vector", param=params, limit=7, data=list(queries),
        output_fields=[], use_default_consistency=False, consistency_level=0,
        guarantee_timestamp=0)
    assert ours.nq == 5
    assert ours.SerializeToString() == theirs.SerializeToString()
