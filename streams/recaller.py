"""The recall core: histories -> MIND interests (one call) -> one Milvus search -> merged top-k."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class InterestSource(Protocol):
    """What the recaller needs of model.serving.InterestModel."""

    version: str

    def interests(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]: ...

    def popular(self, n: int) -> list[int]: ...


class VectorIndex(Protocol):
    """What the recaller needs of streams.index.ItemIndex."""

    def search(self, vectors: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Candidates:
    """One user's merged candidates, best first; `source` is "mind" or "popular" (fallback).

    `interests[i]` is the index (0..K-1) of the interest whose search found `item_ids[i]` with
    its best score (the attribution); -1 for popular fallbacks.
    """

    item_ids: list[int]
    scores: list[float]
    model_version: str
    source: str
    skipped: int = 0  # history items with no vector (neither trained nor streamed)
    interests: list[int] = field(default_factory=list)


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
    """Merge each user's K result lists at once: best score per item, no padding or history.

    ids, scores: [B, K, k] -> per user (items, scores, interests), best first, at most top_k;
    ties by id; `interests` holds the index of the list each item's best score came from.
    """
    batch, _, per_list = ids.shape
    origin = np.arange(ids[0].size)[None, :] // per_list  # [1, N] interest of each column
    flat_ids = ids.reshape(batch, -1)  # [B, N]
    flat_scores = scores.reshape(batch, -1).astype(np.float32)  # [B, N]
    longest = max((len(h) for h in histories), default=0)
    seen = np.full((batch, max(longest, 1)), -2, dtype=np.int64)  # [B, H] padded histories
    for row, history in enumerate(histories):
        seen[row, : len(history)] = history
    drop = (flat_ids < 0) | (flat_ids[:, :, None] == seen[:, None, :]).any(axis=2)  # [B, N]
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


class Recaller:
    """Recall candidates for a batch of users; every face (stream, HTTP, evaluation) calls this."""

    def __init__(self, model: InterestSource, index: VectorIndex, top_k: int):
        self.model = model
        self.index = index
        self.top_k = top_k
        self._lock = threading.Lock()  # one batch at a time through the model and the index

    def _search(self, histories: Sequence[Sequence[int]], k: int,
                spent: MutableMapping[str, float]) -> _Searched:
        """One model call and one index search; each interest asks for k + |longest history|."""
        with self._lock:
            model = self.model
            started = time.perf_counter()
            vectors, skipped = model.interests(histories)  # [B, K, D], [B]
            searched = time.perf_counter()
            spent["model"] = searched - started
            batch, interests, dim = vectors.shape
            usable = np.abs(vectors).reshape(batch, -1).sum(axis=1) > 0  # [B]
            # Ask each interest for k + |history| so k remain after history items are removed.
            per_interest = k + max((len(h) for h in histories), default=0)
            ids = np.full((batch, interests, per_interest), -1, dtype=np.int64)
            scores = np.full((batch, interests, per_interest), -np.inf, dtype=np.float32)
            if usable.any():
                found_ids, found_scores = self.index.search(
                    vectors[usable].reshape(-1, dim), per_interest
                )  # [U * K, per_interest]
                ids[usable] = found_ids.reshape(-1, interests, per_interest)
                scores[usable] = found_scores.reshape(-1, interests, per_interest)
            spent["search"] = time.perf_counter() - searched
            popular = model.popular(k + per_interest) if not usable.all() else []
            return _Searched(vectors, np.asarray(skipped), usable, ids, scores, model.version,
                             popular, k)

    def recall(
        self, histories: Sequence[Sequence[int]], top_k: int | None = None,
        timings: MutableMapping[str, float] | None = None,
    ) -> list[Candidates]:
        """One model call and one index search for the whole batch; one Candidates per history.

        `timings`, when given, receives the seconds spent in "model", "search" and "merge".
        """
        k = top_k or self.top_k
        if not histories:
            return []
        spent = timings if timings is not None else {}
        found = self._search(histories, k, spent)
        merging = time.perf_counter()
        out = [self._candidates(found, row, history, merged)
               for row, (history, merged)
               in enumerate(zip(histories, merge(found.ids, found.scores, histories, k),
                                strict=True))]
        spent["merge"] = time.perf_counter() - merging
        return out

    def _candidates(self, found: _Searched, row: int, history: Sequence[int],
                    merged: tuple[list[int], list[float], list[int]]) -> Candidates:
        skipped = int(found.skipped[row])
        if found.usable[row]:
            items, scores, interests = merged
            return Candidates(items, scores, found.version, "mind", skipped, interests)
        seen = set(history)
        items = [i for i in found.popular if i not in seen][:found.k]
        return Candidates(items, [0.0] * len(items), found.version, "popular", skipped,
                          [-1] * len(items))

    def inspect(self, history: Sequence[int], top_k: int | None = None) -> Insight:
        """The same recall for one history, with each interest's vector and own nearest items."""
        k = top_k or self.top_k
        found = self._search([history], k, {})
        merged = merge(found.ids, found.scores, [history], k)[0]
        per_interest = []
        for i in range(found.ids.shape[1]):  # each interest's list alone: same exclusions
            items, scores, _ = merge(found.ids[:, [i]], found.scores[:, [i]], [history], k)[0]
            per_interest.append((items, scores))
        return Insight(found.vectors[0], per_interest,
                       self._candidates(found, 0, history, merged))
