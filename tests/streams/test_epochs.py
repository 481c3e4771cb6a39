"""Unit tests of LogEpochs: a broker reset (new topic id) is noticed, a rebalance is not one."""

from __future__ import annotations

import pytest

from streams.epochs import LogEpochs


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
    assert epochs.epoch("clicks", [(0, 10), (0, 11), (1, 3)]) == "id-1"
    assert epochs.epoch("clicks", [(0, 12)]) == "id-1" and broker.lookups == 1  # cached
    assert epochs.epoch("clicks", [(0, 11)]) == "id-1" and broker.lookups == 2  # went back
    assert epochs.resets == 0


def test_a_new_topic_id_is_a_reset_and_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    broker, now = Broker(), [0.0]
    epochs = LogEpochs(broker, refresh_s=5.0, clock=lambda: now[0])
    epochs.epoch("clicks", [(0, 500)])
    broker.topic_id = "id-2"
    assert epochs.epoch("clicks", [(0, 0)]) == "id-2"
    assert epochs.resets == 1 and "BROKER RESET" in caplog.text
    broker.topic_id = "id-3"
    now[0] = 6.0  # offsets grew past the old ones: the periodic look-up still notices
    assert epochs.epoch("clicks", [(0, 900)]) == "id-3" and epochs.resets == 2
