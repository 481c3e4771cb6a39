"""The initial model of a streaming evaluation: MIND trained offline on the clicks before a
time cut, exported once per (data, cut, seed) and reused from the cache afterwards."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from model.config import MindConfig, setup_paddle
from model.data import Sequences
from model.export import export_model, read_latest
from model.split import Split, build_vocab, holdout
from model.trainer import evaluate_model, train_model

log = logging.getLogger(__name__)


def past_sequences(users: np.ndarray, items: np.ndarray) -> Sequences:
    """Per-user click sequences (time order kept) of the events given."""
    seqs: Sequences = defaultdict(list)
    for u, i in zip(users.tolist(), items.tolist(), strict=True):
        seqs[u].append(i)
    return dict(seqs)


def past_split(seqs: Sequences, seed: int) -> Split:
    """90% of the users train, 10% (with >= 2 clicks) validate for early stopping."""
    users = np.array(sorted(seqs), dtype=np.int64)
    np.random.default_rng(seed).shuffle(users)
    n_valid = max(1, len(users) // 10)
    valid = [int(u) for u in users if len(seqs[int(u)]) >= 2][:n_valid]
    chosen = set(valid)
    return Split([int(u) for u in users if int(u) not in chosen], valid, [])


def initial_export(users: np.ndarray, items: np.ndarray, seed: int, work: Path, tag: str,
                   progress: bool = True, max_minutes: float = 4.0) -> Path:
    """Train MIND (defaults, this seed) on the events given; export to work/<tag>-s<seed>.

    Returns the version directory; an earlier export of the same tag and seed is reused.
    """
    root = work / f"{tag}-s{seed}"
    latest = read_latest(root)
    if latest is not None:
        return root / latest
    cfg = MindConfig(seed=seed, max_minutes=max_minutes, device="cpu")
    setup_paddle(cfg)
    seqs = past_sequences(users, items)
    split = past_split(seqs, seed)
    vocab = build_vocab(seqs, split.train)
    result = train_model(seqs, split, vocab, cfg, "mind", progress=progress)
    v_hist, v_targ = holdout(seqs, split.valid)
    valid = evaluate_model(result.model, vocab, v_hist, v_targ, cfg.maxlen)
    log.info("initial model: best epoch %d, valid %s", result.best_epoch, valid)
    return export_model(root, result.model, vocab, cfg, data_path=tag, split=split,
                        metrics={"best_epoch": result.best_epoch, "valid": valid})
