"""Publish a batch's output: records to the output topic, dead letters to the dead-letter topic.

Broker outages are retried until they end (or the worker stops); a record the broker can
never take (too big, refused) is reported as a small dead letter instead, so its click's
offset still advances. What is an outage is decided by `streams.errors.classify`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import faust

from streams.errors import Kind, classify
from streams.observe.metrics import WorkerMetrics
from streams.worker.pipeline import KeyValue, Output, RawMessage, dead_letter
from streams.worker.retry import Backoff

log = logging.getLogger(__name__)


async def publish(
    topic: faust.TopicT, records: Sequence[KeyValue], max_bytes: int, max_delay: float = 5.0,
    metrics: WorkerMetrics | None = None,
) -> list[tuple[KeyValue, str]]:
    """Send records and wait until the broker has them all (offsets are acked only after this).

    Broker outages are retried until they end (or the worker stops); a record that can never
    be sent (over `max_bytes`, refused by the broker) is returned with the reason instead.
    """
    failed: list[tuple[KeyValue, str]] = []
    todo = list(records)
    backoff = Backoff(max_delay)
    while todo:
        retry: list[KeyValue] = []
        pending = []
        for key, value in todo:
            if len(value) > max_bytes:
                failed.append(((key, value), f"record of {len(value)} bytes is over the "
                                             f"{max_bytes} allowed"))
                continue
            try:
                pending.append(((key, value), await topic.send(key=key, value=value, force=True)))
            except Exception as exc:
                _sort((key, value), exc, retry, failed)
        for record, sent in pending:
            try:
                await sent
            except Exception as exc:
                _sort(record, exc, retry, failed)
        if retry:
            log.warning("%d records wait for the broker on %s; retry in %.1fs",
                        len(retry), topic.get_topic_name(), backoff.delay,
                        extra={"topic": topic.get_topic_name()})
            if metrics is not None:
                metrics.retry(ConnectionError("broker"), backoff.first, "kafka")
            await backoff.wait()
        todo = retry
    return failed


def _sort(record: KeyValue, exc: Exception, retry: list[KeyValue],
          failed: list[tuple[KeyValue, str]]) -> None:
    """File a failed send under `retry` (outage) or `failed` (the record's own fault)."""
    kind = classify(exc)
    if kind is Kind.SHUTDOWN:
        raise exc  # shutting down: leave the batch unacked
    if kind.retriable:
        retry.append(record)
    else:
        failed.append((record, f"broker refused the record: {exc!r}"))


def unsendable(topic: str, failed: Sequence[tuple[KeyValue, str]]) -> list[KeyValue]:
    """Small dead letters for records that could not be published to `topic`."""
    return [dead_letter(RawMessage(topic, -1, -1, key, value), f"could not publish: {reason}")
            for (key, value), reason in failed]


async def deliver(
    out: Output, output: faust.TopicT | None, dead: faust.TopicT, max_bytes: int,
    max_delay: float, metrics: WorkerMetrics,
) -> None:
    """Publish a batch's records to `output` and its dead letters; never raises for a record.

    A record that cannot be sent becomes a small dead letter; a dead letter that cannot be
    sent either is logged and counted. Both leave the batch's offsets free to advance.
    """
    failed = await publish(output, out.records, max_bytes, max_delay, metrics) if output else []
    letters = out.dead + unsendable(output.get_topic_name(), failed) if output else out.dead
    lost = await publish(dead, letters, max_bytes, max_delay, metrics)
    for (_, value), reason in lost:
        log.error("dead letter of %d bytes not published either: %s", len(value), reason)
    published = list(letters)
    for record, _ in lost:
        published.remove(record)
    metrics.delivered(published, len(lost), len(failed))
