"""The recall core: histories -> MIND interests (one call) -> one Milvus search -> merged top-k."""

from __future__ import annotations

import threading
from collections.abc import Sequence
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


def merge(
    ids: np.ndarray, scores: np.ndarray, exclude: Sequence[int], top_k: int
) -> tuple[list[int], list[float]]:
    """Merge one user's K result lists: best score per item, no padding or `exclude`, top_k."""
    flat_ids = ids.reshape(-1)  # [K * k]
    flat_scores = scores.reshape(-1)  # [K * k]
    keep = flat_ids >= 0
    if len(exclude):
        keep &= ~np.isin(flat_ids, np.asarray(exclude, dtype=np.int64))
    flat_ids, flat_scores = flat_ids[keep], flat_scores[keep]
    order = np.argsort(-flat_scores, kind="stable")  # best first
    flat_ids, flat_scores = flat_ids[order], flat_scores[order]
    _, first = np.unique(flat_ids, return_index=True)  # first occurrence = best score
    first.sort()
    first = first[:top_k]
    return flat_ids[first].tolist(), flat_scores[first].astype(float).tolist()


class Recaller:
    """Recall candidates for a batch of users; every face (stream, HTTP, evaluation) calls this."""

    def __init__(self, model: InterestSource, index: VectorIndex, top_k: int, history_len: int):
        self.model = model
        self.index = index
        self.top_k = top_k
        self.history_len = history_len
        self._lock = threading.Lock()  # one batch at a time through the model and the index
        self.fallbacks = 0  # users answered from popular items (no usable history item)

    def recall(
        self, histories: Sequence[Sequence[int]], top_k: int | None = None
    ) -> list[Candidates]:
        """One model call and one index search for the whole batch; one Candidates per history."""
        k = top_k or self.top_k
        if not histories:
            return []
        with self._lock:
            model = self.model
            vectors, _skipped = model.interests(histories)  # [B, K, D]
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
            popular = model.popular(k + per_interest) if not usable.all() else []
        out = []
        for row, history in enumerate(histories):
            if usable[row]:
                items, item_scores = merge(ids[row], scores[row], history, k)
                out.append(Candidates(items, item_scores, version, "mind"))
            else:
                self.fallbacks += 1
                seen = set(history)
                items = [i for i in popular if i not in seen][:k]
                out.append(Candidates(items, [0.0] * len(items), version, "popular"))
        return out
