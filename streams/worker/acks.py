"""A batch's Faust events: what its step sees of them, and when their offsets may be committed.

An agent holds its events' acks (`hold`) until the batch is published (`release`): Faust then
commits their offsets. After a broker reset, the acks of partitions read on the replaced log
are made and forgotten at once (`release_or_drop`), so nothing waits for them and nothing
commits them to the new log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from streams.worker.epochs import LogEpochs
from streams.worker.faust_compat import forget_commits
from streams.worker.pipeline import RawMessage


def raw_messages(events: Sequence[faust.EventT]) -> list[RawMessage]:
    """Strip Faust events down to what the batch steps need."""
    return [
        RawMessage(e.message.topic, e.message.partition, e.message.offset, e.key, e.value)
        for e in events
    ]


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
