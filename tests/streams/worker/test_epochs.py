"""Unit tests of LogEpochs: a broker reset (new topic id) is noticed, a rebalance is not one."""

from __future__ import annotations

import pytest

from streams.errors import ServiceUnavailable
from streams.worker.epochs import CommitGuard, LogEpochs


class Broker:
    """Answers topic ids like the admin API would, and counts the look-ups."""

    def __init__(self) -> None:
        self.topic_id = "id-1"
        self.lookups = 0

    def __call__(self, topic: str) -> str:
        self.lookups += 1
        return self.topic_id


def test_offsets_going_back_on_the_same_log_are_a_redelivery() -> None:
    broker, now = Broker(), [0.0]
    epochs = LogEpochs(broker, refresh_s=60.0, clock=lambda: now[0])
    assert epochs.epochs("clicks", [(0, 10), (0, 11), (1, 3)]) == ["id-1"] * 3
    assert epochs.epochs("clicks", [(0, 12)]) == ["id-1"] and broker.lookups == 1  # cached
    assert epochs.epochs("clicks", [(0, 11)]) == ["id-1"] and broker.lookups == 2  # went back
    assert epochs.resets == 0 and epochs.epoch("clicks", 0) == "id-1"
    assert epochs.epoch("clicks", 7) is None


def test_a_new_topic_id_is_a_reset_each_partition_takes_it_where_its_log_restarts(
        caplog: pytest.LogCaptureFixture) -> None:
    """Finding 7: a broker reset; clicks read before it but processed after keep the old epoch."""
    broker, now = Broker(), [0.0]
    epochs = LogEpochs(broker, refresh_s=5.0, clock=lambda: now[0])
    epochs.epochs("clicks", [(0, 500), (1, 300)])
    broker.topic_id = "id-2"
    # partition 1 held a click of the old log (301, forward); partition 0 starts again at 0
    assert epochs.epochs("clicks", [(1, 301), (0, 0), (0, 1)]) == ["id-1", "id-2", "id-2"]
    assert epochs.resets == 1 and "BROKER RESET" in caplog.text
    assert epochs.stale("clicks", "id-2") == {1}
    assert epochs.epochs("clicks", [(1, 302), (1, 0)]) == ["id-1", "id-2"]  # old tail, new log
    assert epochs.stale("clicks", "id-2") == set()
    broker.topic_id = "id-3"
    now[0] = 6.0  # the periodic look-up notices the next reset too
    assert epochs.epochs("clicks", [(0, 0)]) == ["id-3"] and epochs.resets == 2


def test_commit_guard_names_partitions_still_read_on_a_replaced_log() -> None:
    """Finding 7: offsets acked on the old log were committed to the new one after a restart."""
    ids = {"clicks": "id-1"}

    def lookup(topic: str) -> str:
        if ids[topic] == "down":
            raise ServiceUnavailable("broker away")
        return ids[topic]

    epochs = LogEpochs(lookup)
    guard = CommitGuard(lookup, epochs, "clicks")
    assert guard.stale() == set()  # nothing consumed yet
    epochs.epochs("clicks", [(0, 5), (1, 9)])
    assert guard.stale() == set()
    ids["clicks"] = "down"
    assert guard.stale() is None
    ids["clicks"] = "id-2"
    assert guard.stale() == {0, 1}
    epochs.epochs("clicks", [(0, 0)])  # partition 0's new log: it may commit again
    assert guard.stale() == {1}
