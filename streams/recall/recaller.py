"""The recall core: histories -> MIND interests (one call) -> one Milvus search -> merged top-k."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


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


def merge(
    ids: np.ndarray, scores: np.ndarray, histories: Sequence[Sequence[int]], top_k: int
) -> list[tuple[list[int], list[float], list[int]]]:
    """Merge each user's K result lists at once: best score per item, no padding and none of
    the items in the user's row of `histories` (the history, or every item seen).

    ids, scores: [B, K, k] -> per user (items, scores, interests), best first, at most top_k;
    ties by id; `interests` holds the index of the list each item's best score came from.
    """
    batch, _, per_list = ids.shape
    origin = np.arange(ids[0].size)[None, :] // per_list  # [1, N] interest of each column
    flat_ids = ids.reshape(batch, -1)  # [B, N]
    flat_scores = scores.reshape(batch, -1).astype(np.float32)  # [B, N]
    longest = max((len(h) for h in histories), default=0)
    if longest <= 32:  # short rows (the last clicks): one broadcast compare
        seen = np.full((batch, max(longest, 1)), -2, dtype=np.int64)  # [B, H] padded rows
        for row, history in enumerate(histories):
            seen[row, : len(history)] = history
        hit = (flat_ids[:, :, None] == seen[:, None, :]).any(axis=2)  # [B, N]
    else:  # long rows (every item a user has seen): a sorted lookup per row
        hit = np.stack([np.isin(flat_ids[row], np.asarray(history, dtype=np.int64))
                        for row, history in enumerate(histories)])  # [B, N]
    drop = (flat_ids < 0) | hit  # [B, N]
    flat_scores = np.where(drop, -np.inf, flat_scores)  # [B, N]
    by_id = np.lexsort((-flat_scores, flat_ids), axis=-1)  # [B, N] id, then best score first
    sorted_ids = np.take_along_axis(flat_ids, by_id, axis=1)  # [B, N]
    sorted_scores = np.take_along_axis(flat_scores, by_id, axis=1)  # [B, N]
    sorted_origin = np.take_along_axis(np.broadcast_to(origin, by_id.shape), by_id, axis=1)
    repeat = np.zeros_like(drop)  # [B, N]
    repeat[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    sorted_scores[repeat] = -np.inf  # keep only each item's best score
    best = np.argsort(-sorted_scores, axis=1, kind="stable")[:, :top_k]  # [B, k]
    top_ids = np.take_along_axis(sorted_ids, best, axis=1)  # [B, k]
    top_scores = np.take_along_axis(sorted_scores, best, axis=1)  # [B, k]
    top_origin = np.take_along_axis(sorted_origin, best, axis=1)  # [B, k]
    out = []
    for row in range(batch):
        valid = np.isfinite(top_scores[row])
        out.append((top_ids[row][valid].tolist(), top_scores[row][valid].astype(float).tolist(),
                    top_origin[row][valid].tolist()))
    return out


@dataclass(frozen=True)
class Plan:
    """The Milvus queries of one batch: which user row and interest slot each query is."""

    queries: np.ndarray  # [Q, D] float32
    rows: np.ndarray  # [Q] int, user row of each query
    slots: np.ndarray  # [Q] int, interest slot of each query
    per_interest: int  # top-k asked of each query


def keep_interests(vectors: np.ndarray, lengths: np.ndarray, pruning: str,
                   dedup_cosine: float) -> np.ndarray:
    """[B, K] bool: the interests searched for. All non-zero ones without pruning.

    "log2": the MIND paper's dynamic number of interests, K_u = max(1, min(K, floor(log2
    |history|))), the K_u longest capsules. "dedup": a capsule whose cosine to a longer kept
    one is >= dedup_cosine is dropped (short histories give near-identical capsules).
    """
    batch, interests, _ = vectors.shape
    norms = np.linalg.norm(vectors, axis=2)  # [B, K]
    keep = norms > 0  # [B, K]
    if pruning == "none" or interests == 1:
        return keep
    order = np.argsort(-norms, axis=1, kind="stable")  # [B, K] longest first
    if pruning == "log2":
        k_u = np.clip(np.floor(np.log2(np.maximum(lengths, 1))), 1, interests)  # [B]
        rank = np.argsort(order, axis=1)  # [B, K] rank of each capsule by length
        return keep & (rank < k_u[:, None])
    unit = vectors / np.maximum(norms, 1e-12)[:, :, None]  # [B, K, D]
    cos = np.einsum("bkd,bjd->bkj", unit, unit)  # [B, K, K]
    for step in range(1, interests):
        cap = order[:, step]  # [B] this rank's capsule
        earlier = order[:, :step]  # [B, step]
        near = cos[np.arange(batch)[:, None], cap[:, None], earlier]  # [B, step]
        alive = np.take_along_axis(keep, earlier, axis=1)  # [B, step]
        dup = (near >= dedup_cosine) & alive  # [B, step]
        keep[np.arange(batch), cap] &= ~dup.any(axis=1)
    return keep


class Recaller:
    """Recall candidates for a batch of users; every face (stream, HTTP, evaluation) calls this.

    `per_interest_extra`: each interest asks Milvus for top_k + this many (None: + the longest
    history, so top_k remain once history items are removed). `pruning` / `dedup_cosine`:
    see `keep_interests`. `search_params`: Milvus search parameters (None: the index's own).
    """

    def __init__(self, model: InterestSource, index: VectorIndex, top_k: int,
                 per_interest_extra: int | None = None, pruning: str = "none",
                 dedup_cosine: float = 0.99, search_params: dict[str, Any] | None = None):
        self.model = model
        self.index = index
        self.top_k = top_k
        self.per_interest_extra = per_interest_extra
        self.pruning = pruning
        self.dedup_cosine = dedup_cosine
        self.search_params = search_params
        self._lock = threading.Lock()  # one batch at a time through the model and the index

    def plan(self, vectors: np.ndarray, histories: Sequence[Sequence[int]],
             top_k: int | None = None, pruning: str | None = None,
             exclude: Sequence[Sequence[int]] | None = None) -> Plan:
        """The queries for interest vectors [B, K, D] of `histories` (`pruning`: override);
        each asks for top_k + the longest `exclude` row (default: `histories`) unless
        `per_interest_extra` is set."""
        k = top_k or self.top_k
        longest = max((len(h) for h in (histories if exclude is None else exclude)), default=0)
        extra = longest if self.per_interest_extra is None else self.per_interest_extra
        lengths = np.array([len(h) for h in histories], dtype=np.int64)  # [B]
        keep = keep_interests(vectors, lengths, pruning or self.pruning,
                              self.dedup_cosine)  # [B, K]
        rows, slots = np.nonzero(keep)  # [Q], [Q]
        return Plan(vectors[rows, slots], rows, slots, k + extra)

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
            spent["search"] = time.perf_counter() - searched
            popular = model.popular(k + plan.per_interest) if not usable.all() else []
            return _Searched(vectors, np.asarray(skipped), usable, ids, scores, model.version,
                             popular, k)

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
        found = self._search(histories, k, spent, exclude=drop)
        merging = time.perf_counter()
        out = [self._candidates(found, row, seen, merged)
               for row, (seen, merged)
               in enumerate(zip(drop, merge(found.ids, found.scores, drop, k), strict=True))]
        spent["merge"] = time.perf_counter() - merging
        return out

    def _candidates(self, found: _Searched, row: int, excluded: Sequence[int],
                    merged: tuple[list[int], list[float], list[int]]) -> Candidates:
        skipped = int(found.skipped[row])
        if found.usable[row]:
            items, scores, interests = merged
            return Candidates(items, scores, found.version, "mind", skipped, interests,
                              ["mind"] * len(items))
        seen = set(excluded)
        items = [i for i in found.popular if i not in seen][:found.k]
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
        kept_ids, kept_scores = np.full_like(found.ids, -1), np.full_like(found.scores, -np.inf)
        kept_ids[0, kept], kept_scores[0, kept] = found.ids[0, kept], found.scores[0, kept]
        merged = merge(kept_ids, kept_scores, drop, k)[0]
        per_interest = []
        for i in range(found.ids.shape[1]):  # each interest's list alone: same exclusions
            items, scores, _ = merge(found.ids[:, [i]], found.scores[:, [i]], drop, k)[0]
            per_interest.append((items, scores))
        return Insight(found.vectors[0], per_interest,
                       self._candidates(found, 0, drop[0], merged))
