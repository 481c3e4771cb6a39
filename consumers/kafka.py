"""Group-less Kafka reading for the consumer CLIs: assign every partition, poll typed records."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams.errors import BadEvent, ServiceUnavailable
from streams.records import Wire
from streams.security import kafka_python_kwargs
from streams.settings import Settings

R = TypeVar("R", bound=Wire)
Report = Callable[[Any, str], None]


def make_consumer(bootstrap: str, topic: str, *, from_beginning: bool = False,
                  fetch_max_wait_ms: int = 10, wait_s: float = 10.0,
                  settings: Settings | None = None, **overrides: Any) -> KafkaConsumer:
    """A consumer without a group, assigned all partitions of `topic`, positioned eagerly.

    `settings` brings the Kafka credentials (SASL/TLS, `streams.security.kafka_python_kwargs`).

    No group means no join (which stalls on tansu) and no commits: every run starts at the end of
    the topic, or at its beginning with `from_beginning`. Waits up to `wait_s` for the topic.
    """
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in bootstrap.split(",") if s.strip()],
        "group_id": None,
        "enable_auto_commit": False,
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "request_timeout_ms": 10_000,
        "bootstrap_timeout_ms": 5_000,
        "client_id": "recall-consumer",
    }
    if settings is not None:
        config.update(kafka_python_kwargs(settings))
    config.update(overrides)
    try:
        consumer = KafkaConsumer(**config)
    except KafkaError as exc:  # kafka-python 3 raises KafkaTimeoutError when unreachable
        raise ServiceUnavailable(f"no Kafka broker reachable at {bootstrap} ({exc})") from None
    deadline = time.monotonic() + wait_s
    while not (partitions := consumer.partitions_for_topic(topic)):
        if time.monotonic() > deadline:
            consumer.close()
            raise ServiceUnavailable(f"topic {topic!r} not found on {bootstrap}")
        time.sleep(0.2)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if from_beginning:
        consumer.seek_to_beginning(*tps)
    else:
        consumer.seek_to_end(*tps)
    for tp in tps:  # resolve offsets now, so nothing produced after this call is missed
        consumer.position(tp)
    return consumer


def _report_stderr(message: Any, reason: str) -> None:
    print(f"skipped {message.topic}[{message.partition}]@{message.offset}: {reason}",
          file=sys.stderr)


def poll_records(consumer: KafkaConsumer, record_type: type[R], *, max_records: int | None = None,
                 idle_timeout_s: float | None = None, report: Report = _report_stderr,
                 poll_ms: int = 100) -> Iterator[tuple[Any, R]]:
    """Yield (Kafka message, parsed record) until `max_records` or `idle_timeout_s` of silence.

    Malformed values are passed to `report(message, reason)` and skipped, never raised.
    """
    count, last = 0, time.monotonic()
    while max_records is None or count < max_records:
        try:
            batches = consumer.poll(timeout_ms=poll_ms)
        except KafkaError as exc:
            raise ServiceUnavailable(f"Kafka poll failed: {exc}") from None
        if not batches and idle_timeout_s is not None \
                and time.monotonic() - last >= idle_timeout_s:
            return
        for messages in batches.values():
            for message in messages:
                last = time.monotonic()
                try:
                    record = record_type.parse(message.value)
                except BadEvent as exc:
                    report(message, str(exc))
                    continue
                yield message, record
                count += 1
                if max_records is not None and count >= max_records:
                    return
