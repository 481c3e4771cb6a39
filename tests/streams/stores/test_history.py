"""Unit tests of the HistoryStore helpers that need no Redis."""

from __future__ import annotations

import pytest

from harness.stack.servers import free_ports
from streams.errors import ServiceUnavailable
from streams.stores.history import (
    ClickAt,
    HistoryStore,
    UserState,
    parse_history,
    parse_seen,
)
from streams.stores.scripts import lua_script


def test_parse_history_reads_stored_format() -> None:
    assert parse_history(None) == []
    assert parse_history(b"") == []
    assert parse_history(b"1.5 1 10;2.0 2 11") == [10, 11]
    assert parse_history("1700000000.123456 3 42") == [42]


def test_parse_seen_reads_stored_format_and_keeps_the_newest() -> None:
    assert parse_seen(None) == [] and parse_seen(b"") == []
    assert parse_seen(b"5 3 9223372036854775807") == [5, 3, 2**63 - 1]
    assert parse_seen("5 3 8 1", most=2) == [8, 1]


def test_excluded_is_every_seen_item_and_the_history() -> None:
    assert UserState([1, 2], []).excluded() == [1, 2]
    assert UserState([2, 3], [9, 3, 2]).excluded() == [9, 3, 2]
    assert UserState([4, 3], [3]).excluded() == [3, 4]  # seen_max below the history length


def test_no_seen_items_kept_means_none_read() -> None:
    (port,) = free_ports(1)
    url = f"redis://127.0.0.1:{port}/0"  # nothing listens there
    off, on = HistoryStore(url, timeout_s=0.5), HistoryStore(url, timeout_s=0.5, seen_max=5)
    try:
        assert off.seen_max == 0
        assert off.seen([1, 2]) == {1: [], 2: []}  # no round trip
        with pytest.raises(ServiceUnavailable):
            on.seen([1])
    finally:
        off.close()
        on.close()


def test_click_epoch_defaults_to_none_given() -> None:
    assert ClickAt(1, 2, 3.5, 4, 5).epoch == ""
    assert ClickAt(1, 2, 3.5, 4, 5, "id").epoch == "id"


def test_key_prefix_and_script_is_one_eval() -> None:
    store = HistoryStore("redis://127.0.0.1:1/0", prefix="h:")
    try:
        assert store.key(12) == "h:12"
        script = lua_script("append.lua")
        assert "HSET" in script and "redis.call('HGETALL'" in script
        assert "-- include" not in script and "local function n_of(item)" in script
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
