"""The only faust.App, built from Settings: low-latency fetches, commits after publishing."""

from __future__ import annotations

import faust

from streams.security import faust_broker_credentials
from streams.settings import Settings
from streams.worker.faust_compat import App, lower_fetch_wait


def create_app(settings: Settings) -> faust.App:
    """Build the worker's app: no tables, manual batching in agents, commits after publish."""
    lower_fetch_wait(settings.fetch_max_wait_ms)
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
        # a stop waits for them at most App.stop_wait_s (faust_compat.App).
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
