"""A batch's events stay uncommitted until published; acks of a replaced log are dropped.

Real Faust events, messages and consumer (never started): the final ack is the one that
lands in the consumer's bookkeeping, from which Faust commits.
"""

from __future__ import annotations

import faust
import pytest
from faust.types import TP

from streams.worker.acks import hold, raw_messages, read_at, release, release_or_drop
from streams.worker.epochs import LogEpochs
from streams.worker.pipeline import RawMessage
from tests.streams.worker.conftest import consumer, event

CLICKS = TP("clicks", 0)


def acked(app: faust.App, tp: TP = CLICKS) -> list[int]:
    """The offsets of `tp` the consumer will commit (what Faust's final acks recorded)."""
    return sorted(consumer(app)._acked.get(tp, []))


@pytest.mark.parametrize("take_events_acks_first", [True, False])
def test_held_events_are_final_only_once_published(faust_app: faust.App,
                                                   take_events_acks_first: bool) -> None:
    """Whichever comes last, take_events' ack or `release`, is the final ack; never earlier."""
    events = [event(faust_app, "clicks", 0, offset) for offset in range(3)]
    hold(events)
    if take_events_acks_first:  # publishing overlapped with the next batch's step
        for e in events:
            e.ack()
        assert acked(faust_app) == [] and not any(e.message.acked for e in events)
        release(events)
    else:
        release(events)
        assert acked(faust_app) == [] and not any(e.message.acked for e in events)
        for e in events:
            e.ack()
    assert acked(faust_app) == [0, 1, 2]


def test_a_cancelled_batch_is_never_final(faust_app: faust.App) -> None:
    events = [event(faust_app, "clicks", 0, offset) for offset in range(2)]
    hold(events)
    for e in events:  # take_events acks the batch when its agent is cancelled
        e.ack()
    assert acked(faust_app) == [] and not any(e.message.acked for e in events)


def test_stale_partitions_are_acked_and_forgotten(faust_app: faust.App) -> None:
    """After a broker reset, a batch read on the old log commits nothing on the new one."""
    old, other = TP("clicks", 1), TP("items", 0)
    real = consumer(faust_app)
    real._committed_offset.update({old: 2476, other: 9})  # as after commits on the old log
    events = [event(faust_app, "clicks", 1, offset) for offset in (10, 11)]
    for e in events:
        real.track_message(e.message)  # pending: a stop waits for its ack
    hold(events)
    for e in events:
        e.ack()  # take_events' ack
    release_or_drop(events, real, "clicks", {1})
    assert not real._unacked_messages  # acks below 2476 count: nothing waits for them
    assert acked(faust_app, old) == [] and real._committed_offset[old] is None
    assert real._committed_offset[other] == 9


def test_what_a_step_sees_of_events_and_epochs(faust_app: faust.App) -> None:
    events = [event(faust_app, "clicks", p, 7) for p in (0, 2)]
    messages = raw_messages(events)
    assert messages == [RawMessage("clicks", p, 7, b"k", b"v") for p in (0, 2)]
    epochs = LogEpochs(lambda topic: "id-1")
    epochs.epochs("clicks", [(0, 7)])
    assert read_at(epochs, messages) == {0: "id-1", 2: None}
    assert read_at(None, messages) == {}
