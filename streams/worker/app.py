"""The only faust.App, built from Settings: low-latency fetches, commits after publishing."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.security import faust_broker_credentials
from streams.settings import Settings

_original_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _lower_fetch_wait(fetch_max_wait_ms: int) -> None:
    """Faust hard-codes fetch_max_wait_ms=1500; the broker holds a fetch that long, so lower it."""

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = _original_create_worker_consumer(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by aiokafka's Fetcher at start()
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = (  # type: ignore[method-assign]
        create_worker_consumer
    )


class App(faust.App):
    """faust.App whose stop waits at most `stop_wait_s` for in-flight batches.

    Rebalances still wait for them (Faust's `stream_wait_empty`). At a stop, a batch that
    waits for a down server is given up: its agent is cancelled, and as the agents hold their
    events until published (`agents.batches.hold`), none of its clicks is committed.
    """

    stop_wait_s = 2.0

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        if not self.should_stop:
            await super()._consumer_wait_empty(consumer, logger)
            return
        # Not asyncio.wait_for: Faust's wait loop swallows the cancellation, and wait_for would
        # wait for it to end. The loop ends by itself once the consumer stops.
        waiting = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        done, _ = await asyncio.wait({waiting}, timeout=self.stop_wait_s)
        if not done:
            waiting.cancel()
            logger.warning("stopping without the batches still in flight after %.1fs (a server "
                           "is down?): their clicks stay uncommitted and are redelivered",
                           self.stop_wait_s)


def create_app(settings: Settings) -> faust.App:
    """Build the worker's app: no tables, manual batching in agents, commits after publish."""
    _lower_fetch_wait(settings.fetch_max_wait_ms)
    return App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_broker_credentials(settings),  # None for PLAINTEXT
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # Group timing (README "Recovery after a worker exits"): a dead worker is noticed after
        # the session timeout; tansu also holds every JoinGroup for half of it.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        consumer_group_instance_id=settings.group_instance_id,
        # Revoke only after in-flight batches are done (fewer duplicates after a rebalance);
        # a stop waits for them at most App.stop_wait_s.
        stream_wait_empty=True,
        broker_max_poll_records=max(500, settings.batch_size),
        stream_buffer_maxsize=max(4096, 4 * settings.batch_size),
        producer_linger_ms=1,
        web_enabled=settings.worker_web_port > 0,  # /metrics, /healthz, /readyz (observe.py)
        web_port=settings.worker_web_port or None,
        web_bind=settings.worker_web_host,
        web_router_enabled=False, web_tables_enabled=False,  # no Faust debug pages on it
        web_graph_enabled=False, web_stats_enabled=False,
        datadir=f"{settings.worker_data_dir}/faust-{settings.consumer_group}",  # its own state
    )


def topics(app: faust.App, settings: Settings) -> dict[str, faust.TopicT]:
    """The four topics as raw bytes: agents parse values themselves and dead-letter bad ones."""
    names = {
        "clicks": settings.clicks_topic,
        "items": settings.items_topic,
        "recs": settings.recs_topic,
        "dead": settings.dead_letter_topic,
    }
    return {
        role: app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                        value_serializer="raw", partitions=None)
        for role, name in names.items()
    }
