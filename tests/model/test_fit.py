"""Tests for model.fit: learning on synthetic data, early stopping, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.config import MindConfig
from model.data import Sequences
from model.fit import TrainResult, evaluate_model, negative_table, train_model
from model.split import Split, build_vocab, holdout


def test_trained_model_beats_random(tiny_cfg: MindConfig, tiny_seqs: Sequences, tiny_split: Split,
                                    tiny_trained: TrainResult) -> None:
    vocab = build_vocab(tiny_seqs, tiny_split.train)
    hists, targets = holdout(tiny_seqs, tiny_split.valid)
    fresh = train_model(tiny_seqs, tiny_split, vocab, tiny_cfg.replace(epochs=0), progress=False)
    before = evaluate_model(fresh.model, vocab, hists, targets, tiny_cfg.maxlen)
    assert tiny_trained.best_valid["recall@50"] > before["recall@50"]
    assert len(tiny_trained.history) == 2 and tiny_trained.best_epoch >= 1


def test_training_is_deterministic(tiny_cfg: MindConfig, tiny_seqs: Sequences, tiny_split: Split,
                                   tiny_trained: TrainResult) -> None:
    vocab = build_vocab(tiny_seqs, tiny_split.train)
    again = train_model(tiny_seqs, tiny_split, vocab, tiny_cfg, progress=False)
    np.testing.assert_allclose(again.model.item_matrix(), tiny_trained.model.item_matrix(),
                               atol=1e-6)


def test_checkpoint_resume_continues(tiny_cfg: MindConfig, tmp_path: Path, tiny_seqs: Sequences,
                                     tiny_split: Split) -> None:
    vocab = build_vocab(tiny_seqs, tiny_split.train)
    cfg = tiny_cfg.replace(epochs=1, patience=5)
    train_model(tiny_seqs, tiny_split, vocab, cfg, "youtube_dnn", ckpt_dir=tmp_path,
                progress=False)
    assert (tmp_path / "youtube_dnn.pdparams").exists()
    res = train_model(tiny_seqs, tiny_split, vocab, cfg.replace(epochs=2), "youtube_dnn",
                      ckpt_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in res.history] == [1, 2]


def test_negative_table_logq(tiny_cfg: MindConfig) -> None:
    vocab = build_vocab({1: [5, 5, 6, 7]}, [1])
    cdf, logq = negative_table(vocab, tiny_cfg.replace(neg_alpha=1.0, negatives=2))
    assert cdf[-1] == pytest.approx(1.0) and logq[0] == 0.0
    np.testing.assert_allclose(np.exp(logq[1:]) / 2, [3 / 7, 2 / 7, 2 / 7], rtol=1e-6)
    _, full = negative_table(vocab, tiny_cfg.replace(neg_alpha=1.0, negatives=3))
    assert not full.any()  # negatives >= items: exact softmax, no correction
