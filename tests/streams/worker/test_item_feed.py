"""Unit tests of the item feed's record handling (a table double records what it is given)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from streams.records import Limits
from streams.worker.item_feed import apply_records, names_trained_item


class Table:
    def __init__(self, trained: set[int]) -> None:
        self.trained = trained
        self.vectors: dict[int, list[float]] = {}

    def add_items(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        self.vectors.update({i: v.tolist() for i, v in zip(ids, vectors, strict=True)})

    def remove_items(self, ids: Sequence[int]) -> None:
        for i in ids:
            self.vectors.pop(i, None)

    def is_trained(self, item_id: int) -> bool:
        return item_id in self.trained

    @property
    def streamed_items(self) -> int:
        return len(self.vectors)


def record(item_id: int, vector: list[float] | None = None, deleted: bool = False) -> bytes:
    return json.dumps({"item_id": item_id, "vector": vector, "deleted": deleted}).encode()


def test_last_record_per_item_wins_and_deletes_remove() -> None:
    table = Table(trained={1})
    values = [record(5, [1.0, 0.0]), record(6, [0.0, 1.0]), record(5, [2.0, 0.0]),
              record(6, deleted=True), b"{not json", record(7, [1.0]), None]
    assert apply_records(values, table, Limits(dim=2)) == 4  # bad JSON, 1-dim, None skipped
    assert table.vectors == {5: [2.0, 0.0]}
    assert apply_records([record(5, deleted=True)], table, Limits(dim=2)) == 1
    assert table.vectors == {}


def test_records_of_trained_items_are_skipped_unparsed() -> None:
    table = Table(trained={1, 2})
    assert names_trained_item(record(1, [1.0, 0.0]), table)
    assert names_trained_item(b'{"item_id":2}', table)
    assert not names_trained_item(record(3, [1.0, 0.0]), table)
    assert not names_trained_item(b'{"item_id": 1, "item_id": 3}', table)  # JSON: 3 wins
    assert not names_trained_item(None, table)
    assert apply_records([record(1, [1.0, 0.0]), record(3, [0.0, 1.0])], table,
                         Limits(dim=2)) == 1
    assert table.vectors == {3: [0.0, 1.0]}
