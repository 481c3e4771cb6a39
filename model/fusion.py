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
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

import numpy as np

from model.ranking import Ranked, rank_flat

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
    """One user's merged list, best first: item ids, fused scores, channel of each item, and
    each item's note (the note its largest share carried: MIND's interest index; -1: none)."""

    item_ids: list[int]
    scores: list[float]
    channels: list[str]
    notes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Ragged:
    """One channel's lists for a whole batch, flat: row r's list (best first) is the r-th run
    of `sizes[r]` ids; `notes` (optional) gives an int per id, kept by the item it attributes."""

    ids: np.ndarray
    sizes: np.ndarray
    notes: np.ndarray | None = None

    @classmethod
    def of(cls, rows: Sequence[Sequence[int]], notes: Sequence[Sequence[int]] | None = None
           ) -> Ragged:
        sizes = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        total = int(sizes.sum())
        ids = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=total)
        got = None if notes is None else \
            np.fromiter(chain.from_iterable(notes), dtype=np.int64, count=total)
        return cls(ids, sizes, got)

    @classmethod
    def of_ranked(cls, ranked: Ranked, notes: bool = False) -> Ragged:
        """A flat ranking's rows (model.ranking.Ranked), best first, without their padding;
        `notes`: its tags are the notes."""
        return cls(ranked.kept(), ranked.counts, ranked.kept(ranked.tags) if notes else None)

    def split(self) -> list[list[int]]:
        """Each row's list of ids."""
        flat, ends = self.ids.tolist(), np.cumsum(self.sizes).tolist()
        return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def fuse(lists: Mapping[str, Sequence[int]], cfg: FusionConfig, top_k: int) -> Fused:
    """Merge one user's channel lists (channel -> item ids, best first) into its top_k."""
    return fuse_batch([lists], cfg, top_k)[0]


def fuse_batch(batch: Sequence[Mapping[str, Sequence[int]]], cfg: FusionConfig, top_k: int
               ) -> list[Fused]:
    """fuse() for each row of a batch (channel -> item ids per row)."""
    return fuse_ragged(len(batch), {channel: Ragged.of([lists.get(channel) or () for lists in
                                                        batch]) for channel in CHANNELS}, cfg,
                       top_k)


def fuse_ragged(n_rows: int, lists: Mapping[str, Ragged], cfg: FusionConfig, top_k: int
                ) -> list[Fused]:
    """fuse() for each of `n_rows` rows, given each channel's lists as one Ragged, ranked at
    once (model.ranking): each item's shares are summed in CHANNELS order (the same floats as
    adding them one by one)."""
    rows, ids, values, tags = [], [], [], []
    for c, channel in enumerate(CHANNELS):
        got, w = lists.get(channel), cfg.weight(channel)
        if got is None or w <= 0 or not len(got.ids):
            continue
        starts = np.cumsum(got.sizes) - got.sizes
        rank = np.arange(len(got.ids)) - np.repeat(starts, got.sizes)
        rows.append(np.repeat(np.arange(n_rows, dtype=np.int64), got.sizes))
        ids.append(got.ids)
        values.append(shares(w, cfg.k0, int(got.sizes.max()))[rank])
        notes = got.notes if got.notes is not None else np.full(len(got.ids), -1, np.int64)
        tags.append(c + len(CHANNELS) * (notes + 1))  # tag: channel, then note + 1
    if not ids:
        return [Fused([], [], [], []) for _ in range(n_rows)]
    ranked = rank_flat(n_rows, np.concatenate(rows), np.concatenate(ids),
                       np.concatenate(values), [()] * n_rows, top_k,
                       tags=np.concatenate(tags))  # channel-major: rank_flat gathers the rows
    items, scores = ranked.items.tolist(), ranked.scores.tolist()
    names = _NAMES[ranked.tags % len(CHANNELS)].tolist()
    notes = (ranked.tags // len(CHANNELS) - 1).tolist()
    return [Fused(items[a:b], scores[a:b], names[a:b], notes[a:b]) for a, b in ranked.spans()]


_NAMES = np.array(CHANNELS, dtype=object)


@lru_cache(maxsize=64)
def shares(w: float, k0: float, n: int) -> np.ndarray:
    """What ranks 0 .. n-1 of a channel of weight w earn: w / (k0 + r + 1)."""
    out = np.array([w / (k0 + rank + 1) for rank in range(n)])
    out.flags.writeable = False
    return out
