"""harness.bench.clickstep: its clicks are valid messages of distinct users with growing
offsets, and a step's stages add up to its total, the rest counted as records."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from harness.bench.clickstep import Clicks, one_batch
from streams.records import Click
from streams.worker.pipeline import Output, RawMessage


def test_clicks_are_valid_messages_of_distinct_users_with_growing_offsets() -> None:
    source = Clicks(np.array([10, 20, 30]), users=8, seed=1)
    first, second = source.batch(5), source.batch(5)
    for batch in (first, second):
        clicks = [Click.parse(m.value) for m in batch]
        assert len({c.user_id for c in clicks}) == 5
        assert {c.item_id for c in clicks} <= {10, 20, 30}
        assert all(m.key == str(c.user_id).encode() for m, c in zip(batch, clicks, strict=True))
    assert [m.offset for m in first + second] == list(range(10))
    assert json.loads(first[0].value or b"{}").keys() == {"user_id", "item_id", "ts"}


class TimedPipeline:
    def process(self, messages: Sequence[RawMessage]) -> Output:
        return Output(timings={"redis": 0.5, "search": 0.25})


def test_one_batch_counts_what_the_stages_leave_as_records() -> None:
    got = one_batch(TimedPipeline(), [])  # type: ignore[arg-type]
    assert got["redis"] == 0.5 and got["search"] == 0.25 and got["model"] == 0.0
    assert got["records"] == got["total"] - 0.75
