"""Agent `recommend`: click micro-batches -> histories -> recall -> a recommendation per click."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor

import faust

from streams.agents.batches import (
    deliver,
    hold,
    raw_messages,
    read_at,
    release_or_drop,
    run_step,
)
from streams.metrics import WorkerMetrics
from streams.pipeline import ClickPipeline
from streams.settings import Settings

log = logging.getLogger(__name__)


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
            before = read_at(pipeline.epochs, messages)
            out = await run_step(pipeline.process, messages, executor,
                                 settings.retry_max_delay_s, metrics)
            now_at = read_at(pipeline.epochs, messages)
            # A partition that moved to a new log, or whose batch began on the old one, must
            # not commit what Faust acked on the old log (see streams.epochs.CommitGuard).
            stale = {p for p, e in now_at.items() if before[p] not in (None, e)
                     or out.epochs.get(p, e) != e}
            stepped = time.perf_counter()
            await deliver(out, topics["recs"], topics["dead"], settings.max_message_bytes,
                          settings.retry_max_delay_s, metrics)
            release_or_drop(events, app.consumer, settings.clicks_topic, stale)
            out.timings["publish"] = time.perf_counter() - stepped
            now = time.time()
            ages = [now - e.message.timestamp for e in events if e.message.timestamp]
            metrics.click_batch(len(messages), len(out.records), out.timings, out.counts, ages)

    return recommend
