"""Readers of every dataset format, the seeded interleave and the synthetic click generator."""

from __future__ import annotations

from collections import defaultdict
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from producers.sources import (
    LineReporter,
    SourceClick,
    detect_format,
    interleave,
    iter_clicks,
    read_amazonbook,
    read_csv,
    read_sequences,
    synthetic_clicks,
)
from streams.errors import BadRequest

BEAUTY = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon-beauty.txt"


def collect(errors: list[tuple[int, str]]):
    return lambda lineno, reason: errors.append((lineno, reason))


def by_user(clicks) -> dict[int, list[int]]:
    seqs: dict[int, list[int]] = defaultdict(list)
    for c in clicks:
        seqs[c.user_id].append(c.item_id)
    return dict(seqs)


def test_sequences_reader_reports_bad_lines_with_numbers(tmp_path: Path) -> None:
    path = tmp_path / "seq.txt"
    path.write_text("1 10 11 12\n2 x 3\n\n3\n4 0 5\n5 7\n")
    errors: list[tuple[int, str]] = []
    assert list(read_sequences(path, collect(errors))) == [(1, [10, 11, 12]), (5, [7])]
    assert [lineno for lineno, _ in errors] == [2, 4, 5]


def test_amazonbook_reader_orders_and_shifts_users(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("0,30,2\n0,10,0\n1,5,0\n0,20,1\nbad,row\n1,6,1\n")
    errors: list[tuple[int, str]] = []
    assert list(read_amazonbook(path, collect(errors))) == [(1, [10, 20, 30]), (2, [5, 6])]
    assert errors[0][0] == 5


def test_csv_reader_keeps_file_order_and_skips_header(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("user,item,timestamp\n2,7,100.5\n1,8,101\n1,x,102\n3,9\n")
    errors: list[tuple[int, str]] = []
    clicks = list(read_csv(path, collect(errors)))
    assert clicks == [SourceClick(2, 7, 100.5), SourceClick(1, 8, 101.0)]
    assert [lineno for lineno, _ in errors] == [4, 5]


def test_csv_reader_without_header(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("4,5,1.0\n")
    assert list(read_csv(path)) == [SourceClick(4, 5, 1.0)]


def test_detect_format(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1 2 3\n")
    (tmp_path / "b.txt").write_text("0,1,0\n")
    (tmp_path / "c.csv").write_text("1,2,3.5\n")
    assert [detect_format(tmp_path / n) for n in ("a.txt", "b.txt", "c.csv")] == [
        "sequences", "amazonbook", "csv"]


def test_interleave_mixes_users_but_keeps_each_users_order() -> None:
    seqs = [(u, list(range(u * 100, u * 100 + 8))) for u in range(1, 21)]
    stream = list(interleave(seqs, active=5, seed=3))
    assert len(stream) == 160
    assert by_user(stream) == dict(seqs)
    assert len({c.user_id for c in stream[:10]}) > 1  # not one user at a time
    assert stream == list(interleave(seqs, active=5, seed=3))  # seeded
    assert [c.user_id for c in interleave(seqs, active=1)][:8] == [1] * 8


def test_real_beauty_slice_round_trips() -> None:
    if not BEAUTY.is_file():
        pytest.skip(f"dataset {BEAUTY} not present")
    expected = dict(islice(read_sequences(BEAUTY), 30))
    stream = list(iter_clicks(BEAUTY, users=30, active=8, seed=1))
    assert sum(len(v) for v in expected.values()) == len(stream)
    assert by_user(stream) == expected
    assert all(c.user_id > 0 and c.item_id > 0 for c in stream)


def test_iter_clicks_users_filter_on_csv(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("1,5,1\n2,6,2\n3,7,3\n1,8,4\n")
    assert [c.item_id for c in iter_clicks(path, users=2)] == [5, 6, 8]


def test_iter_clicks_rejects_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        iter_clicks(tmp_path / "nope.txt")
    (tmp_path / "a.txt").write_text("1 2\n")
    with pytest.raises(BadRequest):
        iter_clicks(tmp_path / "a.txt", "parquet")


def test_synthetic_clicks_stay_in_catalog_and_are_seeded() -> None:
    catalog = np.array([3, 17, 42, 99, 1000], dtype=np.int64)
    clicks = list(synthetic_clicks(catalog, users=7, seed=5, limit=2500))
    assert len(clicks) == 2500
    assert {c.item_id for c in clicks} <= set(catalog.tolist())
    assert {c.user_id for c in clicks} == set(range(1, 8))
    assert clicks == list(synthetic_clicks(catalog, users=7, seed=5, limit=2500))
    assert clicks != list(synthetic_clicks(catalog, users=7, seed=6, limit=2500))


def test_synthetic_clicks_endless_without_limit() -> None:
    assert len(list(islice(synthetic_clicks(range(1, 50), users=3), 3000))) == 3000
    with pytest.raises(BadRequest):
        next(synthetic_clicks([], users=3))


def test_line_reporter_counts_and_names_the_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("1,2,3\n1,2\nx,y,z\n")
    report = LineReporter(path)
    assert len(list(iter_clicks(path, report=report))) == 1
    assert report.count == 2
    assert f"{path}:2: skipped" in capsys.readouterr().err
