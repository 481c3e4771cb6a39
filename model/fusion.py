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
    score: dict[int, float] = {}
    best: dict[int, float] = {}  # item -> its largest share so far
    source: dict[int, str] = {}  # item -> the channel that gave it (an earlier one on ties)
    for channel in CHANNELS:
        items = lists.get(channel)
        w = cfg.weight(channel)
        if not items or w <= 0:
            continue
        for item, part in zip(items, shares(w, cfg.k0, len(items)), strict=True):
            had = score.get(item)
            if had is None:  # 0.0 + part is part: the same float as summing from 0
                score[item] = best[item] = part
                source[item] = channel
            else:
                score[item] = had + part
                if part > best[item]:
                    best[item] = part
                    source[item] = channel
    ranked = sorted(score)  # by id, then (stable) by score: ties keep the smaller id first
    ranked.sort(key=score.__getitem__, reverse=True)
    del ranked[top_k:]
    return Fused(ranked, [score[i] for i in ranked], [source[i] for i in ranked])


@lru_cache(maxsize=64)
def shares(w: float, k0: float, n: int) -> tuple[float, ...]:
    """What ranks 0 .. n-1 of a channel of weight w earn: w / (k0 + r + 1)."""
    return tuple(w / (k0 + rank + 1) for rank in range(n))
