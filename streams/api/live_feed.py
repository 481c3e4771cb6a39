"""The live page's Kafka side: clicks sent from the page, and a tail of the recommendations topic.

`LiveKafka` runs on the API's event loop (aiokafka): a producer for the clicks a person makes on
the page, and a group-less consumer that reads the recommendations topic from its end into a
bounded ring. Connecting happens in the background and is retried, so the API starts (and
serves /recall) while the broker is away; a click sent before the broker answers gets a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.errors import BadEvent, BadRequest, ServiceUnavailable
from streams.records import Click, Limits, Recommendation
from streams.security import faust_broker_credentials
from streams.settings import Settings

log = logging.getLogger(__name__)

RETRY_S = 2.0
SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FeedEntry:
    """One recommendation seen on the topic; latency = received - click_ts (as
    consumers.recommendations measures it)."""

    seq: int
    received: float
    partition: int
    offset: int
    record: Recommendation

    @property
    def latency_ms(self) -> float:
        return (self.received - self.record.click_ts) * 1000.0


class LiveKafka:
    """Producer of page clicks and tail of the recommendations topic, on the running loop."""

    def __init__(self, settings: Settings, size: int = 200,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.limits = Limits.from_settings(settings)
        self.entries: deque[FeedEntry] = deque(maxlen=size)
        self.seq = 0
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None and self._consumer is not None

    def _auth(self) -> dict[str, Any]:
        return dict(credentials_to_aiokafka_auth(faust_broker_credentials(self.settings)))

    async def start(self) -> None:
        """Connect and tail in a background task (retried every RETRY_S until the broker is up)."""
        self._task = asyncio.create_task(self._run(), name="live-kafka")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        self._producer = self._consumer = None

    async def _connect(self) -> None:
        s, auth = self.settings, self._auth()
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", **auth)
        consumer = AIOKafkaConsumer(
            s.recs_topic, bootstrap_servers=s.kafka_bootstrap, group_id=None,
            auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=50, **auth)
        try:
            await producer.start()
            await consumer.start()
        except BaseException:
            for client in (consumer, producer):
                with contextlib.suppress(Exception):
                    await client.stop()
            raise
        self._producer, self._consumer = producer, consumer

    async def _run(self) -> None:
        while self._consumer is None:
            try:
                await self._connect()
            except Exception as exc:
                log.warning("live page: broker %s not reachable (%r); retrying in %.0f s",
                            self.settings.kafka_bootstrap, exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
        log.info("live page: tailing %s", self.settings.recs_topic)
        consumer = self._consumer
        while True:
            try:
                async for message in consumer:
                    self.add(message.value, message.partition, message.offset)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the consumer reconnects by itself; keep tailing
                log.warning("live page: recommendations tail interrupted: %r", exc)
                await asyncio.sleep(RETRY_S)

    def add(self, value: bytes | None, partition: int, offset: int) -> None:
        """Keep one consumed recommendation (a value that is not one is skipped)."""
        try:
            record = Recommendation.parse(value)
        except BadEvent as exc:
            log.debug("live page: skipped %s[%d]@%d: %s", self.settings.recs_topic, partition,
                      offset, exc)
            return
        self.seq += 1
        self.entries.append(FeedEntry(self.seq, self.clock(), partition, offset, record))

    def after(self, seq: int) -> list[FeedEntry]:
        """Entries newer than `seq`, oldest first."""
        return [entry for entry in self.entries if entry.seq > seq]

    async def send_click(self, user_id: int, item_id: int) -> tuple[Click, int, int]:
        """Send one click (ts = now) keyed by user, as producers.click does; wait for the ack."""
        try:
            click = Click.parse({"user_id": user_id, "item_id": item_id, "ts": self.clock()},
                                self.limits)
        except BadEvent as exc:
            raise BadRequest(str(exc)) from None
        if self._producer is None:
            raise ServiceUnavailable(f"broker {self.settings.kafka_bootstrap} not reachable yet")
        try:
            meta = await asyncio.wait_for(self._producer.send_and_wait(
                self.settings.clicks_topic, click.to_bytes(), key=str(user_id).encode()),
                SEND_TIMEOUT_S)
        except (TimeoutError, ConnectionError, KafkaError) as exc:
            raise ServiceUnavailable(f"click not acknowledged: {exc!r}") from exc
        return click, meta.partition, meta.offset
