"""Tests for model.data readers and the synthetic generator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from model.data import (
    DataError,
    read_any,
    read_book_train,
    read_book_valid,
    read_csv,
    read_sequence_file,
    synthetic,
)


def test_sequence_file_reports_invalid_lines(tmp_path: Path, caplog) -> None:
    path = tmp_path / "s.txt"
    path.write_text("1 10 11 12\n2 x 3\n3\n\n4 5 6\n")
    with caplog.at_level(logging.WARNING):
        seqs = read_sequence_file(path)
    assert seqs == {1: [10, 11, 12], 4: [5, 6]}
    assert "2 invalid line(s)" in caplog.text and "line 2, 3" in caplog.text
    assert str(path) in caplog.text


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "e.txt"
    path.write_text("bad\n")
    with pytest.raises(DataError, match="no usable"):
        read_sequence_file(path)
    with pytest.raises(DataError, match="no such file"):
        read_any(tmp_path / "missing.txt")


def test_csv_with_header_sorted_by_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("user,item,timestamp\n1,5,30\n1,6,10\n2,7,1\n1,8,20\n")
    assert read_csv(path) == {1: [6, 8, 5], 2: [7]}
    assert read_any(path) == {1: [6, 8, 5], 2: [7]}


def test_book_formats(tmp_path: Path) -> None:
    train = tmp_path / "train.txt"
    train.write_text("0,17,2\n0,9,0\n0,3,1\n1,4,0\n")
    assert read_book_train(train) == {0: [9, 3, 17], 1: [4]}
    valid = tmp_path / "valid.txt"
    valid.write_text("user_id:5 target_item:0 hist_item:1 hist_item:2 eval_item:3\nbroken\n")
    hist, targets = read_book_valid(valid)
    assert hist == {5: [1, 2]} and targets == {5: [3]}


def test_real_book_sample_when_present() -> None:
    path = Path(__file__).resolve().parents[3] / "shared/data/amazon-book-sample/train.txt"
    if not path.exists():
        pytest.skip("shared data not mounted")
    seqs = read_book_train(path)
    assert len(seqs) == 1467 and sum(map(len, seqs.values())) == 20000


def test_synthetic_is_seeded_and_multi_interest() -> None:
    a = synthetic(num_users=50, num_items=100, num_categories=10, seed=1)
    assert a == synthetic(num_users=50, num_items=100, num_categories=10, seed=1)
    assert a != synthetic(num_users=50, num_items=100, num_categories=10, seed=2)
    for items in a.values():
        cats = {(i - 1) // 10 for i in items}
        assert 1 <= len(cats) <= 4 and all(1 <= i <= 100 for i in items)
