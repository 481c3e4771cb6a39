"""Recall from several channels merged into one list: MIND (streams/recall/recaller.py), live
co-occurrence, transitions (`next`) and live popularity (Redis,
streams/recall/cooccur_reader.py), fused by model/fusion.py.

Every face (stream, HTTP, live page) calls `recall`; each candidate keeps its channel, and its
interest index when MIND recalled it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from model.cooccur import CooccurConfig
from model.fusion import CHANNELS, FusionConfig, Ragged, fuse_ragged
from model.ranking import Excluded
from streams.recall.cooccur_reader import CooccurLists
from streams.recall.recaller import Candidates, Insight, InterestSource, MindLists, Recaller


class CountsSource(Protocol):
    """What the channels need of streams.recall.cooccur_reader.CooccurReader."""

    cfg: CooccurConfig

    def read(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
             top_k: int, popular: int = 0) -> CooccurLists: ...


def parse_channels(text: str) -> tuple[str, ...]:
    """"mind,cooccur,next,popular" -> the channels, checked, in CHANNELS order."""
    names = {c.strip() for c in text.split(",") if c.strip()}
    unknown = names - set(CHANNELS)
    if unknown or not names:
        raise ValueError(f"channels must be a comma list of {CHANNELS}, got {text!r}")
    return tuple(c for c in CHANNELS if c in names)


class FusedRecaller:
    """The Recaller's interface over several channels.

    `cooccur`: the counts reader (None: no co-occurrence channel; popularity then comes from
    the model's own list). `list_len`: how long each channel's list is before fusion (None:
    top_k). `count`: run before each read, in the reader's thread (the history store's
    `count_due` when its append only queues the clicks: a batch's clicks are counted beside
    MIND's search, before its lists are read). `channel_lists`: each Candidates keeps each
    channel's own list (False: an empty dict; building them costs the batch step ~1 ms).
    """

    def __init__(self, mind: Recaller, channels: Sequence[str], fusion: FusionConfig,
                 cooccur: CountsSource | None = None, list_len: int | None = None,
                 count: Callable[[], None] | None = None, channel_lists: bool = True) -> None:
        self.mind = mind
        self.channels = tuple(channels)
        self.fusion = fusion
        self.cooccur = cooccur if {"cooccur", "next", "popular"} & set(self.channels) else None
        self.list_len = list_len
        self.count = count
        self.channel_lists = channel_lists
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cooccur-read") \
            if self.cooccur is not None else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def top_k(self) -> int:
        return self.mind.top_k

    @property
    def model(self) -> InterestSource:
        """The MIND channel's model (hot reload swaps its weights in place)."""
        return self.mind.model

    def recall(self, histories: Sequence[Sequence[int]], top_k: int | None = None,
               timings: MutableMapping[str, float] | None = None,
               exclude: Sequence[Sequence[int]] | None = None) -> list[Candidates]:
        """One Candidates per history: each channel's list, fused; `exclude` as Recaller's."""
        k = top_k or self.top_k
        if not histories:
            return []
        drop = histories if exclude is None else exclude
        spent = timings if timings is not None else {}
        n = max(self.list_len or k, k)
        longest = max((len(d) for d in drop), default=0)
        reading = None  # Redis scores the co-occurrence lists while MIND searches Milvus
        if self.cooccur is not None and self._pool is not None:
            reading = self._pool.submit(
                self._count_and_read, histories, drop,
                n if {"cooccur", "next"} & set(self.channels) else 0,
                n + longest if "popular" in self.channels else 0)
        mind = self.mind.recall_flat(histories, n, spent, drop) if "mind" in self.channels \
            else None
        started = time.perf_counter()
        counts = reading.result() if reading is not None else None
        merging = time.perf_counter()
        spent["cooccur"] = merging - started  # what the read added after MIND
        rows = len(histories)
        lists: dict[str, Ragged] = {}
        if counts is not None and "cooccur" in self.channels:
            lists["cooccur"] = Ragged.of_ranked(counts.ranked)
        if counts is not None and counts.next_ranked is not None and "next" in self.channels:
            lists["next"] = Ragged.of_ranked(counts.next_ranked)
        if "popular" in self.channels:
            lists["popular"] = unseen(self._popular(counts, n + longest), Excluded(drop), n)
        # each channel's own list per row, in the order records show them (channel_lists)
        shown: list[str] = [c for c in ("cooccur", "next", "popular") if c in self.channels] \
            if self.channel_lists else []
        own: dict[str, list[list[int]]] = {
            c: lists[c].split() if c in lists else [[] for _ in range(rows)] for c in shown}
        # a row MIND has no query for gets MIND's popular fallback, unless the popular channel
        # is on and has it already
        used = (mind.usable | ("popular" not in self.channels)) if mind is not None \
            else np.zeros(rows, dtype=bool)
        if mind is not None:
            lists["mind"] = self._mind_lists(mind, used, drop)
            if self.channel_lists:
                own["mind"] = lists["mind"].split()
        fused = fuse_ragged(rows, lists, self.fusion, k)
        version = mind.version if mind is not None else self.mind.model.version
        counts_ts = counts.counts_ts if counts else None
        out = []
        for row, one in enumerate(fused):
            channel_lists: dict[str, list[int]] = {c: own[c][row] for c in shown}
            if used[row] and "mind" in own:
                channel_lists["mind"] = own["mind"][row]
            out.append(Candidates(
                one.item_ids, one.scores, version,
                "popular" if mind is not None and not mind.usable[row] else "fused",
                int(mind.skipped[row]) if mind is not None else 0, one.notes, one.channels,
                channel_lists, counts_ts))
        spent["merge"] = spent.get("merge", 0.0) + time.perf_counter() - merging
        return out

    @staticmethod
    def _mind_lists(mind: MindLists, used: np.ndarray, drop: Sequence[Sequence[int]]
                    ) -> Ragged:
        """MIND's channel: each row's merged list with its interests as notes; a row without a
        query holds the popular fallback where `used`, nothing elsewhere."""
        if mind.usable.all() or not used[~mind.usable].any():
            return Ragged.of_ranked(mind.ranked, notes=True)
        rows = mind.ranked.rows()  # a fallback to insert: row by row
        fell = [mind.fallback(drop[row]) if use and not usable else []
                for row, (use, usable) in enumerate(zip(used, mind.usable, strict=True))]
        return Ragged.of([items or extra for (items, _, _), extra in zip(rows, fell, strict=True)],
                         [notes or [-1] * len(extra)
                          for (_, _, notes), extra in zip(rows, fell, strict=True)])

    def _count_and_read(self, histories: Sequence[Sequence[int]],
                        exclude: Sequence[Iterable[int]], top_k: int, popular: int
                        ) -> CooccurLists:
        assert self.cooccur is not None
        if self.count is not None:
            self.count()
        return self.cooccur.read(histories, exclude, top_k, popular)

    def _popular(self, counts: CooccurLists | None, n: int) -> list[int]:
        if "popular" not in self.channels:
            return []
        if counts is not None and counts.popular:
            return counts.popular
        return self.mind.model.popular(n)

    def inspect(self, history: Sequence[int], top_k: int | None = None,
                exclude: Sequence[int] | None = None) -> Insight:
        """MIND's interests and their own lists (Recaller.inspect), with the fused list."""
        seen = exclude if exclude is not None else history
        inner = self.mind.inspect(history, top_k, exclude)
        merged = self.recall([history], top_k, exclude=[list(seen)])[0]
        return Insight(inner.vectors, inner.per_interest, merged)


def unseen(popular: Sequence[int], drop: Excluded, n: int) -> Ragged:
    """Each row's first n items of `popular` that are not among its `drop` items (numpy: one
    mask for the batch instead of a set and a filter per user)."""
    rows = len(drop.bounds) - 1
    pop = np.asarray(popular, dtype=np.int64)
    if not len(pop) or n <= 0:
        return Ragged(np.zeros(0, dtype=np.int64), np.zeros(rows, dtype=np.int64))
    uniq, code = np.unique(pop, return_inverse=True)
    at = np.clip(np.searchsorted(uniq, drop.items), 0, len(uniq) - 1)
    hit = uniq[at] == drop.items
    owner = np.repeat(np.arange(rows, dtype=np.int64), np.diff(drop.bounds))
    gone = np.zeros((rows, len(uniq)), dtype=bool)
    gone[owner[hit], at[hit]] = True
    keep = ~gone[:, code]  # [rows, len(popular)]
    keep &= np.cumsum(keep, axis=1) <= n
    return Ragged(np.broadcast_to(pop, keep.shape)[keep], keep.sum(axis=1))
