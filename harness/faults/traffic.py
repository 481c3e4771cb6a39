"""Fault tests' traffic: paced valid clicks with their broker positions, and topic collectors.

Every message the harness sends is remembered with the partition and offset the broker acked,
tagged with the broker's *epoch* (bumped at each broker restart: tansu's memory storage starts
again at offset 0, so a position names a message only within one epoch).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.kafka import make_consumer
from streams.errors import BadEvent
from streams.records import DeadLetter, Recommendation
from streams.settings import Settings


class Epoch:
    """The broker's lifetime counter, shared by senders and collectors."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


@dataclass
class Sent:
    """One message the harness sent; `state` is pending, acked or failed (with `error`)."""

    topic: str
    value: bytes
    sent_at: float  # wall clock
    state: str = "pending"
    epoch: int = -1
    partition: int = -1
    offset: int = -1
    error: str = ""
    acked_at: float = 0.0  # wall clock of the broker's answer (0: none)

    def ack(self, epoch: Epoch, metadata: Any) -> None:
        self.epoch, self.partition, self.offset = epoch.value, metadata.partition, metadata.offset
        self.state, self.acked_at = "acked", time.time()

    def fail(self, exc: BaseException) -> None:
        self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"[:200]

    @property
    def position(self) -> tuple[int, str, int, int]:
        return self.epoch, self.topic, self.partition, self.offset


@dataclass
class SentClick(Sent):
    user: int = 0
    item: int = 0
    ts: float = 0.0

    @property
    def key(self) -> tuple[int, int, float]:
        """What a recommendation names its click by: (user_id, click_item, click_ts)."""
        return self.user, self.item, self.ts


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """kafka-python producer: acks from the leader, no retries (a failed send stays failed)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap, "acks": 1, "retries": 0,
        "linger_ms": 2, "max_block_ms": 2000, "request_timeout_ms": 5000,
        "reconnect_backoff_max_ms": 200, "metadata_max_age_ms": 2000,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def send(prod: KafkaProducer, epoch: Epoch, record: Sent, key: bytes | None) -> None:
    """Send `record.value`; its state follows the broker's answer."""
    try:
        future = prod.send(record.topic, key=key, value=record.value)
    except KafkaError as exc:
        record.fail(exc)
        return
    future.add_callback(lambda metadata: record.ack(epoch, metadata))
    future.add_errback(record.fail)


class ClickTraffic(threading.Thread):
    """Sends valid clicks of `users` on known `items` at `rate`/s until stopped; pausable.

    Timestamps are wall-clock, strictly increasing over the whole run, so (user, ts) names a
    click and a user's clicks are in time order in their partition (keyed by user).
    """

    _last_ts = 0.0
    _ts_lock = threading.Lock()

    def __init__(self, settings: Settings, epoch: Epoch, users: Sequence[int],
                 items: Sequence[int], rate: float, seed: int):
        super().__init__(daemon=True)
        self.settings, self.epoch = settings, epoch
        self.users, self.items, self.rate = list(users), list(items), rate
        self.rng = random.Random(seed)
        self.sent: list[SentClick] = []
        self.producer = producer(settings)
        self.running = threading.Event()
        self.running.set()
        self.done = threading.Event()

    @classmethod
    def next_ts(cls) -> float:
        with cls._ts_lock:
            ts = max(time.time(), cls._last_ts + 1e-4)
            cls._last_ts = ts
            return ts

    def click(self, user: int, item: int) -> SentClick:
        ts = self.next_ts()
        value = json.dumps({"user_id": user, "item_id": item, "ts": ts}).encode()
        record = SentClick(self.settings.clicks_topic, value, time.time(), user=user, item=item,
                           ts=ts)
        self.sent.append(record)
        send(self.producer, self.epoch, record, str(user).encode())
        return record

    def run(self) -> None:
        interval, next_at = 1.0 / self.rate, time.monotonic()
        while not self.done.is_set():
            if not self.running.wait(0.05):
                next_at = time.monotonic()
                continue
            self.click(self.rng.choice(self.users), self.rng.choice(self.items))
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # blocked (broker down): do not burst to catch up
                next_at = time.monotonic()

    def pause(self) -> None:
        self.running.clear()
        time.sleep(0.06)  # let a send in progress finish

    def resume(self) -> None:
        self.running.set()

    def finish(self, timeout_s: float = 15.0) -> None:
        """Stop sending, wait for every answer from the broker, close the producer."""
        self.done.set()
        self.join(timeout_s)
        with contextlib.suppress(KafkaError):
            self.producer.flush(timeout=timeout_s)
        self.producer.close(timeout=5)
        for record in self.sent:
            if record.state == "pending":
                record.state, record.error = "failed", "no answer from the broker"


@dataclass
class Received:
    rec: Recommendation
    at: float  # wall clock when read
    epoch: int
    partition: int = -1  # where the record was in the recommendations topic
    offset: int = -1


class Collector(threading.Thread):
    """Reads one topic from its start in the background; a record read again is skipped."""

    def __init__(self, settings: Settings, topic: str, epoch: Epoch, kind: str):
        super().__init__(daemon=True)
        self.settings, self.topic, self.epoch, self.kind = settings, topic, epoch, kind
        self.recs: list[Received] = []  # kind "recs"
        self.dead: list[tuple[int, DeadLetter]] = []  # kind "dead": (epoch, record)
        self.unparsable = 0
        self.stop_event = threading.Event()
        self._reseek = threading.Event()
        self._seen: set[tuple[int, int, int, int]] = set()
        self.consumer = self._consumer()

    def _consumer(self) -> Any:
        return make_consumer(self.settings.kafka_bootstrap, self.topic, from_beginning=True,
                             auto_offset_reset="earliest",
                             fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
                             reconnect_backoff_max_ms=200)

    def broker_restarted(self) -> None:
        """The topic was recreated empty: read it again from its (new) beginning."""
        self._reseek.set()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                if self._reseek.is_set():
                    self._reseek.clear()
                    self.consumer.seek_to_beginning()
                try:
                    batches = self.consumer.poll(timeout_ms=100)
                except KafkaError:
                    time.sleep(0.2)
                    continue
                now, epoch = time.time(), self.epoch.value
                for messages in batches.values():
                    for m in messages:
                        self._take(m, now, epoch)
        finally:
            self.consumer.close()

    def _take(self, m: Any, now: float, epoch: int) -> None:
        # a position names a record only within one log: a topic recreated right after a
        # broker restart (the local stack fixes a wrongly auto-created one) reuses positions
        where = (epoch, m.partition, m.offset, zlib.crc32(m.value or b""))
        if where in self._seen:
            return
        self._seen.add(where)
        try:
            if self.kind == "recs":
                self.recs.append(Received(Recommendation.parse(m.value), now, epoch,
                                          m.partition, m.offset))
            else:
                self.dead.append((epoch, DeadLetter.parse(m.value)))
        except BadEvent:
            self.unparsable += 1

    def read_in(self, epoch: int) -> int:
        """How many records of the broker's `epoch` this collector has read."""
        return sum(where[0] == epoch for where in list(self._seen))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
