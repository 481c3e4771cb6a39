"""Agent `recommend`: click micro-batches -> histories -> recall -> a recommendation per click."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

import faust

from streams.agents.batches import (
    deliver,
    forget_commits,
    hold,
    raw_messages,
    release,
    run_step,
)
from streams.metrics import WorkerMetrics
from streams.pipeline import ClickPipeline
from streams.settings import Settings

log = logging.getLogger(__name__)
ITEMS_WAIT_S = 30.0


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
    worker's streamed item table has caught up with the items topic (streams/item_feed.py).
    """

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
        async for events in batches:
            hold(events)
            messages = raw_messages(events)
            log.debug("batch of %d clicks", len(messages))
            out = await run_step(pipeline.process, messages, executor,
                                 settings.retry_max_delay_s, metrics)
            if out.counts.get("broker_resets"):
                forget_commits(app.consumer, settings.clicks_topic)
            stepped = time.perf_counter()
            await deliver(out, topics["recs"], topics["dead"], settings.max_message_bytes,
                          settings.retry_max_delay_s, metrics)
            release(events)
            out.timings["publish"] = time.perf_counter() - stepped
            now = time.time()
            ages = [now - e.message.timestamp for e in events if e.message.timestamp]
            metrics.click_batch(len(messages), len(out.records), out.timings, out.counts, ages)

    return recommend
