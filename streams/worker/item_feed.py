"""Every worker's copy of the streamed item vectors: a group-less reader of the whole items topic.

The agent `upsert_items` consumes the items topic in the consumer group, so each record reaches
Milvus once, through the worker that owns its partition. The model side is per process: every
worker needs the vector of every streamed item its model was not trained on, or a history
holding that item loses it. So each worker also reads every partition of the items topic from
the beginning, without a group (nothing committed, nothing rebalanced), and applies upserts and
deletes to its model's streamed table, in offset order per partition, like a Kafka Streams
global table. A restarted worker rebuilds the table the same way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Protocol

import faust
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.errors import BadEvent
from streams.observe.metrics import WorkerMetrics
from streams.records import ItemEmbedding, Limits
from streams.security import aiokafka_kwargs
from streams.settings import Settings
from streams.worker.pipeline import latest_items

log = logging.getLogger(__name__)


class StreamedTable(Protocol):
    """What the feed needs of model.serving.InterestModel."""

    def add_items(self, ids: Sequence[int], vectors: np.ndarray) -> None: ...

    def remove_items(self, ids: Sequence[int]) -> None: ...

    def is_trained(self, item_id: int) -> bool: ...

    @property
    def streamed_items(self) -> int: ...


ITEM_ID = re.compile(rb'"item_id"\s*:\s*(\d+)')


def names_trained_item(value: bytes | None, table: StreamedTable) -> bool:
    """Whether a record surely names an item the model was trained on: it cannot change the
    streamed table, so the feed skips it unparsed (a restart replays the model's own table)."""
    found = ITEM_ID.findall(value or b"")
    return len(found) == 1 and table.is_trained(int(found[0]))


def apply_records(values: Sequence[bytes | None], table: StreamedTable, limits: Limits) -> int:
    """Apply item records (oldest first) to `table`; returns how many were parsed and valid.

    Invalid records are skipped quietly: the group's agent dead-letters each of them once.
    """
    assert limits.dim is not None
    items = []
    for value in values:
        if names_trained_item(value, table):
            continue
        try:
            items.append(ItemEmbedding.parse(value, limits))
        except BadEvent:
            continue
    ids, vectors, deletes = latest_items(items, limits.dim)
    if ids:
        table.add_items(ids, vectors)
    if deletes:
        table.remove_items(deletes)
    return len(items)


class ItemFeed:
    """Reads the items topic into `table`; `caught_up` is set once it reached the end offsets
    the topic had when the feed started."""

    def __init__(self, settings: Settings, table: StreamedTable, limits: Limits,
                 executor: Executor, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.table = table
        self.limits = limits
        self.executor = executor
        self.metrics = metrics
        self.caught_up = asyncio.Event()
        self.read = 0  # records read
        self.applied = 0  # of which valid records of items outside the model

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=max(s.fetch_max_wait_ms, 100),
            **aiokafka_kwargs(s))

    async def run(self) -> None:
        """Run until cancelled; reads the topic again after any error (the worker goes on)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning("item feed: %r; reconnecting in 1s", exc)
            except Exception:
                log.exception("item feed failed; reading the items topic again in 1s")
            await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        topic = self.settings.items_topic
        consumer = self._consumer()
        await consumer.start()
        try:
            await consumer.topics()  # metadata of every topic, this one's partitions included
            partitions = [TopicPartition(topic, p)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                raise KafkaError(f"topic {topic} has no partitions yet")
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            while True:
                if not self.caught_up.is_set() and await _at(consumer, ends):
                    self.caught_up.set()
                    log.info("item feed caught up: %d records of %s read (%d of items outside "
                             "the model) in %.1fs", self.read, topic, self.applied,
                             time.monotonic() - started)
                batches = await consumer.getmany(timeout_ms=500,
                                                 max_records=self.settings.item_batch_size)
                for messages in batches.values():
                    values = [m.value for m in messages]
                    self.read += len(values)
                    self.applied += await loop.run_in_executor(
                        self.executor, apply_records, values, self.table, self.limits)
                if batches and self.metrics is not None:
                    self.metrics.streamed_items.set(self.table.streamed_items)
        finally:
            await consumer.stop()


async def _at(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer's position reached `ends` on every partition."""
    positions = [await consumer.position(tp) for tp in ends]
    return all(pos >= end for pos, end in zip(positions, ends.values(), strict=True))


def attach(app: faust.App, feed: ItemFeed) -> None:
    """Run `feed` on the worker's event loop from its start until it stops."""

    @app.task
    async def item_feed() -> None:
        await feed.run()
