"""Recall from several channels merged into one list: MIND (streams/recall/recaller.py), live
co-occurrence, transitions (`next`) and live popularity (Redis,
streams/recall/cooccur_reader.py), fused by model/fusion.py.

Every face (stream, HTTP, live page) calls `recall`; each candidate keeps its channel, and its
interest index when MIND recalled it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Protocol

from model.cooccur import CooccurConfig
from model.fusion import CHANNELS, Fused, FusionConfig, fuse_batch
from streams.recall.cooccur_reader import CooccurLists
from streams.recall.recaller import Candidates, Insight, InterestSource, Recaller


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
    MIND's search, before its lists are read).
    """

    def __init__(self, mind: Recaller, channels: Sequence[str], fusion: FusionConfig,
                 cooccur: CountsSource | None = None, list_len: int | None = None,
                 count: Callable[[], None] | None = None) -> None:
        self.mind = mind
        self.channels = tuple(channels)
        self.fusion = fusion
        self.cooccur = cooccur if {"cooccur", "next", "popular"} & set(self.channels) else None
        self.list_len = list_len
        self.count = count
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
        mind = self.mind.recall(histories, n, spent, exclude) if "mind" in self.channels \
            else None
        started = time.perf_counter()
        counts = reading.result() if reading is not None else None
        co_lists = [ids for ids, _ in counts.lists] if counts is not None \
            and "cooccur" in self.channels else [[] for _ in histories]
        next_lists = [ids for ids, _ in counts.next_lists] if counts is not None \
            and counts.next_lists and "next" in self.channels else [[] for _ in histories]
        popular = self._popular(counts, n + longest)
        merging = time.perf_counter()
        spent["cooccur"] = merging - started  # what the read added after MIND
        batch = []
        for row, seen in enumerate(drop):
            gone = set(seen)
            lists = {"cooccur": co_lists[row], "next": next_lists[row],
                     "popular": list(islice((i for i in popular if i not in gone), n))
                     if "popular" in self.channels else []}
            found = mind[row] if mind is not None else None
            if found is not None and (found.source == "mind" or "popular" not in self.channels):
                lists["mind"] = found.item_ids
            batch.append(lists)
        fused = fuse_batch(batch, self.fusion, k)
        out = [self._candidates(lists, one, mind[row] if mind is not None else None, counts)
               for row, (lists, one) in enumerate(zip(batch, fused, strict=True))]
        spent["merge"] = spent.get("merge", 0.0) + time.perf_counter() - merging
        return out

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

    def _candidates(self, lists: dict[str, list[int]], fused: Fused, mind: Candidates | None,
                    counts: CooccurLists | None) -> Candidates:
        interest = dict(zip(mind.item_ids, mind.interests, strict=True)) if mind else {}
        interests = [interest.get(i, -1) if c == "mind" else -1
                     for i, c in zip(fused.item_ids, fused.channels, strict=True)]
        version = mind.model_version if mind else self.mind.model.version
        source = "popular" if mind is not None and mind.source == "popular" else "fused"
        return Candidates(fused.item_ids, fused.scores, version, source,
                          mind.skipped if mind else 0, interests, fused.channels,
                          {c: items for c, items in lists.items() if c in self.channels},
                          counts.counts_ts if counts else None)

    def inspect(self, history: Sequence[int], top_k: int | None = None,
                exclude: Sequence[int] | None = None) -> Insight:
        """MIND's interests and their own lists (Recaller.inspect), with the fused list."""
        seen = exclude if exclude is not None else history
        inner = self.mind.inspect(history, top_k, exclude)
        merged = self.recall([history], top_k, exclude=[list(seen)])[0]
        return Insight(inner.vectors, inner.per_interest, merged)
