"""Log epochs: which incarnation of a topic a click came from, so a broker reset is noticed.

Kafka offsets only grow within one log. A broker that loses its data (the local tansu with
memory storage) or a topic deleted and created again starts every partition at offset 0, and
the history store's per-partition offset guard would then skip every new click as "already
applied". The topic id (a UUID the broker gives each created topic) names the log: the
worker passes it with every click as the guard's epoch, and a new id re-baselines the guard.
"""

from __future__ import annotations

import logging
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
            described = self._admin.describe_topics([topic])
        except (KafkaError, OSError) as exc:
            raise ServiceUnavailable(f"kafka describe {topic} failed: {exc}") from exc
        topic_id = str(described[0].get("topic_id") or "") if described else ""
        return "" if topic_id == NO_ID else topic_id


class LogEpochs:
    """The current epoch of each topic, looked up again when offsets go backwards.

    Offsets going backwards within this process happen on a rebalance (redelivery of
    uncommitted clicks: same log, same id) and on a broker reset (a new log: a new id). Only a
    new id is a reset: it is logged as an error and counted in `resets`.
    """

    def __init__(self, lookup: Callable[[str], str], refresh_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.refresh_s = refresh_s
        self.clock = clock
        self.resets = 0
        self._epochs: dict[str, tuple[str, float]] = {}  # topic -> (id, looked up at)
        self._last: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset seen

    def epoch(self, topic: str, offsets: Sequence[tuple[int, int]]) -> str:
        """The epoch for a batch's (partition, offset) pairs of `topic`."""
        backwards = any(o <= self._last.get((topic, p), -1) for p, o in offsets)
        known = self._epochs.get(topic)
        if known is None or backwards or self.clock() - known[1] > self.refresh_s:
            fresh = self.lookup(topic)
            if known is not None and fresh != known[0]:
                self.resets += 1
                log.error("BROKER RESET: topic %s has a new id (%s -> %s): its offsets start "
                          "again, the replay guard re-baselines on the new log",
                          topic, known[0] or "none", fresh or "none")
            elif known is None and not fresh:
                log.warning("broker gives no id for topic %s: broker resets go unnoticed", topic)
            known = (fresh, self.clock())
            self._epochs[topic] = known
        newest: dict[int, int] = {}
        for p, o in offsets:
            newest[p] = max(o, newest.get(p, -1))
        for p, o in newest.items():  # where this batch leaves each partition
            self._last[(topic, p)] = o
        return known[0]
