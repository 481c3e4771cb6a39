"""A small exception hierarchy; `retriable` tells a caller whether trying again can help.

Only outages are retriable (a server down, a connection lost, a timeout). A request a server
refuses as invalid is a fault of the data (the batch runner isolates and dead-letters the
message) or of the code, and is never retried.
"""

from __future__ import annotations


class RecallError(Exception):
    """Base of every error this project raises on purpose."""

    retriable: bool = False


class BadEvent(RecallError):
    """An input record that can never be processed: it goes to the dead-letter topic."""

    retriable = False


class BadRequest(RecallError):
    """An API or CLI request that is malformed or out of bounds."""

    retriable = False


class ServiceUnavailable(RecallError):
    """A server (Kafka, Redis, Milvus) did not answer; trying again may work."""

    retriable = True


class InvalidRequest(RecallError):
    """A server answered that a request is invalid: trying again cannot help."""

    retriable = False


class ModelError(RecallError):
    """The exported model is missing or does not match the settings."""

    retriable = False
