"""One merged candidate list from several channels (MIND, co-occurrence, transitions,
popularity).

Weighted reciprocal-rank fusion: an item ranked r (0-based) in channel c's list earns
w_c / (k0 + r + 1); its fused score is the sum over the channels that hold it, and the list
is the top_k by fused score (ties: smaller id). Each item keeps, as its attribution, the
channel that gave it the largest share (ties: the earlier channel in CHANNELS), so a consumer
knows where a candidate came from. Ranks, not raw scores, are fused: MIND's inner products
and co-occurrence cosines live on unrelated scales that drift as the model and the counts move.
The weights and k0 were chosen with `python -m model.online.fusion_tune` (docs/results/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import numpy as np

from model.ranking import rank_entries

CHANNELS = ("mind", "cooccur", "next", "popular")


@dataclass(frozen=True)
class FusionConfig:
    """Channel weights and the rank offset k0 (RECALL_FUSION_* in streams.settings)."""

    mind: float = 1.0
    cooccur: float = 2.0
    next: float = 1.0
    popular: float = 0.25
    k0: float = 60.0

    def weight(self, channel: str) -> float:
        return float(getattr(self, channel))


@dataclass(frozen=True)
class Fused:
    """One user's merged list, best first: item ids, fused scores, channel of each item."""

    item_ids: list[int]
    scores: list[float]
    channels: list[str]


def fuse(lists: Mapping[str, Sequence[int]], cfg: FusionConfig, top_k: int) -> Fused:
    """Merge one user's channel lists (channel -> item ids, best first) into its top_k."""
    return fuse_batch([lists], cfg, top_k)[0]


def fuse_batch(batch: Sequence[Mapping[str, Sequence[int]]], cfg: FusionConfig, top_k: int
               ) -> list[Fused]:
    """fuse() for each row of a batch, ranked at once (model.ranking): each item's shares are
    summed in CHANNELS order (the same floats as adding them one by one)."""
    rows, tags, sizes, chosen, parts = [], [], [], [], []
    for row, lists in enumerate(batch):
        for c, channel in enumerate(CHANNELS):
            items = lists.get(channel)
            w = cfg.weight(channel)
            if not items or w <= 0:
                continue
            rows.append(row)
            tags.append(c)
            sizes.append(len(items))
            chosen.append(items)
            parts.append(shares(w, cfg.k0, len(items)))
    if not chosen:
        return [Fused([], [], []) for _ in batch]
    ids = np.fromiter(chain.from_iterable(chosen), dtype=np.int64, count=sum(sizes))
    ranked = rank_entries(len(batch), np.repeat(np.array(rows, dtype=np.int64), sizes), ids,
                          np.concatenate(parts), [()] * len(batch), top_k,
                          tags=np.repeat(np.array(tags, dtype=np.int64), sizes))
    return [Fused(items, scores, [CHANNELS[t] for t in got])
            for items, scores, got in ranked]


@lru_cache(maxsize=64)
def shares(w: float, k0: float, n: int) -> np.ndarray:
    """What ranks 0 .. n-1 of a channel of weight w earn: w / (k0 + r + 1)."""
    out = np.array([w / (k0 + rank + 1) for rank in range(n)])
    out.flags.writeable = False
    return out
