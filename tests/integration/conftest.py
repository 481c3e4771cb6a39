"""Fixtures that start one real local stack per test session and hand out clients on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from streams.history import HistoryStore
from streams.index import ItemIndex
from streams.settings import Settings
from streams.stack import LocalStack, free_ports


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running LocalStack on free ports in a temp dir; `stack.settings` points at it."""
    kafka_port, redis_port, milvus_port = free_ports(3)
    local = LocalStack(
        Settings(),  # type: ignore[call-arg]  # pydantic fills the defaults
        stack_dir=tmp_path_factory.mktemp("stack"),
        kafka_port=kafka_port,
        redis_port=redis_port,
        milvus_port=milvus_port,
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture()
def redis_store(stack: LocalStack) -> Iterator[HistoryStore]:
    """A started HistoryStore on the stack's Redis, emptied before the test."""
    s = stack.settings
    store = HistoryStore(s.redis_url, history_len=s.history_len)
    store.start()
    try:
        store.flush()
        yield store
    finally:
        store.close()


@pytest.fixture()
def item_index(stack: LocalStack) -> Iterator[ItemIndex]:
    """A started ItemIndex on a collection unique to this test, dropped afterwards."""
    s = stack.settings
    index = ItemIndex(
        s.milvus_uri, f"test_{uuid.uuid4().hex[:12]}", s.embedding_dim, s.milvus_index
    )
    index.start()
    try:
        yield index
    finally:
        try:
            index.destroy()
        finally:
            index.close()
