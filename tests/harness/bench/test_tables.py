"""harness.bench.tables on a small random export: the worker's streamed table and the
learner grown by the same code that measures them at 1M items."""

from __future__ import annotations

from pathlib import Path

from harness.bench.forward import random_export
from harness.bench.tables import streamed_table, trainer_table
from model.config import MindConfig
from model.serving import InterestModel
from streams.settings import Settings


def test_streamed_table_grows_to_the_size_asked(tmp_path: Path) -> None:
    model = InterestModel.load(random_export(tmp_path, MindConfig(device="cpu"), num_items=300),
                               device="cpu")
    got = streamed_table(model, total=12_000, old_total=3_072, batch=1024)
    assert model.streamed_items == 12_000
    assert list(got["ms_per_batch_at"]) == [10_240, 12_000]  # the batches past 10k and 12k
    assert list(got["old_ms_per_batch_at"]) == [3_072]
    assert got["forward_64_streamed_ms"] > 0 and got["forward_64_trained_ms"] > 0


def test_trainer_table_builds_steps_and_exports(tmp_path: Path) -> None:
    root = random_export(tmp_path / "model", MindConfig(device="cpu"), num_items=300)
    for sparse in (False, True):
        got = trainer_table(str(root), 2_000, tmp_path / "cache", Settings(), sparse)
        assert got["items"] == 2_000 and got["sparse"] is sparse
        assert 0 < got["changed_rows"] < 2_000 + 1024  # the steps' rows and the new items
        assert got["export_mb"] > 0 and got["step_ms"] > 0
