"""Evaluation through Milvus equals exact search with FLAT; IVF_FLAT's loss is measured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.milvus_eval import compare, holdout_users
from model.serving import InterestModel
from streams.settings import Settings
from streams.stores.index import ItemIndex

pytestmark = pytest.mark.integration


@pytest.fixture(params=["FLAT", "IVF_FLAT"])
def loaded(request: pytest.FixtureRequest, core_settings: Settings
           ) -> Iterator[tuple[InterestModel, ItemIndex]]:
    model = InterestModel.load(core_settings.model_dir)
    index = ItemIndex(core_settings.milvus_uri, f"eval_{uuid.uuid4().hex[:10]}", model.dim,
                      request.param)
    index.start()
    ids, vectors = model.item_table()
    index.upsert(ids.tolist(), vectors)
    yield model, index
    index.destroy()
    index.close()


def test_milvus_metrics_match_exact_with_flat_and_report_ann_loss(
    loaded: tuple[InterestModel, ItemIndex], core_settings: Settings
) -> None:
    model, index = loaded
    histories, targets = holdout_users(Path(core_settings.model_dir) / model.version, None)
    assert len(histories) > 100
    result = compare(model, index, histories, targets)
    exact, milvus = result["exact"], result["milvus"]
    assert exact["recall@50"] > 0.05  # a trained model, not noise
    if index.index_type == "FLAT":
        for key in exact:
            assert milvus[key] == pytest.approx(exact[key], abs=1e-6), key
    else:
        loss = result["exact_minus_milvus"]
        assert set(loss) == set(exact)
        assert abs(loss["recall@50"]) < 0.05  # IVF_FLAT with nprobe 16 stays close
