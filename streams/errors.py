"""A small exception hierarchy, and `classify`: the one place that decides what is retriable.

Only outages are retriable (a server down, a connection lost, a timeout). A record or request
a server refuses as invalid is a fault of the data (the batch runner isolates and dead-letters
the message; the publisher reports the record) and is never retried, nor is a fault of the
code or the settings (a wrong password included).
"""

from __future__ import annotations

import enum

import redis
from aiokafka import errors as kafka_errors


class Kind(enum.Enum):
    """What a failure is, which says what to do about it."""

    OUTAGE = "outage"  # a server is away or slow: retry, it may answer later
    BAD_RECORD = "bad record"  # the data's fault (a record, a request): isolate and report it
    BUG = "bug"  # the code's or the settings' fault: retrying cannot help
    SHUTDOWN = "shutdown"  # the worker is stopping (its producer closed): give up the batch

    @property
    def retriable(self) -> bool:
        return self is Kind.OUTAGE


class RecallError(Exception):
    """Base of every error this project raises on purpose; `kind` is what `classify` says."""

    kind: Kind = Kind.BUG

    @property
    def retriable(self) -> bool:
        return self.kind.retriable


class BadEvent(RecallError):
    """An input record that can never be processed: it goes to the dead-letter topic."""

    kind = Kind.BAD_RECORD


class BadRequest(RecallError):
    """An API or CLI request that is malformed or out of bounds."""

    kind = Kind.BAD_RECORD


class ServiceUnavailable(RecallError):
    """A server (Kafka, Redis, Milvus) did not answer; trying again may work."""

    kind = Kind.OUTAGE


class InvalidRequest(RecallError):
    """A server answered that a request is invalid: trying again cannot help."""

    kind = Kind.BAD_RECORD


class ModelError(RecallError):
    """The exported model is missing or does not match the settings."""

    kind = Kind.BUG


#: Errors of servers that are away or slow (redis.AuthenticationError, a ConnectionError, is not).
OUTAGES: tuple[type[Exception], ...] = (
    ConnectionError, TimeoutError, redis.ConnectionError, redis.TimeoutError)

#: Kafka send errors that are the record's own fault (or a setting's): retrying cannot help.
RECORD_FAULTS: tuple[type[Exception], ...] = (
    kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError, kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError, kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.UnsupportedCodecError, kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,
)


def classify(exc: BaseException) -> Kind:
    """What `exc` is: only `Kind.OUTAGE` (`classify(exc).retriable`) is worth another try.

    Every Kafka (aiokafka) error but the record faults counts as an outage: a restarting
    broker answers with UnknownError or unknown-topic errors for a while, and a record must
    not be given up for that.
    """
    if isinstance(exc, RecallError):
        return exc.kind
    if isinstance(exc, kafka_errors.ProducerClosed):
        return Kind.SHUTDOWN
    if isinstance(exc, RECORD_FAULTS):
        return Kind.BAD_RECORD
    if isinstance(exc, kafka_errors.KafkaError):
        return Kind.OUTAGE
    if isinstance(exc, OUTAGES) and not isinstance(exc, redis.AuthenticationError):
        return Kind.OUTAGE
    return Kind.BUG

