"""The fault tests' expected recommendations, computed apart from the serving code.

For a history, MIND's candidates are the `top_k` items (the user's seen items left out) with
the best inner product against any of the history's interest vectors. This module computes
that exactly in NumPy over the exported item table, from the model's interest vectors alone:
no `Recaller`, no `merge`, no Milvus. The only rule it shares with serving is the documented
interest pruning (`RECALL_INTEREST_PRUNING`), written again here as a plain loop.

Milvus searches each interest for top_k + (longest exclusion row) items, so after dropping
at most that many seen items each interest still offers top_k, and the merged best-per-item
list equals the exact one below, up to float rounding and the order of tied scores (which
`checks.tie_equal` tolerates).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.serving import InterestModel
from producers.items import read_item_table

Expected = tuple[list[int], list[float], str]  # items best first, their scores, model version


def kept_interests(vectors: np.ndarray, history_len: int, pruning: str,
                   dedup_cosine: float) -> list[int]:
    """Indices of one user's interests [K, D] that serving searches (docs: interest pruning)."""
    norms = np.linalg.norm(vectors, axis=1)
    alive = [k for k in range(len(vectors)) if norms[k] > 0]
    if pruning == "none" or len(vectors) == 1:
        return alive
    longest_first = sorted(alive, key=lambda k: (-norms[k], k))
    if pruning == "log2":
        keep = max(1, min(len(vectors), int(np.floor(np.log2(max(history_len, 1))))))
        return sorted(longest_first[:keep])
    kept: list[int] = []
    for k in longest_first:  # dedup: drop a capsule too close to a longer kept one
        cos = [float(vectors[k] @ vectors[j]) / (norms[k] * norms[j]) for j in kept]
        if not any(c >= dedup_cosine for c in cos):
            kept.append(k)
    return sorted(kept)


class ExactOracle:
    """Exact top-k of one exported model version over its whole item table."""

    def __init__(self, model_dir: str | Path, top_k: int, pruning: str, dedup_cosine: float):
        self.model = InterestModel.load(model_dir, device="cpu")
        version, ids, vectors = read_item_table(model_dir)
        if version != self.model.version:
            raise ValueError(f"item table {version} != model {self.model.version}")
        self.ids = np.asarray(ids, dtype=np.int64)  # [N]
        self.vectors = np.asarray(vectors, dtype=np.float64)  # [N, D]
        self.top_k, self.pruning, self.dedup_cosine = top_k, pruning, dedup_cosine

    def expect(self, histories: Sequence[Sequence[int]],
               seen: Sequence[Sequence[int]]) -> list[Expected]:
        """For each history: the exact candidates, none of the row of `seen` among them."""
        vectors = np.asarray(self.model.interests([list(h) for h in histories]).vectors,
                             dtype=np.float64)  # [B, K, D]
        out: list[Expected] = []
        for history, user_seen, user_vectors in zip(histories, seen, vectors, strict=True):
            keep = kept_interests(user_vectors, len(history), self.pruning, self.dedup_cosine)
            if not keep:  # no known history item: serving falls back to popular items
                out.append(([], [], self.model.version))
                continue
            best = (user_vectors[keep] @ self.vectors.T).max(axis=0)  # [N]
            best[np.isin(self.ids, np.asarray(list(user_seen), dtype=np.int64))] = -np.inf
            order = np.lexsort((self.ids, -best))[:self.top_k]  # best first, ties by id
            order = order[np.isfinite(best[order])]
            out.append((self.ids[order].tolist(), [round(float(s), 6) for s in best[order]],
                        self.model.version))
        return out
