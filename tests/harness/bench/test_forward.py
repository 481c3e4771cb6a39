"""Tests for harness.bench.forward: random export and users/s measurement."""

from __future__ import annotations

from pathlib import Path

from harness.bench.forward import bench, main, random_export
from model.config import MindConfig
from model.serving import InterestModel


def test_bench_rows(tmp_path: Path) -> None:
    cfg = MindConfig(device="cpu")
    model = InterestModel.load(random_export(tmp_path, cfg, num_items=500), device="cpu")
    rows = bench(model, [1, 8], seconds=0.05)
    assert [r["batch_size"] for r in rows] == [1, 8]
    assert all(r["users_per_s"] > 0 for r in rows)


def test_bench_cli(capsys) -> None:
    assert main(["--batch-sizes", "2", "--seconds", "0.05", "--device", "cpu"]) == 0
    assert "users/s" in capsys.readouterr().out
