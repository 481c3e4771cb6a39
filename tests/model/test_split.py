"""Tests for model.split: ComiRec split, history cut, vocabulary, prefix samples, split files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.split import (
    Split,
    build_vocab,
    comirec_split,
    cut,
    encode,
    holdout,
    load_split,
    prefix_samples,
    save_split,
)


def test_split_is_the_comirec_protocol() -> None:
    seqs = {u: [1, 2] for u in range(100, 0, -1)}
    split = comirec_split(seqs)
    users = np.arange(1, 101)
    np.random.default_rng(2020).shuffle(users)
    assert split.train == users[:80].tolist()
    assert split.valid == users[80:90].tolist() and split.test == users[90:].tolist()


def test_cut_rule() -> None:
    assert cut([1]) == ([1], [])
    assert cut([1, 2]) == ([1], [2])
    assert cut(list(range(10))) == (list(range(8)), [8, 9])
    assert cut(list(range(9))) == (list(range(7)), [7, 8])
    hist, targ = holdout({1: [5], 2: [5, 6, 7]}, [1, 2])
    assert hist == [[5, 6]] and targ == [[7]]


def test_vocab_orders_by_train_counts() -> None:
    seqs = {1: [7, 7, 8], 2: [9, 9, 9], 3: [8, 5]}
    vocab = build_vocab(seqs, [1, 3])
    assert vocab.item_ids.tolist() == [7, 8, 5, 9]
    assert vocab.counts.tolist() == [2, 2, 1, 0]
    assert vocab.index() == {7: 1, 8: 2, 5: 3, 9: 4}


def test_prefix_samples_and_encode() -> None:
    index = {10: 1, 11: 2, 12: 3, 13: 4}
    x, y = prefix_samples({1: [10, 11, 12, 13]}, [1], index, maxlen=2)
    assert x.tolist() == [[1, 0], [1, 2], [2, 3]] and y.tolist() == [2, 3, 4]
    enc = encode([[10, 99, 11, 12], [99]], index, maxlen=2)
    assert enc.tolist() == [[2, 3], [0, 0]]


def test_split_file_roundtrip(tmp_path: Path) -> None:
    split = Split([1, 2], [3], [4])
    path = tmp_path / "split.json"
    save_split(split, path)
    assert load_split(path, {1: [1], 2: [1], 3: [1], 4: [1]}) == split
    with pytest.raises(ValueError, match="not in the data"):
        load_split(path, {1: [1]})
