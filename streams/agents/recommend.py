"""Agent `recommend`: click micro-batches -> histories -> recall -> a recommendation per click."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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
) -> faust.types.AgentT:
    """Register the agent on `app`; events are acked (and later committed) after publishing."""

    @app.agent(topics["clicks"], name="recommend")
    async def recommend(stream: faust.StreamT) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.batch_size, within=settings.batch_window_s)
        async for events in batches:
            hold(events)
            messages = raw_messages(events)
            log.debug("batch of %d clicks", len(messages))
            waited = consume_seconds(events, time.time())
            out = await run_step(pipeline.process, messages, executor,
                                 settings.retry_max_delay_s, metrics)
            out.timings["consume"] = waited
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
