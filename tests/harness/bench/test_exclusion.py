"""harness.bench.exclusion's batches: distinct users, each with its last 10 clicks and its
last seen_max distinct items at its last click in the batch."""

from __future__ import annotations

from pathlib import Path

from harness.bench.exclusion import batches


def test_batches_hold_distinct_users_with_their_state_at_their_last_click(tmp_path: Path) -> None:
    rows = ["user_id,item_id,timestamp"]
    rows += [f"1,{i},{t}" for t, i in enumerate([1, 2, 3, 1, 4, 5, 6, 7, 8, 9, 10, 11])]
    rows += [f"{u},{100 + u},{20 + u}" for u in range(2, 12)]  # the future: users 2..11 once
    rows += ["1,12,40", "2,13,41", "1,3,42"]
    path = tmp_path / "clicks.csv"
    path.write_text("\n".join(rows) + "\n")
    got, timeline = batches(str(path), count=5, users=4, seen_max=5)
    assert len(timeline.past) == 12  # the first half of 25 clicks
    histories, seen = got[0]
    assert len(histories) == 4 and all(len(h) == 1 for h in histories)  # users 2..5, one click
    assert [len(b[0]) for b in got] == [4, 4, 4, 1]  # users 6..9; 10, 11, 1, 2; then 1 again
    third_histories, third_seen = got[2]  # rows in user order: 1, 2, 10, 11
    assert third_histories[0] == [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert third_seen[0] == [8, 9, 10, 11, 12]  # its 5 newest distinct items
    assert third_histories[1] == [102, 13] and third_seen[1] == [102, 13]
    [last_history], [last_seen] = got[3]
    assert last_history == [4, 5, 6, 7, 8, 9, 10, 11, 12, 3]
    assert last_seen == [9, 10, 11, 12, 3]  # item 3 again: the newest
