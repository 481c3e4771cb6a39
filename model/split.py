"""ComiRec user split (80/10/10), history/target cut, item vocabulary and training samples."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import Sequences

SPLIT_SEED = 2020


@dataclass(frozen=True)
class Split:
    """User ids of the train / valid / test parts."""

    train: list[int]
    valid: list[int]
    test: list[int]

    def to_json(self) -> dict[str, list[int]]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


def comirec_split(seqs: Sequences, seed: int = SPLIT_SEED) -> Split:
    """Users sorted by id, shuffled by default_rng(seed).shuffle, cut 80/10/10."""
    users = np.array(sorted(seqs), dtype=np.int64)
    np.random.default_rng(seed).shuffle(users)
    n = len(users)
    a, b = int(n * 0.8), int(n * 0.9)
    return Split(users[:a].tolist(), users[a:b].tolist(), users[b:].tolist())


def save_split(split: Split, path: str | Path) -> None:
    Path(path).write_text(json.dumps(split.to_json()))


def load_split(path: str | Path, seqs: Sequences | None = None) -> Split:
    """Read `{"train": [...], "valid": [...], "test": [...]}`; unknown users are an error."""
    data = json.loads(Path(path).read_text())
    missing = {"train", "valid", "test"} - set(data)
    if missing:
        raise ValueError(f"{path}: split lacks {sorted(missing)}")
    split = Split(*(list(map(int, data[k])) for k in ("train", "valid", "test")))
    if seqs is not None:
        parts = (split.train, split.valid, split.test)
        unknown = [u for part in parts for u in part if u not in seqs]
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} user(s) not in the data, e.g. {unknown[:5]}")
    return split


def cut(seq: list[int]) -> tuple[list[int], list[int]]:
    """History = first max(1, floor(0.8 * len)) clicks, targets = the rest."""
    k = max(1, int(len(seq) * 0.8))
    return seq[:k], seq[k:]


def holdout(seqs: Sequences, users: list[int]) -> tuple[list[list[int]], list[list[int]]]:
    """(histories, targets) for held-out users that have at least one target."""
    hist, targ = [], []
    for u in users:
        h, t = cut(seqs[u])
        if t:
            hist.append(h)
            targ.append(t)
    return hist, targ


@dataclass(frozen=True)
class Vocab:
    """Raw item id <-> row index (1..N, 0 = padding), rows ordered by train click count."""

    item_ids: np.ndarray  # [N] int64 raw ids; row r+1 of the embedding table
    counts: np.ndarray  # [N] int64 train click counts

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def index(self) -> dict[int, int]:
        return {int(i): r + 1 for r, i in enumerate(self.item_ids)}


def build_vocab(seqs: Sequences, train_users: list[int]) -> Vocab:
    """All items of the data; most clicked among train users first (ties: smaller id first)."""
    counts = Counter(i for u in train_users for i in seqs[u])
    items = {i for s in seqs.values() for i in s}
    order = sorted(items, key=lambda i: (-counts.get(i, 0), i))
    return Vocab(np.array(order, dtype=np.int64), np.array([counts.get(i, 0) for i in order]))


def encode(histories: list[list[int]], index: dict[int, int], maxlen: int) -> np.ndarray:
    """Last `maxlen` known items of each history, left-aligned, 0-padded -> [B, L] int64."""
    out = np.zeros((len(histories), maxlen), dtype=np.int64)  # [B, L]
    for r, h in enumerate(histories):
        rows = [index[i] for i in h if i in index][-maxlen:]
        out[r, : len(rows)] = rows
    return out


def prefix_samples(
    seqs: Sequences, users: list[int], index: dict[int, int], maxlen: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every prefix of each train user's sequence: (history [M, L], next-item label [M])."""
    hists, labels = [], []
    for u in users:
        rows = [index[i] for i in seqs[u]]
        for t in range(1, len(rows)):
            h = rows[max(0, t - maxlen) : t]
            hists.append(h + [0] * (maxlen - len(h)))
            labels.append(rows[t])
    return np.array(hists, dtype=np.int64).reshape(-1, maxlen), np.array(labels, dtype=np.int64)
