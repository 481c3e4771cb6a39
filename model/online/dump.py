"""Every variant's served list at each scored click of an offline simulation, saved as .npz so
that merge rules can be compared on the same lists without re-running the models
(`python -m model.online.fusion_tune`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class ListDump:
    """Rows of (user, item, ts, new) and, per variant, its list padded with -1 to `k`."""

    def __init__(self, k: int = 100) -> None:
        self.k = k
        self.meta: list[tuple[int, int, float, bool]] = []
        self.lists: dict[str, list[np.ndarray]] = {}

    def add(self, user: int, item: int, ts: float, new: bool,
            lists: Mapping[str, Sequence[int]]) -> None:
        self.meta.append((user, item, ts, new))
        for name, items in lists.items():
            row = np.full(self.k, -1, dtype=np.int64)
            row[: min(len(items), self.k)] = list(items)[: self.k]
            self.lists.setdefault(name, []).append(row)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        user, item, ts, new = (np.array(c) for c in zip(*self.meta, strict=True))
        arrays = {"user": user, "item": item, "ts": ts, "new": new.astype(bool),
                  **{f"list_{n}": np.stack(rows) for n, rows in self.lists.items()}}
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(meta columns, variant -> [P, k] lists) of a saved dump."""
    data = np.load(path)
    meta = {k: data[k] for k in ("user", "item", "ts", "new")}
    return meta, {k[5:]: data[k] for k in data.files if k.startswith("list_")}
