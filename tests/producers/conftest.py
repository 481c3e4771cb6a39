"""Fakes shared by the producer unit tests: an in-memory KafkaProducer and a Sender on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from producers.kafka import Sender


class FakeFuture:
    """Resolves at once: success, or failure when the producer was told to fail this record."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_callback(self, fn: Callable[[Any], None]) -> FakeFuture:
        if self.error is None:
            fn("metadata")
        return self

    def add_errback(self, fn: Callable[[Exception], None]) -> FakeFuture:
        if self.error is not None:
            fn(self.error)
        return self


class FakeProducer:
    """Records every send; values listed in `fail_values` fail delivery."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail_values: set[bytes] = set()
        self.flushed = 0

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.sent.append((topic, key, value))
        return FakeFuture(RuntimeError("boom") if value in self.fail_values else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed += 1


@pytest.fixture()
def fake_producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture()
def sender(fake_producer: FakeProducer) -> Sender:
    return Sender(fake_producer, "clicks")
