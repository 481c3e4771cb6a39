"""The recaller's list arithmetic, pure NumPy: which interests a batch searches, and how each
user's K result lists merge into one top-k."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
