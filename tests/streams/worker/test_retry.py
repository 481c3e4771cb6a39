"""The batch runner: outages are retried, poison messages isolated and dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from streams.errors import ServiceUnavailable
from streams.records import DeadLetter
from streams.worker.pipeline import Output, RawMessage
from streams.worker.retry import Backoff, Step, run_step


def messages(n: int) -> list[RawMessage]:
    return [RawMessage("clicks", 1, i, b"k", str(i).encode()) for i in range(n)]


def run(step: Step, batch: Sequence[RawMessage]) -> Output:
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
        return Output(records=[(m.key, m.value or b"") for m in batch],
                      counts={"clicks": len(batch)})

    out = run(step, messages(8))
    assert sorted(int(v) for _, v in out.records) == [0, 1, 2, 3, 4, 6, 7]
    assert out.counts == {"clicks": 7}  # the halves' counts add up
    [(_, value)] = out.dead
    letter = DeadLetter.parse(value)
    assert (letter.topic, letter.partition, letter.offset) == ("clicks", 1, 5)
    assert "model blew up" in letter.reason


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(cap=0.001)
    assert backoff.first
    asyncio.run(backoff.wait())
    assert not backoff.first and backoff.delay == 0.001
