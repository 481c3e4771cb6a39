"""Unit tests of the HistoryStore helpers that need no Redis."""

from __future__ import annotations

import pytest

from harness.stack import free_ports
from streams.errors import ServiceUnavailable
from streams.history import APPEND_LUA, ClickAt, HistoryStore, parse_history


def test_parse_history_reads_stored_format() -> None:
    assert parse_history(None) == []
    assert parse_history(b"") == []
    assert parse_history(b"1.5 1 10;2.0 2 11") == [10, 11]
    assert parse_history("1700000000.123456 3 42") == [42]


def test_click_epoch_defaults_to_none_given() -> None:
    assert ClickAt(1, 2, 3.5, 4, 5).epoch == ""
    assert ClickAt(1, 2, 3.5, 4, 5, "id").epoch == "id"


def test_key_prefix_and_script_is_one_eval() -> None:
    store = HistoryStore("redis://127.0.0.1:1/0", prefix="h:")
    try:
        assert store.key(12) == "h:12"
        assert "HSET" in APPEND_LUA and "redis.call('HGETALL'" in APPEND_LUA
    finally:
        store.close()


def test_unreachable_redis_is_service_unavailable() -> None:
    (port,) = free_ports(1)
    store = HistoryStore(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    try:
        with pytest.raises(ServiceUnavailable) as info:
            store.start()
        assert info.value.retriable
    finally:
        store.close()
