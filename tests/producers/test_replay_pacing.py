"""Rate and speed pacing with a fake clock, and `replay` sending through a fake producer."""

from __future__ import annotations

import json

import pytest

from producers.kafka import Sender
from producers.replay import Pacer, parse_args, replay, source_from_args
from producers.sources import SourceClick
from streams.errors import BadRequest
from streams.records import Click
from streams.settings import Settings


class FakeClock:
    """A clock that only moves when the code under test sleeps (or a test advances it)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_pacer_spaces_clicks_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, clock=clock, sleep=clock.sleep)
    for i in range(5):
        pacer.wait(i)
    assert clock.sleeps == pytest.approx([0.1] * 4)
    assert clock.now == pytest.approx(1000.4)


def test_rate_pacer_catches_up_when_behind() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, clock=clock, sleep=clock.sleep)
    pacer.wait(0)
    clock.now += 1.0  # a slow send: clicks 1..10 are already due
    assert [pacer.delay(i) for i in range(1, 11)] == [0.0] * 10
    assert pacer.delay(12) == pytest.approx(0.2)


def test_speed_pacer_follows_recorded_gaps() -> None:
    clock = FakeClock()
    pacer = Pacer(speed=2.0, clock=clock, sleep=clock.sleep)
    for i, ts in enumerate([50.0, 52.0, 52.0, 60.0]):
        pacer.wait(i, ts)
    assert clock.sleeps == pytest.approx([1.0, 4.0])


def test_unpaced_never_sleeps_and_speed_needs_timestamps() -> None:
    assert Pacer().delay(10**6) == 0.0
    with pytest.raises(BadRequest):
        Pacer(speed=1.0).delay(0, None)
    with pytest.raises(BadRequest):
        Pacer(rate=-1)


def test_replay_sends_keyed_clicks_stamped_with_send_time(sender: Sender, fake_producer) -> None:
    clock = FakeClock()
    clicks: list[SourceClick | tuple[int, int]] = [
        SourceClick(1, 10), (2, 20), SourceClick(0, 30), SourceClick(3, 40)]
    stats = replay(clicks, sender, rate=100, clock=clock,
                   pacer=Pacer(rate=100, clock=clock, sleep=clock.sleep))
    assert (stats.sent, stats.failed, stats.invalid) == (3, 0, 1)  # user 0 is not a valid id
    keys = [key for _, key, _ in fake_producer.sent]
    assert keys == [b"1", b"2", b"3"]
    records = [Click.parse(value) for _, _, value in fake_producer.sent]
    assert [r.item_id for r in records] == [10, 20, 40]
    assert [r.ts for r in records] == pytest.approx([1000.0, 1000.01, 1000.03])
    assert fake_producer.flushed >= 1


def test_replay_limit_and_delivery_failures(sender: Sender, fake_producer) -> None:
    fake_producer.fail_values = {Click(user_id=2, item_id=2, ts=5.0).to_bytes()}
    clicks = ((u, u) for u in range(1, 100))
    stats = replay(clicks, sender, limit=4, clock=lambda: 5.0)
    assert (stats.sent, stats.failed) == (3, 1)
    assert stats.errors and "boom" in stats.errors[0]
    assert json.loads(fake_producer.sent[-1][2])["user_id"] == 4


def test_cli_synthetic_source_uses_num_items() -> None:
    settings = Settings()
    args = parse_args(["--synthetic", "--num-items", "30", "--users", "4", "--limit", "50"],
                      settings)
    clicks = list(source_from_args(args, settings))
    assert len(clicks) == 50
    assert all(1 <= c.item_id <= 30 and 1 <= c.user_id <= 4 for c in clicks)
