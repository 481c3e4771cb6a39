"""harness.online.watermark: W, the smallest data time among the future clicks not yet scored,
and its throttled writes."""

from __future__ import annotations

import math
import random

from harness.online.data import LoggedClick
from harness.online.watermark import Ahead, Watermark, WatermarkWriter

# user 1 clicked before the cut; user 2 did not
FUTURE = [LoggedClick(1, 10, 1.0),  # 0: previous click in the past: scored from the start
          LoggedClick(2, 20, 2.0),  # 1: user 2's first click: never scored, never holds W
          LoggedClick(1, 11, 3.0),  # 2: scored once 0 is answered
          LoggedClick(2, 21, 4.0),  # 3: scored once 1 is answered
          LoggedClick(1, 12, 5.0)]  # 4: scored once 2 is answered


def test_w_is_the_smallest_time_of_the_clicks_not_yet_scored() -> None:
    mark = Watermark(FUTURE)
    assert mark.scored.tolist() == [True, True, False, False, False]
    assert mark.value() == 3.0  # clicks 0 and 1 may be learned, click 2 may not yet
    mark.answered(0)
    assert mark.value() == 4.0
    mark.answered(2)
    assert mark.value() == 4.0  # click 3 still waits for user 2's first answer
    mark.answered(1)
    assert mark.value() == math.inf and mark.unscored() == 0
    mark.answered(4)  # the last click of a user fixes nothing
    assert mark.value() == math.inf


def test_a_click_sent_before_it_is_scored_keeps_w_strictly_below_it() -> None:
    mark = Watermark(FUTURE)
    mark.answered(0)  # W = 4.0: click 3 (ts 4) is the first unscored
    mark.sent(3)  # sent anyway (open loop, or its user's loop gave up waiting)
    assert mark.value() == math.nextafter(4.0, -math.inf)  # never learned before it is scored
    mark.answered(1)
    assert mark.value() == 5.0


def test_ties_hold_w_at_their_time() -> None:
    mark = Watermark([LoggedClick(1, 10, 7.0), LoggedClick(1, 11, 7.0), LoggedClick(2, 20, 7.0),
                      LoggedClick(2, 21, 8.0)])
    assert mark.value() == 7.0  # click 1 unscored at 7: the others of second 7 may be learned
    mark.answered(0)
    assert mark.value() == 8.0


def test_w_never_lets_a_served_list_hold_a_later_click() -> None:
    """A random closed-loop replay: a click is sent once its user's previous click was
    answered; a record is made with the counts W allows at that moment. Every scored click's
    list (its user's previous record) holds only clicks no later than itself, W never goes
    back, and every click is learned in the end."""
    rng = random.Random(3)
    for trial in range(30):
        n = rng.randint(5, 60)
        times = sorted(rng.choice(range(n // 2 + 1)) * 1.0 for _ in range(n))  # many ties
        future = [LoggedClick(rng.randint(1, 6), i, t) for i, t in enumerate(times)]
        past_users = {1, 2}
        mark = Watermark(future)
        last_w = -math.inf
        prev: dict[int, int] = {}
        waits: dict[int, int] = {}  # click -> the user's previous future click
        for i, c in enumerate(future):
            if c.user in prev:
                waits[i] = prev[c.user]
            prev[c.user] = i
        answered: set[int] = set()
        sent: list[int] = []
        made_with: dict[int, float] = {}  # record of click i -> W when it was made
        pending = list(range(n))
        while pending or len(answered) < len(sent):
            ready = [i for i in pending if waits.get(i) is None or waits[i] in answered]
            unanswered = [i for i in sent if i not in answered]
            if ready and (not unanswered or rng.random() < 0.5):
                i = ready[0] if rng.random() < 0.7 else rng.choice(ready)
                pending.remove(i)
                mark.sent(i)
                sent.append(i)
            else:
                i = rng.choice(unanswered)
                w = mark.value()
                learned = [j for j in sent if future[j].ts <= w]
                made_with[i] = max((future[j].ts for j in learned), default=-math.inf)
                mark.answered(i)
                answered.add(i)
            w = mark.value()
            assert w >= last_w, trial
            last_w = w
        for i, j in waits.items():  # click i is scored on the record of click j
            assert made_with[j] <= future[i].ts, (trial, i, j)
        assert mark.value() == math.inf
        assert all(future[i].user in past_users or i in waits or mark.scored[i]
                   for i in range(n))


def test_writer_writes_when_w_moved_at_most_every_every_s() -> None:
    mark = Watermark(FUTURE)
    puts: list[str] = []
    now = [0.0]
    writer = WatermarkWriter(mark, puts.append, every_s=0.02, clock=lambda: now[0])
    assert writer.update() == 3.0 and puts == ["3.0"]
    assert writer.update() == 3.0 and puts == ["3.0"]  # unchanged: no write
    mark.answered(0)
    now[0] = 0.01
    assert writer.update() == 4.0 and puts == ["3.0"]  # too soon
    now[0] = 0.03
    writer.update()
    assert puts == ["3.0", "4.0"]
    mark.answered(1)
    writer.update(force=True)
    writer.finish()
    assert puts == ["3.0", "4.0", "5.0", "inf"] and float(puts[-1]) == math.inf
    assert writer.writes == 4


def test_writer_without_a_key_writes_nothing() -> None:
    writer = WatermarkWriter(Watermark(FUTURE), None)
    assert writer.update(force=True) == 3.0
    writer.finish()
    assert writer.writes == 0


def test_ahead_widens_while_too_slow_for_the_budget_and_narrows_back_to_the_floor() -> None:
    now = [0.0]
    ahead = Ahead(total=100, floor_s=3600.0, budget_s=100.0, cap_s=20_000.0, span_s=2.0,
                  clock=lambda: now[0])
    assert ahead.update(sent=0) == 3600.0  # not a second yet
    now[0] = 1.0
    assert ahead.update(sent=0) == 7200.0  # needs 100 clicks in 99 s, sent none
    now[0] = 1.5
    assert ahead.update(sent=0) == 7200.0  # at most one change a second
    now[0] = 2.0
    assert ahead.update(sent=1) == 14400.0  # 0.5 clicks/s over the last 2 s: too slow
    now[0] = 3.0
    assert ahead.update(sent=2) == math.inf  # past the cap: no bound
    now[0] = 4.0
    assert ahead.update(sent=50) == 10000.0  # 24 clicks/s: fast enough, back from the cap
    now[0] = 5.0
    assert ahead.update(sent=60) == 5000.0
    now[0] = 6.0
    assert ahead.update(sent=70) == 3600.0
    assert ahead.summary() == {"floor": 3600.0, "median": 8600.0, "widest": None,
                               "budget_s": 100.0}


def test_ahead_without_a_budget_keeps_its_floor() -> None:
    now = [0.0]
    ahead = Ahead(total=100, floor_s=math.inf, budget_s=None, clock=lambda: now[0])
    now[0] = 50.0
    assert ahead.update(sent=0) == math.inf
    assert ahead.summary()["widest"] is None
