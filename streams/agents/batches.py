"""Shared agent plumbing: run a batch step off the loop with retries, publish its output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import faust
import redis

from streams.errors import RecallError
from streams.pipeline import Output, RawMessage, dead_letter

log = logging.getLogger(__name__)

Step = Callable[[Sequence[RawMessage]], Output]
TRANSIENT = (ConnectionError, TimeoutError, redis.ConnectionError, redis.TimeoutError)


def is_retriable(exc: BaseException) -> bool:
    """Server outages are retried; anything else is a fault of the messages themselves."""
    return (isinstance(exc, RecallError) and exc.retriable) or isinstance(exc, TRANSIENT)


def raw_messages(events: Sequence[faust.EventT]) -> list[RawMessage]:
    """Strip Faust events down to what the batch steps need."""
    return [
        RawMessage(e.message.topic, e.message.partition, e.message.offset, e.key, e.value)
        for e in events
    ]


async def run_step(
    step: Step, messages: Sequence[RawMessage], executor: Executor, max_delay: float = 10.0
) -> Output:
    """Run `step` in the executor; retry outages forever, isolate a poison message by bisection."""
    loop = asyncio.get_running_loop()
    delay = 0.2
    while True:
        try:
            return await loop.run_in_executor(executor, step, messages)
        except Exception as exc:
            if is_retriable(exc):
                log.warning("batch of %d waits for a server: %r; retry in %.1fs",
                            len(messages), exc, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, max_delay)
                continue
            if len(messages) == 1:
                return Output(dead=[dead_letter(messages[0], f"processing failed: {exc!r}")])
            log.error("batch of %d failed (%r); splitting it to find the bad message",
                      len(messages), exc)
            half = len(messages) // 2
            left = await run_step(step, messages[:half], executor, max_delay)
            right = await run_step(step, messages[half:], executor, max_delay)
            counts = {k: left.counts.get(k, 0) + right.counts.get(k, 0)
                      for k in left.counts.keys() | right.counts.keys()}
            return Output(left.records + right.records, left.dead + right.dead, counts)


async def publish(topic: faust.TopicT, records: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send records and wait until the broker has them all (offsets are acked only after this)."""
    pending = [await topic.send(key=key, value=value) for key, value in records]
    if pending:
        await asyncio.gather(*pending)
