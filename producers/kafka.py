"""Shared Kafka plumbing for the producer CLIs: client construction, delivery counting, CLI args."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streams.errors import BadEvent, BadRequest, RecallError, ServiceUnavailable
from streams.records import Wire
from streams.security import kafka_python_kwargs
from streams.settings import Settings

# exit codes shared by every CLI in producers/ and consumers/
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = ("exit codes: 0 ok, 1 some records invalid or undelivered, 2 bad arguments or input, "
              "3 Kafka unreachable, 130 interrupted")


def make_producer(bootstrap: str, *, settings: Settings | None = None,
                  **overrides: Any) -> KafkaProducer:
    """A KafkaProducer tuned for low latency; raises ServiceUnavailable if no broker answers.

    `settings` brings the Kafka credentials (SASL/TLS, `streams.security.kafka_python_kwargs`).
    """
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in bootstrap.split(",") if s.strip()],
        "acks": 1,
        "linger_ms": 5,
        "max_block_ms": 10_000,
        "request_timeout_ms": 10_000,
        "bootstrap_timeout_ms": 5_000,
        "client_id": "recall-producer",
    }
    if settings is not None:
        config.update(kafka_python_kwargs(settings))
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:  # kafka-python 3 raises KafkaTimeoutError when unreachable
        raise ServiceUnavailable(f"no Kafka broker reachable at {bootstrap} ({exc})") from None


@dataclass
class SendStats:
    """What one producing run achieved: acknowledged, failed and skipped records, wall time."""

    sent: int = 0
    failed: int = 0
    invalid: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Acknowledged records per second over the run."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        line = (f"sent {self.sent}, failed {self.failed}, invalid {self.invalid}, "
                f"{self.elapsed_s:.2f}s, {self.rate:.1f} msg/s")
        return line + (f"; first error: {self.errors[0]}" if self.errors else "")


class Sender:
    """Sends key/value pairs to one topic and counts deliveries from the producer callbacks."""

    def __init__(self, producer: Any, topic: str, clock: Callable[[], float] = time.monotonic):
        self.producer, self.topic, self._clock = producer, topic, clock
        self.stats = SendStats()
        self._lock = threading.Lock()
        self._start = clock()

    def _ok(self, _metadata: Any) -> None:
        with self._lock:
            self.stats.sent += 1

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.failed += 1
            if len(self.stats.errors) < 5:
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")

    def send(self, key: bytes, value: bytes) -> None:
        """Queue one record; a synchronous failure (metadata timeout) is counted, not raised."""
        try:
            future = self.producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:
            self._fail(exc)
            return
        future.add_callback(self._ok)
        future.add_errback(self._fail)

    def skip(self, reason: str) -> None:
        """Count a record that was not sent because it is invalid."""
        self.stats.invalid += 1
        print(f"skipped: {reason}", file=sys.stderr)

    def send_valid(self, key: int, record: Wire, label: str) -> None:
        """Send `record` keyed by `key` if its fields are valid, else skip it with the reason."""
        try:
            record.check()
        except BadEvent as exc:
            self.skip(f"{label}: {exc}")
            return
        self.send(str(key).encode(), record.to_bytes())

    def flush(self, timeout_s: float = 30.0) -> SendStats:
        """Wait for every queued record and return the totals so far."""
        try:
            self.producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            self._fail(exc)
        self.stats.elapsed_s = self._clock() - self._start
        return self.stats


@contextmanager
def open_sender(bootstrap: str, topic: str, *, settings: Settings | None = None,
                **overrides: Any) -> Iterator[Sender]:
    """A Sender on a fresh producer (credentials from `settings`), flushed and closed on exit."""
    producer = make_producer(bootstrap, settings=settings, **overrides)
    sender = Sender(producer, topic)
    try:
        yield sender
    finally:
        sender.flush()
        producer.close(timeout=5)


def add_kafka_args(parser: argparse.ArgumentParser, settings: Settings, topic_field: str) -> None:
    """--bootstrap and --topic options whose defaults come from RECALL_* settings."""
    env_topic = f"RECALL_{topic_field.upper()}"
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap,
                        help="Kafka bootstrap servers (env RECALL_KAFKA_BOOTSTRAP, "
                             "now %(default)s)")
    parser.add_argument("--topic", default=getattr(settings, topic_field),
                        help=f"topic (env {env_topic}, now %(default)s)")


def run_cli(body: Callable[[], int]) -> int:
    """Run a CLI body and turn known failures into a one-line error and an exit code."""
    try:
        return body()
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (BadRequest, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RecallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PARTIAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
