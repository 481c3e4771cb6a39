"""The recall core: histories -> MIND interests (one call) -> one Milvus search (and one more,
deeper, for the queries that seen items left short) -> merged top-k."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from model.ranking import Ranked
from streams.recall.lists import keep_interests, merge, merge_flat


class InterestSource(Protocol):
    """What the recaller needs of model.serving.InterestModel."""

    version: str

    def interests(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]: ...

    def popular(self, n: int) -> list[int]: ...


class VectorIndex(Protocol):
    """What the recaller needs of streams.stores.index.ItemIndex."""

    def search(self, vectors: np.ndarray, top_k: int,
               params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Candidates:
    """One user's merged candidates, best first; `source` is "mind" or "popular" (fallback).

    `interests[i]` is the index (0..K-1) of the interest whose search found `item_ids[i]` with
    its best score (the attribution); -1 for popular fallbacks and other channels.
    `channels[i]` names the channel that recalled it ("mind", "cooccur", "next", "popular"); a fused
    list (source "fused", streams/recall/fused.py)
    also keeps each channel's own list and the data time
    of the newest click its co-occurrence counts hold.
    """

    item_ids: list[int]
    scores: list[float]
    model_version: str
    source: str
    skipped: int = 0  # history items with no vector (neither trained nor streamed)
    interests: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    channel_lists: dict[str, list[int]] = field(default_factory=dict)
    counts_ts: float | None = None


@dataclass(frozen=True)
class Insight:
    """One history seen from inside: its K interest vectors, each interest's own nearest items
    (history items removed, best first) and the merged candidates with their attribution."""

    vectors: np.ndarray  # [K, D]
    per_interest: list[tuple[list[int], list[float]]]
    merged: Candidates


@dataclass(frozen=True)
class _Searched:
    vectors: np.ndarray  # [B, K, D]
    skipped: np.ndarray  # [B]
    usable: np.ndarray  # [B]
    ids: np.ndarray  # [B, K, n]
    scores: np.ndarray  # [B, K, n]
    version: str
    popular: list[int]
    k: int  # candidates asked for
    wide: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # row ->
    # (ids [K, n'], scores [K, n']) searched deeper (Recaller.deepen)

    def lists(self, ranked: Ranked) -> MindLists:
        """These rows' merged lists."""
        return MindLists(ranked, self.usable, self.skipped, self.version, self.popular, self.k)


@dataclass(frozen=True)
class MindLists:
    """A batch's merged MIND lists, flat (`ranked`: items, scores, and each item's interest
    index as its tag); rows without a usable query (`usable` False) hold nothing."""

    ranked: Ranked
    usable: np.ndarray  # [B] users with at least one query
    skipped: np.ndarray  # [B] history items without a vector
    version: str
    popular: list[int]  # the model's popular items (fallbacks), when a row is not usable
    k: int  # candidates asked for

    def fallback(self, excluded: Sequence[int]) -> list[int]:
        """The popular fallback of a row that excludes `excluded`."""
        seen = set(excluded)
        return [i for i in self.popular if i not in seen][:self.k]


@dataclass(frozen=True)
class Plan:
    """The Milvus queries of one batch: which user row and interest slot each query is."""

    queries: np.ndarray  # [Q, D] float32
    rows: np.ndarray  # [Q] int, user row of each query
    slots: np.ndarray  # [Q] int, interest slot of each query
    per_interest: int  # top-k asked of each query
    needed: int = 0  # top-k that leaves top_k unseen items for the longest excluded row


class Recaller:
    """Recall candidates for a batch of users; every face (stream, HTTP, evaluation) calls this.

    `per_interest_extra`: each interest asks Milvus for top_k + this many (None: + the longest
    excluded row, so top_k remain once the user's seen items are removed). `extra_cap`: with
    per_interest_extra None, the first search asks for at most top_k + this many, and only the
    queries whose lists then hold fewer than top_k unseen items are searched again, deep
    enough for their row (`deepen`): the same lists as one deep search, without making every
    query of a batch as deep as its heaviest user's (None: one search). `pruning` /
    `dedup_cosine`: see `keep_interests`. `search_params`: Milvus search parameters (None: the
    index's own).
    """

    def __init__(self, model: InterestSource, index: VectorIndex, top_k: int,
                 per_interest_extra: int | None = None, pruning: str = "none",
                 dedup_cosine: float = 0.99, search_params: dict[str, Any] | None = None,
                 extra_cap: int | None = None):
        self.model = model
        self.index = index
        self.top_k = top_k
        self.per_interest_extra = per_interest_extra
        self.pruning = pruning
        self.dedup_cosine = dedup_cosine
        self.search_params = search_params
        self.extra_cap = extra_cap
        self.deepens = per_interest_extra is None and extra_cap is not None  # `deepen`
        self._lock = threading.Lock()  # one batch at a time through the model and the index

    def plan(self, vectors: np.ndarray, histories: Sequence[Sequence[int]],
             top_k: int | None = None, pruning: str | None = None,
             exclude: Sequence[Sequence[int]] | None = None) -> Plan:
        """The queries for interest vectors [B, K, D] of `histories` (`pruning`: override);
        each asks for top_k + the longest `exclude` row (default: `histories`), at most top_k +
        `extra_cap`, unless `per_interest_extra` is set."""
        k = top_k or self.top_k
        longest = max((len(h) for h in (histories if exclude is None else exclude)), default=0)
        extra = longest if self.per_interest_extra is None else self.per_interest_extra
        if self.deepens:
            extra = min(longest, self.extra_cap or 0)
        lengths = np.array([len(h) for h in histories], dtype=np.int64)  # [B]
        keep = keep_interests(vectors, lengths, pruning or self.pruning,
                              self.dedup_cosine)  # [B, K]
        rows, slots = np.nonzero(keep)  # [Q], [Q]
        return Plan(vectors[rows, slots], rows, slots, k + extra, k + longest)

    def _search(self, histories: Sequence[Sequence[int]], k: int,
                spent: MutableMapping[str, float], pruning: str | None = None,
                exclude: Sequence[Sequence[int]] | None = None) -> _Searched:
        """One model call and one index search of the queries `plan` keeps."""
        with self._lock:
            model = self.model
            started = time.perf_counter()
            vectors, skipped = model.interests(histories)  # [B, K, D], [B]
            searched = time.perf_counter()
            spent["model"] = searched - started
            batch, interests, _ = vectors.shape
            plan = self.plan(vectors, histories, k, pruning, exclude)
            usable = np.zeros(batch, dtype=bool)  # [B] users with at least one query
            usable[plan.rows] = True
            ids = np.full((batch, interests, plan.per_interest), -1, dtype=np.int64)
            scores = np.full((batch, interests, plan.per_interest), -np.inf, dtype=np.float32)
            if len(plan.queries):
                extra_args = () if self.search_params is None else (self.search_params,)
                found_ids, found_scores = self.index.search(
                    plan.queries, plan.per_interest, *extra_args
                )  # [Q, per_interest]
                ids[plan.rows, plan.slots] = found_ids
                scores[plan.rows, plan.slots] = found_scores
            wide = self.deepen(plan, ids, scores, histories if exclude is None else exclude, k) \
                if self.deepens else {}
            spent["search"] = time.perf_counter() - searched
            deep = max(plan.per_interest, plan.needed)  # top_k popular items after the drop
            popular = model.popular(k + deep) if not usable.all() else []
            return _Searched(vectors, np.asarray(skipped), usable, ids, scores, model.version,
                             popular, k, wide)

    def deepen(self, plan: Plan, ids: np.ndarray, scores: np.ndarray,
               exclude: Sequence[Sequence[int]], k: int
               ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Search again, with top_k + the row's excluded count, each query whose list ids [B, K,
        n] holds fewer than k items outside its row of `exclude` (one index call for all of
        them): row -> (ids [K, n'], scores [K, n']), the first lists widened with -1 / -inf and
        those queries' deeper lists. Then each interest has its top k unseen items, and the
        merge equals that of one search with top_k + the longest row for every query."""
        n = plan.per_interest
        short = []
        for q, (row, slot) in enumerate(zip(plan.rows, plan.slots, strict=True)):
            if len(exclude[row]) <= n - k:  # enough asked already
                continue
            got = ids[row, slot][ids[row, slot] >= 0]
            if len(got) == n and len(got) - np.isin(got, exclude[row]).sum() < k:
                short.append(q)  # (a shorter list holds every item the index has)
        if not short:
            return {}
        rows = sorted({int(r) for r in plan.rows[short]})
        deep = k + max(len(exclude[r]) for r in rows)
        extra_args = () if self.search_params is None else (self.search_params,)
        found_ids, found_scores = self.index.search(plan.queries[short], deep, *extra_args)
        wide = {}
        for row in rows:
            wide_ids = np.full((ids.shape[1], deep), -1, dtype=np.int64)  # [K, n']
            wide_scores = np.full((ids.shape[1], deep), -np.inf, dtype=np.float32)  # [K, n']
            wide_ids[:, :n], wide_scores[:, :n] = ids[row], scores[row]
            wide[row] = (wide_ids, wide_scores)
        for j, q in enumerate(short):
            wide_ids, wide_scores = wide[int(plan.rows[q])]
            wide_ids[plan.slots[q]] = found_ids[j]
            wide_scores[plan.slots[q]] = found_scores[j]
        return wide

    def recall(
        self, histories: Sequence[Sequence[int]], top_k: int | None = None,
        timings: MutableMapping[str, float] | None = None,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> list[Candidates]:
        """One model call and one index search for the whole batch; one Candidates per history.

        `exclude`, one row per history, lists the items never returned (the user's seen
        items); None: the history itself. `timings`, when given, receives the seconds spent
        in "model", "search" and "merge".
        """
        k = top_k or self.top_k
        if not histories:
            return []
        if exclude is not None and len(exclude) != len(histories):
            raise ValueError(f"exclude has {len(exclude)} rows for {len(histories)} histories")
        drop = histories if exclude is None else exclude
        spent = timings if timings is not None else {}
        found = self.recall_flat(histories, k, spent, drop)
        merging = time.perf_counter()
        lists = found.ranked.rows()
        out = [self._candidates(found, row, seen, merged)
               for row, (seen, merged) in enumerate(zip(drop, lists, strict=True))]
        spent["merge"] += time.perf_counter() - merging
        return out

    def recall_flat(self, histories: Sequence[Sequence[int]], k: int,
                    spent: MutableMapping[str, float], drop: Sequence[Sequence[int]]
                    ) -> MindLists:
        """recall's merged lists left flat, for a batch of at least one history, each row
        without its `drop` items ("model", "search" and "merge" seconds into `spent`). A row
        without a usable query holds nothing; `recall` gives it the popular fallback."""
        found = self._search(histories, k, spent, exclude=drop)
        merging = time.perf_counter()
        ranked = merge_flat(found.ids, found.scores, drop, k)
        if found.wide:  # searched deeper
            ranked = ranked.with_rows({
                row: merge_flat(wide_ids[None], wide_scores[None], [drop[row]], k)
                for row, (wide_ids, wide_scores) in found.wide.items()})
        spent["merge"] = time.perf_counter() - merging
        return found.lists(ranked)

    def _candidates(self, found: MindLists, row: int, excluded: Sequence[int],
                    merged: tuple[list[int], list[float], list[int]]) -> Candidates:
        skipped = int(found.skipped[row])
        if found.usable[row]:
            items, scores, interests = merged
            return Candidates(items, scores, found.version, "mind", skipped, interests,
                              ["mind"] * len(items))
        items = found.fallback(excluded)
        return Candidates(items, [0.0] * len(items), found.version, "popular", skipped,
                          [-1] * len(items), ["popular"] * len(items))

    def inspect(self, history: Sequence[int], top_k: int | None = None,
                exclude: Sequence[int] | None = None) -> Insight:
        """The same recall for one history, with each interest's vector and own nearest items;
        `exclude`: the items never returned, as one row of `recall`'s (None: the history)."""
        k = top_k or self.top_k
        drop = [history if exclude is None else exclude]
        found = self._search([history], k, {}, pruning="none",  # every interest, for display
                             exclude=drop)
        kept = self.plan(found.vectors, [history], k, exclude=drop).slots  # those recall searches
        ids, scores = found.wide[0] if found.wide else (found.ids[0], found.scores[0])  # [K, n]
        kept_ids, kept_scores = np.full_like(ids, -1)[None], np.full_like(scores, -np.inf)[None]
        kept_ids[0, kept], kept_scores[0, kept] = ids[kept], scores[kept]
        flat = merge_flat(kept_ids, kept_scores, drop, k)
        per_interest = []
        for i in range(ids.shape[0]):  # each interest's list alone: same exclusions
            items, values, _ = merge(ids[None, [i]], scores[None, [i]], drop, k)[0]
            per_interest.append((items, values))
        return Insight(found.vectors[0], per_interest,
                       self._candidates(found.lists(flat), 0, drop[0], flat.rows()[0]))
