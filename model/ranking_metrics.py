"""Full-ranking retrieval (exact NumPy inner product) and Recall / NDCG / HitRate at N."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

# retrieve(user_vectors [U, K, D] float32, n) -> for each user, up to n raw item ids, best first
Retriever = Callable[[np.ndarray, int], Sequence[Sequence[int]]]


def exact_retriever(item_ids: np.ndarray, item_vectors: np.ndarray, chunk: int = 512) -> Retriever:
    """Exact inner-product retrieval over all items.

    Each interest retrieves its top-n, the K lists are merged by each item's best score and
    deduplicated. This equals the top-n of max_k <v_k, e_i>, which is what is computed.
    History items are NOT excluded (as in ComiRec's evaluation).
    """
    ids = np.asarray(item_ids, dtype=np.int64)  # [N]
    table = np.ascontiguousarray(item_vectors, dtype=np.float32)  # [N, D]

    def retrieve(user_vectors: np.ndarray, n: int) -> list[list[int]]:
        vecs = np.asarray(user_vectors, dtype=np.float32)  # [U, K, D]
        if vecs.ndim == 2:
            vecs = vecs[:, None, :]  # [U, 1, D]
        n = min(n, len(ids))
        out: list[list[int]] = []
        for s in range(0, len(vecs), chunk):
            v = vecs[s : s + chunk]  # [c, K, D]
            scores = (v.reshape(-1, v.shape[-1]) @ table.T).reshape(len(v), v.shape[1], -1)
            best = scores.max(axis=1)  # [c, N]
            top = np.argpartition(-best, n - 1, axis=1)[:, :n]  # [c, n] unordered
            order = np.argsort(-np.take_along_axis(best, top, axis=1), axis=1, kind="stable")
            out.extend(ids[np.take_along_axis(top, order, axis=1)].tolist())  # [c, n]
        return out

    return retrieve


def popular_retriever(popular_ids: Sequence[int]) -> Retriever:
    """Same list (most popular first) for every user."""
    top = [int(i) for i in popular_ids]

    def retrieve(user_vectors: np.ndarray, n: int) -> list[list[int]]:
        return [top[:n] for _ in range(len(user_vectors))]

    return retrieve


def score_lists(
    retrieved: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], ns: Sequence[int]
) -> dict[str, float]:
    """Mean Recall@N, NDCG@N, HitRate@N over users, in [0, 1].

    Recall = |top-N ∩ targets| / |targets| (targets deduplicated);
    NDCG = sum over hit positions of 1/log2(pos+2), divided by the ideal DCG of
    min(|targets|, N) hits (not of the hits found, a PaddleRec bug);
    HitRate = 1 if any target is in the top-N.
    """
    if len(retrieved) != len(targets):
        raise ValueError(f"{len(retrieved)} result lists for {len(targets)} users")
    disc = 1.0 / np.log2(np.arange(2, max(ns) + 2))
    sums = {f"{m}@{n}": 0.0 for n in ns for m in ("recall", "ndcg", "hitrate")}
    for got, want in zip(retrieved, targets, strict=True):
        truth = set(int(t) for t in want)
        flags = [int(i) in truth for i in got]
        for n in ns:
            hit_pos = [p for p, f in enumerate(flags[:n]) if f]
            hits = len(hit_pos)
            sums[f"recall@{n}"] += hits / len(truth)
            sums[f"hitrate@{n}"] += 1.0 if hits else 0.0
            ideal = disc[: min(len(truth), n)].sum()
            sums[f"ndcg@{n}"] += float(disc[hit_pos].sum() / ideal) if hits else 0.0
    users = max(1, len(targets))
    return {k: v / users for k, v in sums.items()}


def evaluate_vectors(
    user_vectors: np.ndarray,
    targets: Sequence[Sequence[int]],
    retrieve: Retriever,
    ns: Sequence[int] = (20, 50),
    chunk: int = 4096,
) -> dict[str, float]:
    """Retrieve top-max(ns) for every user with `retrieve`, then score with `score_lists`."""
    n = max(ns)
    lists: list[Sequence[int]] = []
    for s in range(0, len(user_vectors), chunk):
        lists.extend(retrieve(user_vectors[s : s + chunk], n))
    return score_lists(lists, targets, ns)


def mean_sd(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each key plus `key_sd` (sample sd, 0 for one run)."""
    out: dict[str, float] = {}
    for key in runs[0]:
        vals = [r[key] for r in runs]
        mean = sum(vals) / len(vals)
        var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
        out[key] = mean
        out[f"{key}_sd"] = math.sqrt(var)
    return out
