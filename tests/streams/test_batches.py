"""Unit tests of the agents' batch runner: outages are retried, poison messages isolated."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import redis

from streams.agents.batches import is_retriable, run_step
from streams.errors import BadEvent, ServiceUnavailable
from streams.pipeline import Output, RawMessage
from streams.records import DeadLetter


def messages(n: int) -> list[RawMessage]:
    return [RawMessage("clicks", 1, i, b"k", str(i).encode()) for i in range(n)]


def run(step, batch: Sequence[RawMessage]) -> Output:  # noqa: ANN001
    with ThreadPoolExecutor(1) as executor:
        return asyncio.run(run_step(step, batch, executor, max_delay=0.01))


def test_outage_is_retried_until_the_server_answers() -> None:
    calls = []

    def step(batch: Sequence[RawMessage]) -> Output:
        calls.append(len(batch))
        if len(calls) < 3:
            raise ServiceUnavailable("redis down")
        return Output(records=[(m.key, m.value or b"") for m in batch])

    out = run(step, messages(4))
    assert calls == [4, 4, 4]
    assert len(out.records) == 4 and not out.dead


def test_poison_message_is_isolated_and_the_rest_still_processed() -> None:
    def step(batch: Sequence[RawMessage]) -> Output:
        if any(m.offset == 5 for m in batch):
            raise ValueError("model blew up on this input")
        return Output(records=[(m.key, m.value or b"") for m in batch])

    out = run(step, messages(8))
    assert sorted(int(v) for _, v in out.records) == [0, 1, 2, 3, 4, 6, 7]
    [(_, value)] = out.dead
    letter = DeadLetter.parse(value)
    assert (letter.topic, letter.partition, letter.offset) == ("clicks", 1, 5)
    assert "model blew up" in letter.reason


def test_retriable_classification() -> None:
    assert is_retriable(ServiceUnavailable("x"))
    assert is_retriable(redis.ConnectionError("x"))
    assert is_retriable(ConnectionRefusedError())
    assert not is_retriable(BadEvent("x"))
    assert not is_retriable(ValueError("x"))
