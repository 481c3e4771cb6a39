"""One merged candidate list from several channels (MIND, co-occurrence, popularity).

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

CHANNELS = ("mind", "cooccur", "popular")


@dataclass(frozen=True)
class FusionConfig:
    """Channel weights and the rank offset k0 (RECALL_FUSION_* in streams.settings)."""

    mind: float = 1.0
    cooccur: float = 1.0
    popular: float = 0.5
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
    share: dict[int, tuple[float, int]] = {}  # item -> (largest share, -channel order)
    for order, channel in enumerate(CHANNELS):
        items = lists.get(channel)
        w = cfg.weight(channel)
        if not items or w <= 0:
            continue
        for rank, item in enumerate(items):
            part = w / (cfg.k0 + rank + 1)
            score[item] = score.get(item, 0.0) + part
            if (part, -order) > share.get(item, (0.0, 1)):
                share[item] = (part, -order)
    ranked = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    return Fused([i for i, _ in ranked], [s for _, s in ranked],
                 [CHANNELS[-share[i][1]] for i, _ in ranked])
