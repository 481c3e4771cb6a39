"""Agent `recommend`: click micro-batches -> histories -> recall -> a recommendation per click."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor

import faust

from streams.observe.metrics import WorkerMetrics
from streams.settings import Settings
from streams.worker.acks import hold, raw_messages, read_at, release_or_drop
from streams.worker.delivery import deliver
from streams.worker.pipeline import ClickPipeline, Output
from streams.worker.retry import run_step

log = logging.getLogger(__name__)
ITEMS_WAIT_S = 30.0


def consume_seconds(events: Sequence[faust.EventT], now: float) -> float:
    """Median seconds from the clicks' Kafka timestamps to their batch starting its step."""
    ages = sorted(now - e.message.timestamp for e in events if e.message.timestamp)
    return max(ages[len(ages) // 2], 0.0) if ages else 0.0


def attach(
    app: faust.App,
    topics: dict[str, faust.TopicT],
    pipeline: ClickPipeline,
    executor: Executor,
    settings: Settings,
    metrics: WorkerMetrics,
    items_ready: asyncio.Event | None = None,
) -> faust.types.AgentT:
    """Register the agent on `app`; events are acked (and later committed) after publishing.

    With `items_ready`, the first batch waits (at most ITEMS_WAIT_S) until it is set: until the
    worker's streamed item table has caught up with the items topic (streams/worker/item_feed.py).
    """

    async def publish(events: Sequence[faust.EventT], out: Output, stale: set[int]) -> None:
        stepped = time.perf_counter()
        await deliver(out, topics["recs"], topics["dead"], settings.max_message_bytes,
                      settings.retry_max_delay_s, metrics)
        release_or_drop(events, app.consumer, settings.clicks_topic, stale)
        out.timings["publish"] = time.perf_counter() - stepped
        now = time.time()
        ages = [now - e.message.timestamp for e in events if e.message.timestamp]
        metrics.click_batch(len(events), len(out.records), out.timings, out.counts, ages)

    @app.agent(topics["clicks"], name="recommend")
    async def recommend(stream: faust.StreamT) -> None:
        if items_ready is not None and not items_ready.is_set():
            try:
                await asyncio.wait_for(items_ready.wait(), ITEMS_WAIT_S)
            except TimeoutError:
                log.warning("item table not caught up after %.0fs: serving clicks anyway",
                            ITEMS_WAIT_S)
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.batch_size, within=settings.batch_window_s)
        publishing: asyncio.Future[None] | None = None  # the previous batch, still publishing
        try:
            async for events in batches:
                hold(events)
                messages = raw_messages(events)
                log.debug("batch of %d clicks", len(messages))
                waited = consume_seconds(events, time.time())
                before = read_at(pipeline.epochs, messages)
                out = await run_step(pipeline.process, messages, executor,
                                     settings.retry_max_delay_s, metrics)
                out.timings["consume"] = waited
                now_at = read_at(pipeline.epochs, messages)
                # A partition that moved to a new log, or whose batch began on the old one,
                # must not commit what Faust acked on the old log (epochs.CommitGuard).
                stale = {p for p, e in now_at.items() if before[p] not in (None, e)
                         or out.epochs.get(p, e) != e}
                if publishing is not None:
                    await publishing  # batches publish in order, at most one behind the step
                # This batch publishes while the next one runs its step (README "Serving
                # speed"); its offsets stay held until the broker has every record.
                publishing = asyncio.ensure_future(publish(events, out, stale))
                if not settings.publish_overlap:
                    await publishing
            if publishing is not None:
                await publishing
        finally:
            if publishing is not None and not publishing.done():
                publishing.cancel()  # a stop: those clicks stay unacked and are redelivered

    return recommend
