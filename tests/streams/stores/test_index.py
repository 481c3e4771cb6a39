"""Unit tests of ItemIndex argument checks and error wrapping that need no Milvus."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.stack.servers import free_ports
from streams.errors import ServiceUnavailable
from streams.stores.index import INDEX_PARAMS, SEARCH_PARAMS, ItemIndex


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
