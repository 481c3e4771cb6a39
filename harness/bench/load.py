"""Open-loop click load and the reader of the answers: one `Step` per offered rate.

The producer sends on a clock (click i at start + i / rate), never waiting for the pipeline;
each click carries its send time as `ts`. The collector reads the output topic from its start
and keys every answer by (user, item, ts): a recommendation's (user_id, click_item, click_ts)
or, for the pass-through worker, the copied click's (user_id, item_id, ts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import orjson

from consumers.kafka import make_consumer
from harness.bench.sweep import Step, step_from_latencies
from producers.kafka import make_producer
from streams.settings import Settings

Key = tuple[int, int, float]


class Collector(threading.Thread):
    """Reads an output topic in the background: arrival time (s) per answered click."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True, name=f"collect-{topic}")
        self.consumer = make_consumer(settings.kafka_bootstrap, topic, from_beginning=True,
                                      fetch_max_wait_ms=10, settings=settings)
        self.arrived: dict[Key, float] = {}
        self.duplicates = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                for records in self.consumer.poll(timeout_ms=50).values():
                    now = time.time()
                    for record in records:
                        key = answer_key(record.value)
                        if key in self.arrived:
                            self.duplicates += 1
                        else:
                            self.arrived[key] = now
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)

    def wait_for(self, keys: Sequence[Key], timeout_s: float) -> int:
        """Wait until every key arrived or `timeout_s` passed; how many arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = sum(1 for k in keys if k in self.arrived)
            if got == len(keys) or time.monotonic() > deadline:
                return got
            time.sleep(0.1)


def answer_key(value: bytes) -> Key:
    """(user, clicked item, click ts) of a recommendation or of a copied click."""
    doc = orjson.loads(value)
    if "click_item" in doc:
        return int(doc["user_id"]), int(doc["click_item"]), float(doc["click_ts"])
    return int(doc["user_id"]), int(doc["item_id"]), float(doc["ts"])


class ClickLoad:
    """Sends clicks of `users` users on `items` to one topic at a fixed offered rate."""

    def __init__(self, settings: Settings, topic: str, users: int, items: np.ndarray,
                 *, linger_ms: int, seed: int = 0) -> None:
        self.producer = make_producer(settings.kafka_bootstrap, settings=settings,
                                      linger_ms=linger_ms)
        self.topic = topic
        self.users = users
        self.items = items
        self.rng = np.random.default_rng(seed)

    def close(self) -> None:
        self.producer.close(timeout=10)

    def send(self, user: int, item: int) -> Key:
        ts = time.time()
        value = orjson.dumps({"user_id": user, "item_id": item, "ts": ts})
        self.producer.send(self.topic, key=str(user).encode(), value=value)
        return user, item, ts

    def offer(self, rate: float, seconds: float) -> tuple[list[Key], float]:
        """Send rate * seconds clicks on schedule (all that are due, then a 1 ms nap)."""
        total = max(1, int(rate * seconds))
        users = self.rng.integers(1, self.users + 1, total)
        items = self.rng.choice(self.items, total)
        keys: list[Key] = []
        start = time.monotonic()
        while len(keys) < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            while len(keys) < due:
                i = len(keys)
                keys.append(self.send(int(users[i]), int(items[i])))
            time.sleep(0.001)
        self.producer.flush(timeout=30)
        return keys, time.monotonic() - start


def run_step(load: ClickLoad, collector: Collector, rate: float, seconds: float,
             drain_s: float) -> Step:
    """Offer `rate` for `seconds`, wait up to `drain_s` for the answers; latencies in ms."""
    keys, spent = load.offer(rate, seconds)
    collector.wait_for(keys, drain_s)
    latencies = [1000.0 * (collector.arrived[k] - k[2]) for k in keys if k in collector.arrived]
    return step_from_latencies(rate, seconds, len(keys), latencies, spent)
