"""Tests for model.evaluate: protocol on tiny data, pluggable retrieval, CLI JSON/table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from model.config import MindConfig
from model.data import Sequences
from model.evaluate import evaluate_users, format_table, main, run_protocol
from model.ranking_metrics import exact_retriever
from model.split import Split


def test_retrieve_function_is_pluggable() -> None:
    rng = np.random.default_rng(1)
    ids, vecs = np.arange(50, 90), rng.normal(size=(40, 4)).astype(np.float32)
    users = rng.normal(size=(6, 2, 4)).astype(np.float32)
    targets = [[int(ids[i])] for i in range(6)]
    calls: list[int] = []

    def fake_milvus(v: np.ndarray, n: int) -> Sequence[Sequence[int]]:
        calls.append(n)
        return exact_retriever(ids, vecs)(v, n)

    a = evaluate_users(users, targets, retrieve=fake_milvus)
    b = evaluate_users(users, targets, item_ids=ids, item_vectors=vecs)
    assert a == b and calls == [50]
    with pytest.raises(ValueError):
        evaluate_users(users, targets)


def test_protocol_on_tiny_data(tiny_cfg: MindConfig, tiny_seqs: Sequences,
                               tiny_split: Split) -> None:
    summary, runs = run_protocol(tiny_seqs, tiny_split, tiny_cfg.replace(epochs=1), seeds=2,
                                 progress=False)
    assert set(summary) == {"mind", "youtube_dnn", "most_popular"}
    assert len(runs["mind"]) == 2 and len(runs["most_popular"]) == 1
    for vals in summary.values():
        assert 0.0 <= vals["recall@50"] <= 1.0 and "hitrate@20_sd" in vals
    assert summary["mind"]["recall@50"] >= summary["mind"]["recall@20"] > 0.0
    assert "most_popular" in format_table(summary)


def test_cli_json_and_out(tmp_path: Path, capsys) -> None:
    data = tmp_path / "seq.txt"
    rng = np.random.default_rng(0)
    data.write_text("".join(
        f"{u} " + " ".join(str(i) for i in rng.integers(1, 60, size=8)) + "\n"
        for u in range(1, 121)))
    out = tmp_path / "res.json"
    code = main(["--data", str(data), "--epochs", "1", "--json", "--no-progress",
                 "--set", "negatives=32", "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"recall@50", "ndcg@50", "hitrate@50", "recall@20", "recall@50_sd"} <= set(
        printed["mind"])
    saved = json.loads(out.read_text())
    split = json.loads(Path(f"{out}.split.json").read_text())
    assert saved["summary"] == printed and len(split["test"]) == 12
