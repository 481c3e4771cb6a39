"""`make online-eval`, data side: time-sorted clicks, the time cut, the initial model of the past.

The past (clicks before the cut) trains the first MIND model with the project's own trainer and
is loaded into Redis as the users' histories; the future is replayed to the clicks topic. Items
clicked in the past are "known at the cut"; every other item is new.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from model.split import Split, build_vocab
from producers.sources import LineReporter, read_csv

VALID_SHARE = 0.1  # past users kept out of training for early stopping (ComiRec's valid share)
SPLIT_SEED = 2020  # same seed as model.split.comirec_split


class Click(NamedTuple):
    """One click of the data, with the data's own timestamp."""

    user: int
    item: int
    ts: float


def read_clicks(path: str | Path, limit: int | None = None) -> list[Click]:
    """`user,item,timestamp` rows (optional header), sorted by timestamp (stable: ties keep file
    order); with `limit`, only the first `limit` clicks of that order."""
    rows = [Click(c.user_id, c.item_id, float(c.ts)) for c in read_csv(path, LineReporter(path))
            if c.ts is not None]
    rows.sort(key=lambda c: c.ts)
    return rows[:limit] if limit else rows


@dataclass(frozen=True)
class Timeline:
    """The clicks cut in two at `cut_ts`: `past` trains the first model, `future` is replayed."""

    past: list[Click]
    future: list[Click]

    @property
    def cut_ts(self) -> float:
        """Data time of the first future click."""
        return self.future[0].ts

    @property
    def known(self) -> frozenset[int]:
        """Items clicked before the cut: the initial model's catalogue."""
        return frozenset(c.item for c in self.past)


def cut(clicks: Sequence[Click], fraction: float = 0.5) -> Timeline:
    """Past = the first `fraction` of the clicks in time order (at least one), future = the rest
    (at least one)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"cut fraction must be in (0, 1), got {fraction}")
    if len(clicks) < 2:
        raise ValueError(f"need at least 2 clicks to cut, got {len(clicks)}")
    at = min(max(1, int(len(clicks) * fraction)), len(clicks) - 1)
    return Timeline(list(clicks[:at]), list(clicks[at:]))


def sequences(clicks: Iterable[Click]) -> dict[int, list[int]]:
    """User -> items in click order (the trainer's `Sequences`)."""
    out: dict[int, list[int]] = {}
    for c in clicks:
        out.setdefault(c.user, []).append(c.item)
    return out


def past_split(seqs: dict[int, list[int]], valid_share: float = VALID_SHARE,
               seed: int = SPLIT_SEED) -> Split:
    """A `model.split.Split` of the past users: `valid_share` of those with at least 2 clicks
    (a holdout target) validate early stopping, every other user trains; no test part."""
    users = sorted(seqs)
    random.Random(seed).shuffle(users)
    eligible = [u for u in users if len(seqs[u]) >= 2]
    n_valid = min(max(1, round(len(users) * valid_share)), max(0, len(eligible) - 1))
    valid = set(eligible[:n_valid])
    return Split([u for u in users if u not in valid], [u for u in users if u in valid], [])


@dataclass(frozen=True)
class Initial:
    """The exported initial model: its version dir and what training reported."""

    version_dir: Path
    best_epoch: int
    epochs: int
    valid: dict[str, float]
    train_users: int
    items: int

    def summary(self) -> dict[str, Any]:
        return {"version": self.version_dir.name, "best_epoch": self.best_epoch,
                "epochs": self.epochs, "valid": self.valid, "train_users": self.train_users,
                "items": self.items}


def train_initial(past: Sequence[Click], model_root: str | Path, *, seed: int,
                  max_minutes: float, label: str, progress: bool = True) -> Initial:
    """Train MIND on the past (MindConfig defaults but `seed` and the time cap) and export it
    into `model_root` (a root with LATEST, where the continuous trainer exports next)."""
    from model.config import MindConfig, setup_paddle
    from model.export import export_model
    from model.trainer import train_model

    seqs = sequences(past)
    cfg = MindConfig(seed=seed, max_minutes=max_minutes)
    setup_paddle(cfg)
    split = past_split(seqs)
    vocab = build_vocab(seqs, split.train)
    result = train_model(seqs, split, vocab, cfg, "mind", progress=progress)
    metrics = {"best_epoch": result.best_epoch, "valid": result.best_valid,
               "epochs": len(result.history), "trained_on": "clicks before the time cut"}
    vdir = export_model(model_root, result.model, vocab, cfg, data_path=label, split=split,
                        metrics=metrics)
    return Initial(vdir, result.best_epoch, len(result.history), result.best_valid,
                   len(split.train), vocab.size)


def user_sequences(timeline: Timeline) -> dict[int, np.ndarray]:
    """User -> every item the user clicked (past then future), int64, in data order."""
    return {u: np.asarray(items, dtype=np.int64)
            for u, items in sequences([*timeline.past, *timeline.future]).items()}
