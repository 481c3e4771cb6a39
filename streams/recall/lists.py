"""The recaller's list arithmetic: which interests a batch searches, and how each
user's K result lists merge into one top-k."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.ranking import Ranked, rank_flat


def merge(
    ids: np.ndarray, scores: np.ndarray, histories: Sequence[Sequence[int]], top_k: int
) -> list[tuple[list[int], list[float], list[int]]]:
    """Merge each user's K result lists at once: best score per item, no padding and none of
    the items in the user's row of `histories` (the history, or every item seen).

    ids, scores: [B, K, k] -> per user (items, scores, interests), best first, at most top_k;
    ties by id; `interests` holds the index of the list each item's best score came from (ties:
    the first list). One compiled pass over the batch (model.ranking, the loop the channels
    rank with, keeping each item's largest score instead of the sum).
    """
    return merge_flat(ids, scores, histories, top_k).rows()


def merge_flat(ids: np.ndarray, scores: np.ndarray, histories: Sequence[Sequence[int]],
               top_k: int) -> Ranked:
    """merge's lists left as flat arrays (the interests as tags)."""
    batch, _, per_list = ids.shape
    flat_ids = ids.reshape(batch, -1)  # [B, N] each row interest-major
    rows, cols = np.nonzero(flat_ids >= 0)  # row-major: each row's entries in list order
    values = np.asarray(scores, dtype=np.float32).reshape(batch, -1)[rows, cols]  # as Milvus
    # gave them (rank_entries ranks them as float64)
    return rank_flat(batch, rows, flat_ids[rows, cols], values, histories, top_k,
                     tags=cols // per_list, best=True)


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
