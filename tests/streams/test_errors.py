"""`classify`: the one decision of what is retried (outages only) and what kind a failure is."""

from __future__ import annotations

import pytest
import redis
from aiokafka import errors as kafka_errors

from streams.errors import (
    RECORD_FAULTS,
    BadEvent,
    BadRequest,
    InvalidRequest,
    Kind,
    ModelError,
    RecallError,
    ServiceUnavailable,
    classify,
)


@pytest.mark.parametrize(("exc", "kind"), [
    # servers away or slow: retried
    (ServiceUnavailable("redis down"), Kind.OUTAGE),
    (redis.ConnectionError("x"), Kind.OUTAGE),
    (redis.TimeoutError("x"), Kind.OUTAGE),
    (ConnectionRefusedError(), Kind.OUTAGE),
    (TimeoutError(), Kind.OUTAGE),
    (kafka_errors.KafkaConnectionError(), Kind.OUTAGE),
    (kafka_errors.KafkaTimeoutError(), Kind.OUTAGE),
    # what a restarting broker answers for a while (seen with tansu)
    (kafka_errors.UnknownError(), Kind.OUTAGE),
    (kafka_errors.UnknownTopicOrPartitionError(), Kind.OUTAGE),
    (kafka_errors.NotLeaderForPartitionError(), Kind.OUTAGE),
    # the data's fault: isolated and reported, never retried
    (BadEvent("x"), Kind.BAD_RECORD),
    (BadRequest("x"), Kind.BAD_RECORD),
    (InvalidRequest("milvus refused search"), Kind.BAD_RECORD),
    (kafka_errors.MessageSizeTooLargeError(), Kind.BAD_RECORD),
    (kafka_errors.TopicAuthorizationFailedError(), Kind.BAD_RECORD),
    # the code's or the settings' fault
    (ValueError("x"), Kind.BUG),
    (redis.AuthenticationError("wrong password"), Kind.BUG),  # a redis.ConnectionError
    (ModelError("x"), Kind.BUG),
    (RecallError("x"), Kind.BUG),
    # the producer is closed: the worker stops
    (kafka_errors.ProducerClosed(), Kind.SHUTDOWN),
])
def test_classify(exc: BaseException, kind: Kind) -> None:
    assert classify(exc) is kind
    assert classify(exc).retriable == (kind is Kind.OUTAGE)


def test_every_record_fault_is_a_bad_record() -> None:
    assert all(classify(fault()) is Kind.BAD_RECORD for fault in RECORD_FAULTS)


def test_an_errors_retriable_flag_is_its_kinds() -> None:
    """streams.api reads `exc.retriable` of RecallErrors: it must agree with `classify`."""
    for cls in (RecallError, BadEvent, BadRequest, ServiceUnavailable, InvalidRequest,
                ModelError):
        exc = cls("x")
        assert exc.retriable == classify(exc).retriable
    assert ServiceUnavailable("x").retriable and not InvalidRequest("x").retriable
