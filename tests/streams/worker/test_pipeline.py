"""ClickPipeline's construction rules that need no servers (its batch steps run against real
Redis and Milvus in tests/integration/test_core_pipeline.py)."""

from __future__ import annotations

import pytest

from model.fusion import FusionConfig
from streams.recall.fused import FusedRecaller
from streams.worker.pipeline import ClickPipeline
from tests.streams.recall.test_fused import world


def test_records_with_channel_lists_need_a_recaller_that_keeps_them() -> None:
    mind, reader = world()
    lean = FusedRecaller(mind, ("mind", "cooccur"), FusionConfig(), reader, channel_lists=False)
    with pytest.raises(ValueError, match="RECALL_RECORD_CHANNEL_LISTS"):
        ClickPipeline(None, lean, channel_lists=True)  # type: ignore[arg-type]
    ClickPipeline(None, lean)  # type: ignore[arg-type]  # records without them: fine
    full = FusedRecaller(mind, ("mind", "cooccur"), FusionConfig(), reader)
    ClickPipeline(None, full, channel_lists=True)  # type: ignore[arg-type]
    lean.close()
    full.close()
