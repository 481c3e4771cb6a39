"""`make online-eval`, data side: time-sorted clicks, the time cut, the initial model of the past.

The past (clicks before the cut) trains the first MIND model with the project's own trainer and
is loaded into Redis as the users' histories; the future is replayed to the clicks topic. Items
clicked in the past are "known at the cut"; every other item is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from model.online.pretrain import click_sequences, train_past
from producers.sources import LineReporter, read_csv


class LoggedClick(NamedTuple):
    """One click of the data, with the data's own timestamp."""

    user: int
    item: int
    ts: float


def read_clicks(path: str | Path, limit: int | None = None) -> list[LoggedClick]:
    """`user,item,timestamp` rows (optional header), sorted by timestamp (stable: ties keep file
    order); with `limit`, only the first `limit` clicks of that order."""
    rows = [LoggedClick(c.user_id, c.item_id, float(c.ts))
            for c in read_csv(path, LineReporter(path)) if c.ts is not None]
    rows.sort(key=lambda c: c.ts)
    return rows[:limit] if limit else rows


@dataclass(frozen=True)
class Timeline:
    """The clicks cut in two at `cut_ts`: `past` trains the first model, `future` is replayed."""

    past: list[LoggedClick]
    future: list[LoggedClick]

    @property
    def cut_ts(self) -> float:
        """Data time of the first future click."""
        return self.future[0].ts

    @property
    def known(self) -> frozenset[int]:
        """Items clicked before the cut: the initial model's catalogue."""
        return frozenset(c.item for c in self.past)


def cut(clicks: Sequence[LoggedClick], fraction: float = 0.5) -> Timeline:
    """Past = the first `fraction` of the clicks in time order (at least one), future = the rest
    (at least one)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"cut fraction must be in (0, 1), got {fraction}")
    if len(clicks) < 2:
        raise ValueError(f"need at least 2 clicks to cut, got {len(clicks)}")
    at = min(max(1, int(len(clicks) * fraction)), len(clicks) - 1)
    return Timeline(list(clicks[:at]), list(clicks[at:]))


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


def train_initial(past: Sequence[LoggedClick], model_root: str | Path, *, seed: int,
                  max_minutes: float, label: str, progress: bool = True) -> Initial:
    """Train MIND on the past and export it into `model_root` (model.online.pretrain)."""
    seqs = click_sequences((c.user, c.item) for c in past)
    vdir, result, split, vocab = train_past(seqs, model_root, seed=seed,
                                            max_minutes=max_minutes, label=label,
                                            progress=progress)
    return Initial(vdir, result.best_epoch, len(result.history), result.best_valid,
                   len(split.train), vocab.size)


def user_sequences(timeline: Timeline) -> dict[int, np.ndarray]:
    """User -> every item the user clicked (past then future), int64, in data order."""
    return {u: np.asarray(items, dtype=np.int64)
            for u, items in click_sequences((c.user, c.item) for c in
                                            [*timeline.past, *timeline.future]).items()}
