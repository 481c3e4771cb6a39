"""The online evaluation's replay order: a closed loop per user, open loop across users."""

from __future__ import annotations

from harness.online_data import Click
from harness.online_stack import UserLoops

CLICKS = [Click(1, 10, 1.0), Click(1, 11, 2.0), Click(2, 20, 3.0), Click(1, 12, 4.0),
          Click(3, 30, 5.0)]


def test_a_users_next_click_waits_for_the_answer_to_the_previous_one() -> None:
    done: set[tuple[int, int, float]] = set()
    loops = UserLoops(CLICKS, answered=lambda key: key in done)
    assert list(loops.due()) == [0, 2, 4]  # users 2 and 3 go on while user 1 waits
    assert list(loops.due()) == []
    done.add((1, 10, 1.0))
    assert list(loops.due()) == [1]
    done.add((1, 11, 2.0))
    assert list(loops.due()) == [3] and not loops


def test_the_window_bounds_how_far_ahead_other_users_go() -> None:
    loops = UserLoops(CLICKS, answered=lambda key: False, window=2)
    assert list(loops.due()) == [0]  # click 2 is beyond the window while 1 waits
    assert loops.pending[0] == 1


def test_an_unanswered_click_is_given_up_on_after_give_up_s() -> None:
    now = [0.0]
    loops = UserLoops(CLICKS[:2], answered=lambda key: False, give_up_s=5.0,
                      clock=lambda: now[0])
    assert list(loops.due()) == [0]
    now[0] = 4.9
    assert list(loops.due()) == []
    now[0] = 5.0
    assert list(loops.due()) == [1]


def test_open_loop_keeps_the_data_order() -> None:
    loops = UserLoops(CLICKS, answered=None)
    assert list(loops.due()) == [0, 1, 2, 3, 4] and not loops
