"""The online evaluation's replay order (a closed loop per user, open loop across users) and
its ledger of where each click landed and whether it was answered."""

from __future__ import annotations

from harness.online.data import LoggedClick
from harness.online.replay import Ledger, UserLoops

CLICKS = [LoggedClick(1, 10, 1.0), LoggedClick(1, 11, 2.0), LoggedClick(2, 20, 3.0),
          LoggedClick(1, 12, 4.0), LoggedClick(3, 30, 5.0)]


def test_a_users_next_click_waits_for_the_answer_to_the_previous_one() -> None:
    done: set[int] = set()
    loops = UserLoops(CLICKS, answered=done.__contains__)
    assert list(loops.due()) == [0, 2, 4]  # users 2 and 3 go on while user 1 waits
    assert list(loops.due()) == []
    done.add(0)
    assert list(loops.due()) == [1]
    done.add(1)
    assert list(loops.due()) == [3] and not loops
    assert loops.given_up == []


def test_the_window_bounds_how_far_ahead_other_users_go() -> None:
    loops = UserLoops(CLICKS, answered=lambda index: False, window=2)
    assert list(loops.due()) == [0]  # click 2 is beyond the window while 1 waits
    assert loops.pending[0] == 1


def test_an_unanswered_click_is_given_up_on_after_give_up_s() -> None:
    now = [0.0]
    loops = UserLoops(CLICKS[:2], answered=lambda index: False, give_up_s=5.0,
                      clock=lambda: now[0])
    assert list(loops.due()) == [0]
    now[0] = 4.9
    assert list(loops.due()) == []
    now[0] = 5.0
    assert list(loops.due()) == [1]
    assert loops.given_up == [0]


def test_open_loop_keeps_the_data_order() -> None:
    loops = UserLoops(CLICKS, answered=None)
    assert list(loops.due()) == [0, 1, 2, 3, 4] and not loops


def test_ledger_matches_records_by_partition_and_offset_even_for_duplicate_clicks() -> None:
    ledger = Ledger(3)  # clicks 1 and 2 are the same (user, item, second) in the data
    ledger.landed(0, 0, 5)
    ledger.landed(1, 1, 7)
    ledger.sent_at[:] = [0.0, 1.0, 2.0]
    arrived = [((1, 7), 1.5), ((3, 9), 2.5)]  # (3, 9): its ack is not in yet
    assert ledger.sync(arrived) == [1]
    ledger.landed(2, 3, 9)
    arrived += [((1, 7), 3.0)]  # a second copy of a record is not a second answer
    assert ledger.sync(arrived) == [2]
    assert ledger.answered.tolist() == [False, True, True] and ledger.unmatched == []
    assert ledger.answered_at[1:].tolist() == [1.5, 2.5]
    assert ledger.round_trips() == {"p50": 0.5, "p90": 0.5, "p99": 0.5}
    recs = {(1, 7): "b", (3, 9): "c"}
    assert ledger.records(recs) == {1: "b", 2: "c"}  # type: ignore[arg-type]


def test_due_stops_at_the_first_click_after_until_ts() -> None:
    loops = UserLoops(CLICKS, answered=None)
    assert list(loops.due(until_ts=3.5)) == [0, 1, 2]
    assert list(loops.due(until_ts=3.5)) == []
    assert list(loops.due()) == [3, 4] and not loops
