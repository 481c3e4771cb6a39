"""The fault tests' oracle (NumPy, exact) and the serving path (model -> Milvus -> merge) agree:
two independent ways to the same MIND candidates, with seen items left out."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.faults.checks import tie_equal
from harness.faults.oracle import ExactOracle
from producers.items import read_item_table
from streams.recall.core import open_core
from streams.settings import Settings
from streams.stores.index import ItemIndex

pytestmark = pytest.mark.integration


def test_exact_oracle_matches_the_recaller_on_milvus(core_settings: Settings,
                                                     model_dir: Path) -> None:
    settings = core_settings.model_copy(update={"channels": "mind"})
    _, ids, vectors = read_item_table(model_dir)
    index = ItemIndex(settings.milvus_uri, settings.milvus_collection, vectors.shape[1])
    index.start()
    try:
        index.upsert(ids, vectors)
    finally:
        index.close()
    rng = random.Random(3)
    items = [int(i) for i in ids]
    histories = [rng.sample(items, rng.randint(1, 10)) for _ in range(300)]
    seen = [h + rng.sample(items, rng.randint(0, 40)) for h in histories]
    oracle = ExactOracle(model_dir, settings.top_k, settings.interest_pruning,
                         settings.interest_dedup_cosine)
    want = oracle.expect(histories, seen)
    try:
        with open_core(settings, with_history=False) as core:
            got = core.recaller.recall(histories, exclude=seen)
    finally:
        index.start()
        index.destroy()
        index.close()
    assert all(g.model_version == w[2] for g, w in zip(got, want, strict=True))
    differ = [n for n, (g, w) in enumerate(zip(got, want, strict=True))
              if not tie_equal((g.item_ids, g.scores), (w[0], w[1]))]
    assert not differ, (differ[:3], got[differ[0]] if differ else None)
    assert all(not set(g.item_ids) & set(s) for g, s in zip(got, seen, strict=True))
