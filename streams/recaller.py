"""The recall core: histories -> MIND interests (one call) -> one Milvus search -> merged top-k."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
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
    """One user's merged candidates, best first; `source` is "mind" or "popular" (fallback)."""

    item_ids: list[int]
    scores: list[float]
    model_version: str
    source: str
    skipped: int = 0  # history items with no vector (neither trained nor streamed)


def merge(
    ids: np.ndarray, scores: np.ndarray, histories: Sequence[Sequence[int]], top_k: int
) -> list[tuple[list[int], list[float]]]:
    """Merge each user's K result lists at once: best score per item, no padding or history.

    ids, scores: [B, K, k] -> per user (items, scores), best first, at most top_k; ties by id.
    """
    batch = ids.shape[0]
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
    repeat = np.zeros_like(drop)  # [B, N]
    repeat[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    sorted_scores[repeat] = -np.inf  # keep only each item's best score
    best = np.argsort(-sorted_scores, axis=1, kind="stable")[:, :top_k]  # [B, k]
    top_ids = np.take_along_axis(sorted_ids, best, axis=1)  # [B, k]
    top_scores = np.take_along_axis(sorted_scores, best, axis=1)  # [B, k]
    out = []
    for row in range(batch):
        valid = np.isfinite(top_scores[row])
        out.append((top_ids[row][valid].tolist(), top_scores[row][valid].astype(float).tolist()))
    return out


class Recaller:
    """Recall candidates for a batch of users; every face (stream, HTTP, evaluation) calls this."""

    def __init__(self, model: InterestSource, index: VectorIndex, top_k: int):
        self.model = model
        self.index = index
        self.top_k = top_k
        self._lock = threading.Lock()  # one batch at a time through the model and the index

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
            version = model.version
            merging = time.perf_counter()
            spent["search"] = merging - searched
            popular = model.popular(k + per_interest) if not usable.all() else []
        merged = merge(ids, scores, histories, k)
        out = []
        for row, history in enumerate(histories):
            if usable[row]:
                out.append(Candidates(*merged[row], version, "mind", int(skipped[row])))
            else:
                seen = set(history)
                items = [i for i in popular if i not in seen][:k]
                out.append(Candidates(items, [0.0] * len(items), version, "popular",
                                      int(skipped[row])))
        spent["merge"] = time.perf_counter() - merging
        return out
