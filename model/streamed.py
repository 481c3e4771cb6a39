"""Vectors of items streamed in after training (the worker's copy of the items topic), at
amortised constant cost per item, so that a catalog of a million streamed items builds in
seconds instead of copying the whole table on every batch."""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence

import numpy as np

MIN_ROWS = 1024


class StreamedVectors:
    """Item id -> vector, for items outside the trained table.

    Rows are appended to a buffer that doubles when full, and `rows` maps each id to its newest
    row. A replaced or removed item leaves its old row behind (`dead`); `compacted` copies the
    live rows into a new table. Readers use `find` and `vectors` without a lock while one writer
    adds: a row is written before an id points at it, and a full buffer is replaced by a longer
    copy of itself, never written over.
    """

    def __init__(self, dim: int, capacity: int = MIN_ROWS) -> None:
        self.dim = dim
        self.vectors = np.zeros((max(capacity, 1), dim), dtype=np.float32)  # [C, D]
        self.used = 0  # rows written, live or dead
        self.rows: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def dead(self) -> int:
        """Rows no id points at any more."""
        return self.used - len(self.rows)

    @property
    def ids(self) -> np.ndarray:
        """The ids held [N] int64, in no particular order."""
        return np.fromiter(self.rows, dtype=np.int64, count=len(self.rows))

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Insert or replace `ids` [M] with `vectors` [M, D] (the last of a repeated id wins)."""
        n = len(ids)
        if self.used + n > len(self.vectors):
            grown = np.zeros((max(2 * len(self.vectors), self.used + n), self.dim),
                             dtype=np.float32)  # [C', D]
            grown[:self.used] = self.vectors[:self.used]
            self.vectors = grown
        self.vectors[self.used:self.used + n] = vectors
        self.rows.update(zip((int(i) for i in ids), range(self.used, self.used + n),
                             strict=True))
        self.used += n

    def remove(self, ids: Iterable[int]) -> None:
        for item in ids:
            self.rows.pop(int(item), None)

    def compacted(self, drop: Container[int] = ()) -> StreamedVectors:
        """A new table of the live rows, without the ids in `drop`."""
        keep = [(i, r) for i, r in self.rows.items() if i not in drop]
        out = StreamedVectors(self.dim, max(MIN_ROWS, 2 * len(keep)))
        if keep:
            out.add([i for i, _ in keep], self.vectors[[r for _, r in keep]])
        return out

    def find(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found [T] bool, row [T] int) for raw ids `query` [T]."""
        if not self.rows:
            return np.zeros(len(query), bool), np.zeros(len(query), np.int64)
        get = self.rows.get
        rows = np.fromiter((get(i, -1) for i in query.tolist()), dtype=np.int64,
                           count=len(query))  # [T]
        return rows >= 0, np.maximum(rows, 0)
