"""Unit tests of the agents' batch runner: outages are retried, poison messages isolated."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import redis
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    ProducerClosed,
    UnknownError,
    UnknownTopicOrPartitionError,
)
from faust.types import TP
from faust.types.tuples import Message

from streams.errors import BadEvent, InvalidRequest, ServiceUnavailable
from streams.records import DeadLetter
from streams.worker.batches import (
    forget_commits,
    guard_commits,
    hold,
    is_retriable,
    publish,
    release,
    run_step,
    unsendable,
)
from streams.worker.pipeline import Output, RawMessage, dead_letter


def messages(n: int) -> list[RawMessage]:
    return [RawMessage("clicks", 1, i, b"k", str(i).encode()) for i in range(n)]


def run(step, batch: Sequence[RawMessage]) -> Output:  # noqa: ANN001
    with ThreadPoolExecutor(1) as executor:
        return asyncio.run(run_step(step, batch, executor, max_delay=0.01))


def test_outage_is_retried_until_the_server_answers() -> None:
    calls = []

    def step(batch: Sequence[RawMessage]) -> Output:
        calls.append(len(batch))
        if len(calls) < 3:
            raise ServiceUnavailable("redis down")
        return Output(records=[(m.key, m.value or b"") for m in batch])

    out = run(step, messages(4))
    assert calls == [4, 4, 4]
    assert len(out.records) == 4 and not out.dead


def test_poison_message_is_isolated_and_the_rest_still_processed() -> None:
    def step(batch: Sequence[RawMessage]) -> Output:
        if any(m.offset == 5 for m in batch):
            raise ValueError("model blew up on this input")
        return Output(records=[(m.key, m.value or b"") for m in batch])

    out = run(step, messages(8))
    assert sorted(int(v) for _, v in out.records) == [0, 1, 2, 3, 4, 6, 7]
    [(_, value)] = out.dead
    letter = DeadLetter.parse(value)
    assert (letter.topic, letter.partition, letter.offset) == ("clicks", 1, 5)
    assert "model blew up" in letter.reason


def test_retriable_classification() -> None:
    assert is_retriable(ServiceUnavailable("x"))
    assert is_retriable(redis.ConnectionError("x"))
    assert is_retriable(ConnectionRefusedError())
    assert not is_retriable(BadEvent("x"))
    assert not is_retriable(ValueError("x"))
    assert not is_retriable(InvalidRequest("milvus refused search"))


class FakeTopic:
    """A stand-in for a Faust topic: `fail` maps a value to the exceptions its sends raise."""

    def __init__(self, fail: dict[bytes, list[Exception]]) -> None:
        self.fail = fail
        self.sent: list[bytes] = []

    def get_topic_name(self) -> str:
        return "recommendations"

    async def send(self, *, key: bytes | None, value: bytes, force: bool) -> asyncio.Future:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        errors = self.fail.get(value, [])
        if errors:
            future.set_exception(errors.pop(0))
        else:
            self.sent.append(value)
            future.set_result(None)
        return future


def test_a_record_the_broker_refuses_is_reported_and_the_rest_are_sent() -> None:
    """Finding 1: MessageSizeTooLargeError used to kill the agent with its events unacked."""
    topic = FakeTopic({b"big": [MessageSizeTooLargeError()],
                       b"flaky": [KafkaConnectionError(), KafkaTimeoutError()],
                       # what a restarting broker answers for a while (seen with tansu)
                       b"restart": [UnknownError(), UnknownTopicOrPartitionError(),
                                    NotLeaderForPartitionError()]})
    records = [(b"k", b"a"), (b"k", b"big"), (b"k", b"flaky"), (b"k", b"restart"),
               (b"k", b"x" * 2000)]
    failed = asyncio.run(publish(topic, records, max_bytes=1024, max_delay=0.01))  # type: ignore[arg-type]
    assert topic.sent == [b"a", b"flaky", b"restart"]  # outages: retried until sent
    assert [(value, "over the 1024" in why or "MessageSizeTooLarge" in why)
            for (_, value), why in failed] == [(b"x" * 2000, True), (b"big", True)]
    [(_, letter)] = unsendable("recommendations", failed[1:])
    assert "could not publish" in DeadLetter.parse(letter).reason


def test_shutdown_during_publish_leaves_the_batch_unacked() -> None:
    topic = FakeTopic({b"a": [ProducerClosed()]})
    with pytest.raises(ProducerClosed):
        asyncio.run(publish(topic, [(b"k", b"a")], max_bytes=1024))  # type: ignore[arg-type]


def test_a_poison_message_makes_a_small_dead_letter() -> None:
    """Finding 1: a 300 KB non-UTF-8 click became a 1.8 MB dead letter the broker refused."""
    poison = RawMessage("clicks", 2, 41, b"\xff" * 5000, bytes(range(128, 256)) * 2400)
    key, value = dead_letter(poison, "not JSON: " + "x" * 10_000, excerpt_bytes=1024)
    letter = DeadLetter.parse(value)
    assert len(value) < 8 * 1024 and key is not None and len(key) <= 256
    assert (letter.size, letter.truncated, letter.offset) == (307_200, True, 41)
    assert letter.excerpt.startswith("\\x80\\x81") and len(letter.reason) < 600


def faust_consumer(committed: dict[TP, int], acked: dict[TP, list[int]],
                   **attrs: object) -> SimpleNamespace:
    """The ack and commit bookkeeping of a Faust consumer that forget_commits edits."""
    return SimpleNamespace(
        _committed_offset=defaultdict(lambda: None, committed),
        _acked=defaultdict(list, acked),
        _acked_index=defaultdict(set, {tp: set(offsets) for tp, offsets in acked.items()}),
        _gap=defaultdict(dict, {tp: {} for tp in committed}), **attrs)


def test_forget_commits_drops_only_the_reset_topics_offsets() -> None:
    """Finding 7: after a broker reset Faust ignored acks below the old log's committed offset."""
    clicks, items = TP("clicks", 0), TP("items", 0)
    consumer = faust_consumer({clicks: 2476, items: 9}, {clicks: [2477], items: [10]})
    forget_commits(consumer, "clicks")
    assert consumer._committed_offset[clicks] is None and consumer._committed_offset[items] == 9
    assert clicks not in consumer._acked and consumer._acked[items] == [10]
    assert clicks not in consumer._acked_index and clicks not in consumer._gap


def test_guarded_commits_run_only_when_the_guard_allows() -> None:
    verdicts: list[set[int] | None] = [set(), None, {0}]
    committed: list[int] = []

    async def commit() -> bool:
        committed.append(len(committed))
        return True

    clicks = TP("clicks", 0)
    consumer = faust_consumer({clicks: 40}, {clicks: [41]}, commit=commit)
    guard = SimpleNamespace(topic="clicks", stale=lambda: verdicts.pop(0))
    guard_commits(consumer, guard)  # type: ignore[arg-type]

    async def three() -> list[bool]:
        return [await consumer.commit() for _ in range(3)]

    assert asyncio.run(three()) == [True, False, True]
    assert committed == [0, 1]  # not while the broker cannot tell; after dropping stale acks
    assert consumer._acked[clicks] == [] and consumer._committed_offset[clicks] is None


def _events(n: int) -> list[SimpleNamespace]:
    """Fake Faust events around real Messages."""
    out = []
    for offset in range(n):
        message = Message("clicks", 0, offset, 0.0, 0, None, b"k", b"v", None)
        message.incref()  # the stream's own reference, as Faust's conductor takes it
        out.append(SimpleNamespace(message=message,
                                   ack=lambda m=message: m.ack(None)))  # type: ignore[misc]
    return out


@pytest.mark.parametrize("take_events_acks_first", [True, False])
def test_held_events_are_final_only_once_published(take_events_acks_first: bool) -> None:
    """Whichever comes last, take_events' ack or `release`, is the final ack; never earlier."""
    events = _events(3)
    hold(events)  # type: ignore[arg-type]
    if take_events_acks_first:  # publishing overlapped with the next batch's step
        for e in events:
            e.ack()
        assert not any(e.message.acked for e in events)
        release(events)  # type: ignore[arg-type]
    else:
        release(events)  # type: ignore[arg-type]
        assert not any(e.message.acked for e in events)
        for e in events:
            e.ack()
    assert all(e.message.acked for e in events)


def test_a_cancelled_batch_is_never_final() -> None:
    events = _events(2)
    hold(events)  # type: ignore[arg-type]
    for e in events:  # take_events acks the batch when its agent is cancelled
        e.ack()
    assert not any(e.message.acked for e in events)
