"""The initial model of a streaming evaluation: MIND trained offline on the clicks before a
time cut and exported. `make online-eval` trains one per seed; `python -m model.online.sim`
caches one per (data, cut, seed)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model.config import MindConfig, setup_paddle
from model.data import Sequences
from model.export import export_model, read_latest
from model.fit import TrainResult, train_model
from model.split import SPLIT_SEED, Split, Vocab, build_vocab

VALID_SHARE = 0.1  # past users kept out of training for early stopping (ComiRec's valid share)


def click_sequences(clicks: Iterable[tuple[int, int]]) -> Sequences:
    """User -> items in click order, from (user, item) pairs in time order."""
    seqs: Sequences = defaultdict(list)
    for u, i in clicks:
        seqs[u].append(i)
    return dict(seqs)


def past_split(seqs: Sequences, valid_share: float = VALID_SHARE,
               seed: int = SPLIT_SEED) -> Split:
    """A `model.split.Split` of the past users: `valid_share` of those with at least 2 clicks
    (a holdout target) validate early stopping, every other user trains; no test part."""
    users = sorted(seqs)
    random.Random(seed).shuffle(users)
    eligible = [u for u in users if len(seqs[u]) >= 2]
    n_valid = min(max(1, round(len(users) * valid_share)), max(0, len(eligible) - 1))
    valid = set(eligible[:n_valid])
    return Split([u for u in users if u not in valid], [u for u in users if u in valid], [])


def train_past(seqs: Sequences, model_root: str | Path, *, seed: int, max_minutes: float,
               label: str, progress: bool = True) -> tuple[Path, TrainResult, Split, Vocab]:
    """Train MIND on the past (MindConfig defaults but `seed` and the time cap) and export it
    into `model_root` (a root with LATEST, where the continuous trainer exports next).
    Returns (version dir, training result, split, vocabulary)."""
    cfg = MindConfig(seed=seed, max_minutes=max_minutes)
    setup_paddle(cfg)
    split = past_split(seqs)
    vocab = build_vocab(seqs, split.train)
    result = train_model(seqs, split, vocab, cfg, "mind", progress=progress)
    metrics = {"best_epoch": result.best_epoch, "valid": result.best_valid,
               "epochs": len(result.history), "trained_on": "clicks before the time cut"}
    vdir = export_model(model_root, result.model, vocab, cfg, data_path=label, split=split,
                        metrics=metrics)
    return vdir, result, split, vocab


def initial_export(users: np.ndarray, items: np.ndarray, seed: int, work: Path, tag: str,
                   progress: bool = True, max_minutes: float = 4.0) -> Path:
    """`train_past` on the events given, into work/<tag>-s<seed>; an earlier export of the
    same tag and seed is reused. Returns the version directory."""
    root = work / f"{tag}-s{seed}"
    latest = read_latest(root)
    if latest is not None:
        return root / latest
    seqs = click_sequences(zip(users.tolist(), items.tolist(), strict=True))
    return train_past(seqs, root, seed=seed, max_minutes=max_minutes, label=tag,
                      progress=progress)[0]
