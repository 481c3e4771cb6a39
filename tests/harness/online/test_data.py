"""harness.online.data: reading and sorting clicks, the time cut, the past users' split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.online.data import LoggedClick, Timeline, cut, read_clicks, user_sequences
from model.online.pretrain import past_split


def test_read_clicks_skips_the_header_and_sorts_by_time_keeping_file_order_on_ties(
        tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("user_id,item_id,timestamp\n1,10,30\n2,20,10\n1,11,10\n3,30,20\n")
    assert read_clicks(path) == [LoggedClick(2, 20, 10.0), LoggedClick(1, 11, 10.0),
                                 LoggedClick(3, 30, 20.0), LoggedClick(1, 10, 30.0)]
    assert read_clicks(path, limit=2) == [LoggedClick(2, 20, 10.0), LoggedClick(1, 11, 10.0)]


def test_read_clicks_without_header(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("5,50,2\n4,40,1\n")
    assert read_clicks(path) == [LoggedClick(4, 40, 1.0), LoggedClick(5, 50, 2.0)]


CLICKS = [LoggedClick(1, 10, 1), LoggedClick(2, 20, 2), LoggedClick(1, 11, 3),
          LoggedClick(3, 30, 4), LoggedClick(1, 12, 5)]


def test_cut_puts_the_first_fraction_in_the_past() -> None:
    timeline = cut(CLICKS, 0.5)
    assert timeline.past == CLICKS[:2]
    assert timeline.future == CLICKS[2:]
    assert timeline.cut_ts == 3.0
    assert timeline.known == frozenset({10, 20})
    assert cut(CLICKS, 0.8).past == CLICKS[:4]


def test_cut_keeps_one_click_on_each_side() -> None:
    assert len(cut(CLICKS, 0.01).past) == 1
    assert len(cut(CLICKS, 0.99).future) == 1
    with pytest.raises(ValueError):
        cut(CLICKS, 1.0)
    with pytest.raises(ValueError):
        cut(CLICKS[:1], 0.5)


def test_past_split_validates_on_a_share_of_users_with_a_target_and_trains_the_rest() -> None:
    seqs = {u: [u, u + 1] for u in range(1, 21)}
    seqs[21] = [5]  # one click: never a validation user
    split = past_split(seqs, valid_share=0.1)
    assert len(split.valid) == 2
    assert 21 not in split.valid
    assert sorted(split.train + split.valid) == list(range(1, 22))
    assert split.test == []
    assert past_split(seqs, valid_share=0.1) == split  # seeded


def test_user_sequences_hold_past_then_future_in_data_order() -> None:
    timeline = Timeline(CLICKS[:2], CLICKS[2:])
    seqs = user_sequences(timeline)
    assert seqs[1].tolist() == [10, 11, 12]
    assert seqs[3].dtype == np.int64
