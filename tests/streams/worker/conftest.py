"""A real, never started faust.App (and so a real Faust consumer) for the worker's unit tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import faust
import pytest
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer
from faust.types.tuples import ConsumerMessage

ACKED_TOPICS = ("clicks", "items")


@pytest.fixture
def faust_app(tmp_path: Path) -> faust.App:
    """An app whose consumer records acks of ACKED_TOPICS, as once its agents subscribed."""
    app = faust.App("worker-unit-test", broker="kafka://127.0.0.1:1", autodiscover=False,
                    datadir=str(tmp_path / "faust"))
    for name in ACKED_TOPICS:
        app.topics.add(app.topic(name))
    # What subscribing does: acks enabled for the topics (else the consumer ignores them).
    asyncio.run(cast(Conductor, app.topics)._update_indices())
    return app


def event(app: faust.App, topic: str, partition: int, offset: int) -> faust.EventT:
    """A real Faust event around a real consumer message, as a stream hands it to an agent."""
    message = ConsumerMessage(topic, partition, offset, 0.0, 0, None, b"k", b"v", None)
    message.incref()  # the stream's own reference, as Faust's conductor takes it
    return faust.Event(app, b"k", b"v", None, message)


def consumer(app: faust.App) -> Consumer:
    """The app's real Faust consumer, typed as the class whose bookkeeping the tests read."""
    return cast(Consumer, app.consumer)
