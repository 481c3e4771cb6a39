"""Prequential scoring pieces: the list served to each user, hit counting, event chunks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from model.online.learner import Snapshot

TOP = (20, 50)


def most_popular(counts: Counter[int], n: int) -> list[int]:
    """The `n` most clicked items, most first (ties: smaller id first)."""
    return [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


class ServedLists:
    """The list served after each user's latest click (best first)."""

    def __init__(self, k: int = max(TOP)) -> None:
        self.k = k
        self.lists: dict[int, list[int]] = {}
        self._popular: list[int] = []
        self._popular_at = -1

    def get(self, user: int) -> list[int]:
        return self.lists.get(user, [])

    def popular(self, users: Sequence[int], counts: Counter[int],
                seen: dict[int, set[int]]) -> None:
        """Live MostPopular: the top of `counts` minus what each user has clicked."""
        total = sum(counts.values())
        if total - self._popular_at >= 100 or not self._popular:  # re-rank every 100 clicks
            self._popular, self._popular_at = most_popular(counts, 5000), total
        for u in users:
            self.lists[u] = [i for i in self._popular if i not in seen[u]][: self.k]

    def recall(self, snap: Snapshot, users: Sequence[int], histories: Sequence[Sequence[int]],
               seen: dict[int, set[int]]) -> None:
        """Exact top-k of each user's interests (max over interests), seen items removed."""
        vecs, usable = snap.interests(histories)  # [B, K, D], [B]
        scores = np.einsum("bkd,nd->bkn", vecs, snap.table[1:]).max(axis=1)  # [B, n]
        for b, u in enumerate(users):
            if not usable[b]:
                self.lists[u] = [i for i in snap.popular if i not in seen[u]][: self.k]
                continue
            drop = [snap.row[i] - 1 for i in seen[u] if i in snap.row]
            scores[b, drop] = -np.inf
            top = np.argpartition(-scores[b], min(self.k, scores.shape[1] - 1))[: self.k]
            top = top[np.argsort(-scores[b, top], kind="stable")]
            self.lists[u] = snap.ids[top[np.isfinite(scores[b, top])]].tolist()


@dataclass
class Tally:
    """Hits of the served lists: HitRate@20/@50 overall and @50 on new items."""

    n: int = 0
    hits20: int = 0
    hits50: int = 0
    new: int = 0
    new_hits50: int = 0

    def add(self, served: list[int], item: int, is_new: bool) -> None:
        self.n += 1
        self.hits20 += item in served[:20]
        hit50 = item in served[:50]
        self.hits50 += hit50
        self.new += is_new
        self.new_hits50 += hit50 and is_new

    def result(self) -> dict[str, float]:
        return {"hitrate@20": self.hits20 / max(self.n, 1),
                "hitrate@50": self.hits50 / max(self.n, 1),
                "new_item_hitrate@50": self.new_hits50 / max(self.new, 1),
                "evaluated_clicks": self.n, "new_item_clicks": self.new}


def chunks(total: int, start: int, size: int, progress: bool = True
           ) -> Iterator[tuple[int, int]]:
    """Consecutive ranges of events[start:total], `size` long: the micro-batches. Every click
    of a batch is scored against the lists served before the batch (what a user had when
    clicking, as the worker recalls once per user per batch)."""
    bar = tqdm(total=total - start, desc="replay", disable=None if progress else True,
               mininterval=1.0, leave=False)
    for lo in range(start, total, size):
        hi = min(lo + size, total)
        bar.update(hi - lo)
        yield lo, hi
    bar.close()
