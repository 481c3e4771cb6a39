"""Log epochs: which incarnation of a topic a click came from, so a broker reset is noticed.

Kafka offsets only grow within one log. A broker that loses its data (the local tansu with
memory storage) or a topic deleted and created again starts every partition at offset 0, and
the history store's per-partition offset guard would then skip every new click as "already
applied". The topic id (a UUID the broker gives each created topic) names the log: the
worker passes it with every click as the guard's epoch, and a new id re-baselines the guard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from streams.errors import ServiceUnavailable

log = logging.getLogger(__name__)
NO_ID = "00000000-0000-0000-0000-000000000000"


class TopicIds:
    """Reads topic ids from the brokers (kafka-python admin client; sync, run it off the loop)."""

    def __init__(self, bootstrap: str, timeout_s: float = 5.0, **client: Any) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._client_kwargs = client
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()  # the batch thread and the commit guard both ask

    def start(self) -> None:
        try:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                           request_timeout_ms=int(self.timeout_s * 1000),
                                           **self._client_kwargs)
        except KafkaError as exc:
            raise ServiceUnavailable(f"kafka admin connect failed: {exc}") from exc

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __call__(self, topic: str) -> str:
        """The topic's id, or "" where the broker gives none (then resets go unnoticed)."""
        if self._admin is None:
            raise RuntimeError("TopicIds.start() was not called")
        try:
            with self._lock:
                described = self._admin.describe_topics([topic])
        except (KafkaError, OSError) as exc:
            raise ServiceUnavailable(f"kafka describe {topic} failed: {exc}") from exc
        topic_id = str(described[0].get("topic_id") or "") if described else ""
        return "" if topic_id == NO_ID else topic_id


class LogEpochs:
    """The epoch of each consumed click: the id of the log (topic incarnation) it came from.

    The topic id is looked up again when offsets go backwards and every `refresh_s`. A new id
    is a reset (logged as an error, counted in `resets`), but a partition takes the new id only
    at its first offset that goes back: clicks read from the old log before the reset and
    processed after it (a batch held while the broker was down) keep the old epoch. Offsets
    going back on the same log (a rebalance's redelivery) keep the epoch.
    """

    def __init__(self, lookup: Callable[[str], str], refresh_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.refresh_s = refresh_s
        self.clock = clock
        self.resets = 0
        self._ids: dict[str, tuple[str, float]] = {}  # topic -> (id, looked up at)
        self._parts: dict[tuple[str, int], tuple[str, int]] = {}  # -> (epoch, last offset)
        self._lock = threading.Lock()  # the batch thread writes, the commit guard reads

    def epochs(self, topic: str, offsets: Sequence[tuple[int, int]]) -> list[str]:
        """The epoch of each of a batch's (partition, offset) pairs of `topic`, in order."""
        backwards = any(o <= self._parts.get((topic, p), ("", -1))[1] for p, o in offsets)
        known = self._ids.get(topic)
        if known is None or backwards or self.clock() - known[1] > self.refresh_s:
            fresh = self.lookup(topic)
            if known is not None and fresh != known[0]:
                self.resets += 1
                log.error("BROKER RESET: topic %s has a new id (%s -> %s): its offsets start "
                          "again; each partition re-baselines its replay guard on the new log",
                          topic, known[0] or "none", fresh or "none")
            elif known is None and not fresh:
                log.warning("broker gives no id for topic %s: broker resets go unnoticed", topic)
            known = (fresh, self.clock())
            self._ids[topic] = known
        result = []
        with self._lock:
            for p, o in offsets:
                epoch, last = self._parts.get((topic, p), (known[0], -1))
                if o <= last:
                    epoch = known[0]  # back to the log's start, or a redelivery on the same log
                self._parts[(topic, p)] = (epoch, o)
                result.append(epoch)
        return result

    def epoch(self, topic: str, partition: int) -> str | None:
        """The epoch `partition` of `topic` is read at now; None before its first click."""
        with self._lock:
            state = self._parts.get((topic, partition))
        return None if state is None else state[0]

    def stale(self, topic: str, topic_id: str) -> set[int]:
        """Partitions of `topic` whose clicks come from a log other than `topic_id`."""
        with self._lock:
            return {p for (t, p), (epoch, _) in self._parts.items()
                    if t == topic and epoch != topic_id}


class CommitGuard:
    """Which partitions of `topic` must not commit now: those still on a replaced log.

    After a broker reset, offsets acked on the old log (their commit failed while the broker
    was down) would be committed to the new log, and the group would seek there after its
    next join and skip the new log's first clicks. So before each commit the topic id is read
    again and compared with the epoch each partition is read at.
    """

    def __init__(self, lookup: Callable[[str], str], epochs: LogEpochs, topic: str) -> None:
        self.lookup = lookup
        self.epochs = epochs
        self.topic = topic
        self._reported: set[int] = set()

    def stale(self) -> set[int] | None:
        """Partitions whose acked offsets must be dropped; None when the broker cannot tell."""
        try:
            now = self.lookup(self.topic)
        except ServiceUnavailable:
            return None
        stale = self.epochs.stale(self.topic, now)
        if stale - self._reported:
            log.error("BROKER RESET: partitions %s of %s are still read at a replaced log: "
                      "their acked offsets are dropped, not committed", sorted(stale), self.topic)
        self._reported = stale
        return stale
