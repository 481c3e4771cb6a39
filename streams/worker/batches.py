"""Shared agent plumbing: run a batch step off the loop with retries, publish its output.

Nothing here may stop an agent for good: outages are retried with capped backoff (and end at
once when the worker shuts down and cancels the agent), a message that makes a step fail is
isolated and dead-lettered, and a record the broker can never take is reported as a small
dead letter while its click's offset still advances.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import Any

import faust
import redis
from aiokafka import errors as kafka_errors
from aiokafka.errors import KafkaError, ProducerClosed

from streams.errors import RecallError
from streams.logs import batch_fields
from streams.observe.metrics import WorkerMetrics
from streams.worker.epochs import CommitGuard, LogEpochs
from streams.worker.pipeline import KeyValue, Output, RawMessage, dead_letter

log = logging.getLogger(__name__)

Step = Callable[[Sequence[RawMessage]], Output]
TRANSIENT = (ConnectionError, TimeoutError, redis.ConnectionError, redis.TimeoutError)
FIRST_DELAY_S = 0.2


def is_retriable(exc: BaseException) -> bool:
    """Server outages are retried; anything else is a fault of the messages (or of the code)."""
    if isinstance(exc, RecallError):
        return exc.retriable
    return isinstance(exc, TRANSIENT) and not isinstance(exc, redis.AuthenticationError)


#: Send errors that are the record's own fault (or a setting's): retrying cannot help.
RECORD_FAULTS: tuple[type[Exception], ...] = (
    kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError, kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError, kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.UnsupportedCodecError, kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,
)


def is_kafka_outage(exc: BaseException) -> bool:
    """A send failed because the broker is away (retry), not because of the record (report).

    Every Kafka error but the record faults counts as an outage: a restarting broker answers
    with UnknownError or unknown-topic errors for a while, and a record must not be given up
    for that.
    """
    if isinstance(exc, ProducerClosed):
        return False
    if isinstance(exc, KafkaError):
        return not isinstance(exc, RECORD_FAULTS)
    return is_retriable(exc)


class Backoff:
    """Doubling delays from FIRST_DELAY_S up to `cap`; sleeping is cancelled by a shutdown."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.delay = FIRST_DELAY_S

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(2 * self.delay, self.cap)


def hold(events: Sequence[faust.EventT]) -> None:
    """Keep the events' offsets from being committed until `release`.

    Faust's take_events acks a whole batch when it ends, also when its agent is cancelled in
    the middle of it (a stop during an outage): the extra reference keeps that ack from being
    the last one, so clicks never published are not committed and are redelivered.
    """
    for event in events:
        event.message.incref()


def release(events: Sequence[faust.EventT]) -> None:
    """The batch is published: drop `hold`'s reference.

    An ack, not a bare decref: with publishing overlapped, take_events has already acked the
    batch (when the agent asked for the next one), so this is the last reference and must be
    the final ack that lets Faust commit the offsets; otherwise take_events' ack is the last.
    """
    for event in events:
        event.ack()


def forget_commits(consumer: Any, topic: str, partitions: Iterable[int] | None = None) -> None:
    """After a broker reset, forget what Faust acked and committed on `topic`'s old log.

    Faust only records acks of offsets above the last one it committed for a partition; when
    the log starts again at 0 it would never commit again (and a restart would replay every
    click since the reset), and a stop would wait for acks it ignores. Acked offsets of the
    old log must not be committed to the new one either.
    """
    wanted = None if partitions is None else set(partitions)
    for state in (consumer._committed_offset, consumer._acked, consumer._acked_index,
                  consumer._gap):
        for tp in [tp for tp in state if tp.topic == topic
                   and (wanted is None or tp.partition in wanted)]:
            del state[tp]


def release_or_drop(events: Sequence[faust.EventT], consumer: Any, topic: str,
                    stale: set[int]) -> None:
    """`release` a published batch; acks of `stale` partitions (read on a replaced log) are
    made at once and forgotten, so nothing waits for them and nothing commits them."""
    if stale:  # Faust ignores (and waits for) acks below an offset committed on the old log
        forget_commits(consumer, topic, stale)
    release(events)
    if stale:
        for event in events:
            event.ack()
        forget_commits(consumer, topic, stale)


def read_at(epochs: LogEpochs | None, messages: Sequence[RawMessage]) -> dict[int, str | None]:
    """The log epoch each partition of `messages` is read at now (None: not read yet)."""
    if epochs is None or not messages:
        return {}
    return {p: epochs.epoch(messages[0].topic, p) for p in {m.partition for m in messages}}


def guard_commits(consumer: Any, guard: CommitGuard) -> None:
    """Before each of Faust's commits, drop the acks of partitions read on a replaced log."""
    commit = consumer.commit

    async def guarded(*args: Any, **kwargs: Any) -> bool:
        stale = await asyncio.get_running_loop().run_in_executor(None, guard.stale)
        if stale is None:
            return False  # the broker cannot tell now: nothing could be committed anyway
        if stale:
            forget_commits(consumer, guard.topic, stale)
        return bool(await commit(*args, **kwargs))

    consumer.commit = guarded


def raw_messages(events: Sequence[faust.EventT]) -> list[RawMessage]:
    """Strip Faust events down to what the batch steps need."""
    return [
        RawMessage(e.message.topic, e.message.partition, e.message.offset, e.key, e.value)
        for e in events
    ]


async def run_step(
    step: Step, messages: Sequence[RawMessage], executor: Executor, max_delay: float = 5.0,
    metrics: WorkerMetrics | None = None,
) -> Output:
    """Run `step` in the executor; retry outages, isolate a poison message by bisection."""
    loop = asyncio.get_running_loop()
    backoff = Backoff(max_delay)
    while True:
        try:
            return await loop.run_in_executor(executor, step, messages)
        except Exception as exc:
            if is_retriable(exc):
                log.warning("batch of %d waits for a server: %r; retry in %.1fs",
                            len(messages), exc, backoff.delay, extra=batch_fields(messages))
                if metrics is not None:
                    metrics.retry(exc, first=backoff.delay == FIRST_DELAY_S)
                await backoff.wait()
                continue
            if len(messages) == 1:
                return Output(dead=[dead_letter(messages[0], f"processing failed: {exc!r}")])
            log.error("batch of %d failed (%r); splitting it to find the bad message",
                      len(messages), exc, extra=batch_fields(messages))
            half = len(messages) // 2
            left = await run_step(step, messages[:half], executor, max_delay, metrics)
            right = await run_step(step, messages[half:], executor, max_delay, metrics)
            return Output(left.records + right.records, left.dead + right.dead,
                          _sum(left.counts, right.counts), _sum(left.timings, right.timings))


def _sum(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


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
                metrics.retry(ConnectionError("broker"), backoff.delay == FIRST_DELAY_S, "kafka")
            await backoff.wait()
        todo = retry
    return failed


def _sort(record: KeyValue, exc: Exception, retry: list[KeyValue],
          failed: list[tuple[KeyValue, str]]) -> None:
    """File a failed send under `retry` (outage) or `failed` (the record's own fault)."""
    if isinstance(exc, ProducerClosed):
        raise exc  # shutting down: leave the batch unacked
    if is_kafka_outage(exc):
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
