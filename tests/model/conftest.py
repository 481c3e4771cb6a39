"""Shared fixtures for the model tests: tiny synthetic data and one tiny trained export."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.config import MindConfig, setup_paddle
from model.data import Sequences, synthetic
from model.export import export_model
from model.fit import TrainResult, train_model
from model.split import Split, build_vocab, comirec_split

TINY = MindConfig(epochs=2, batch_size=128, negatives=64, patience=2, seed=11, device="cpu")


@pytest.fixture(scope="session")
def tiny_cfg() -> MindConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_seqs() -> Sequences:
    return synthetic(num_users=300, num_items=200, num_categories=10, seed=3)


@pytest.fixture(scope="session")
def tiny_split(tiny_seqs: Sequences) -> Split:
    return comirec_split(tiny_seqs)


@pytest.fixture(scope="session")
def tiny_trained(tiny_seqs: Sequences, tiny_split: Split) -> TrainResult:
    setup_paddle(TINY)
    return train_model(tiny_seqs, tiny_split, build_vocab(tiny_seqs, tiny_split.train), TINY,
                       "mind", progress=False)


@pytest.fixture()
def tiny_export(tmp_path: Path, tiny_seqs: Sequences, tiny_split: Split,
                tiny_trained: TrainResult) -> Path:
    """Root dir holding one export of the tiny model and LATEST."""
    vocab = build_vocab(tiny_seqs, tiny_split.train)
    export_model(tmp_path, tiny_trained.model, vocab, TINY, data_path="synthetic",
                 split=tiny_split, metrics={"valid": tiny_trained.best_valid})
    return tmp_path
