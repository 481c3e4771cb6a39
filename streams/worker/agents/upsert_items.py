"""Agent `upsert_items`: item embeddings stream into Milvus (and the model's table) in batches."""

from __future__ import annotations

from concurrent.futures import Executor

import faust

from streams.observe.metrics import WorkerMetrics
from streams.settings import Settings
from streams.worker.acks import hold, raw_messages, release
from streams.worker.delivery import deliver
from streams.worker.pipeline import ItemPipeline
from streams.worker.retry import run_step


def attach(
    app: faust.App,
    topics: dict[str, faust.TopicT],
    pipeline: ItemPipeline,
    executor: Executor,
    settings: Settings,
    metrics: WorkerMetrics,
) -> faust.types.AgentT:
    """Register the agent on `app`; bad item records go to the dead-letter topic."""

    @app.agent(topics["items"], name="upsert_items")
    async def upsert_items(stream: faust.StreamT) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.item_batch_size, within=settings.batch_window_s)
        async for events in batches:
            hold(events)
            messages = raw_messages(events)
            out = await run_step(pipeline.process, messages, executor,
                                 settings.retry_max_delay_s, metrics)
            await deliver(out, None, topics["dead"], settings.max_message_bytes,
                          settings.retry_max_delay_s, metrics)
            release(events)
            metrics.item_batch(len(messages), len(messages) - len(out.dead))

    return upsert_items
