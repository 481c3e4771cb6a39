"""Run a batch step off the event loop: retry outages with capped backoff, bisect a failure.

Nothing here may stop an agent for good: an outage is retried until the server answers (and
ends at once when the worker shuts down and cancels the agent), and a message that makes a
step fail for any other reason is isolated by splitting the batch and dead-lettered alone.
What is an outage is decided by `streams.errors.classify`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from streams.errors import classify
from streams.logs import batch_fields
from streams.observe.metrics import WorkerMetrics
from streams.worker.pipeline import Output, RawMessage, dead_letter

log = logging.getLogger(__name__)

Step = Callable[[Sequence[RawMessage]], Output]
FIRST_DELAY_S = 0.2


class Backoff:
    """Doubling delays from FIRST_DELAY_S up to `cap`; sleeping is cancelled by a shutdown."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.delay = FIRST_DELAY_S

    @property
    def first(self) -> bool:
        """Whether no wait happened yet (the first retry of an outage, for the metrics)."""
        return self.delay == FIRST_DELAY_S

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(2 * self.delay, self.cap)


async def run_step(
    step: Step, messages: Sequence[RawMessage], executor: Executor, max_delay: float = 5.0,
    metrics: WorkerMetrics | None = None,
) -> Output:
    """Run `step` in the executor; retry outages, isolate a poison message by bisection."""
    loop = asyncio.get_running_loop()
    backoff = Backoff(max_delay)
    while True:
        try:
            return await loop.run_in_executor(executor, step, messages)
        except Exception as exc:
            if classify(exc).retriable:
                log.warning("batch of %d waits for a server: %r; retry in %.1fs",
                            len(messages), exc, backoff.delay, extra=batch_fields(messages))
                if metrics is not None:
                    metrics.retry(exc, first=backoff.first)
                await backoff.wait()
                continue
            if len(messages) == 1:
                return Output(dead=[dead_letter(messages[0], f"processing failed: {exc!r}")])
            log.error("batch of %d failed (%r); splitting it to find the bad message",
                      len(messages), exc, extra=batch_fields(messages))
            half = len(messages) // 2
            left = await run_step(step, messages[:half], executor, max_delay, metrics)
            right = await run_step(step, messages[half:], executor, max_delay, metrics)
            return Output(left.records + right.records, left.dead + right.dead,
                          _sum(left.counts, right.counts), _sum(left.timings, right.timings))


def _sum(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}
