"""Publishing a batch: outages retried, records the broker refuses become small dead letters."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    ProducerClosed,
    UnknownError,
    UnknownTopicOrPartitionError,
)

from streams.records import DeadLetter
from streams.worker.delivery import publish, unsendable
from streams.worker.pipeline import RawMessage, dead_letter


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
