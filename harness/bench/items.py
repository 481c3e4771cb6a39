"""Large catalogs for the bench: a trained model's real item vectors, filled up to N items with
synthetic ones that keep the table's structure, cached on disk.

A synthetic item is a real item's direction moved by Gaussian noise, scaled to a norm drawn
from the real table. The noise is sized so that a synthetic item's cosine to its real parent
is the median cosine between a real item and its nearest real neighbour: the fill forms
clusters around the trained items as new items of the same kinds would, instead of spreading
evenly over the sphere (random directions, which no trained table looks like, and on which an
IVF index's clusters mean nothing).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SYNTHETIC_ID_BASE = 50_000_000  # ids of the synthetic catalog filler, far above real ids
SAMPLE = 4096  # real items whose nearest neighbour sizes the noise


def nearest_cosine(vectors: np.ndarray, sample: int = SAMPLE, seed: int = 0) -> float:
    """Median cosine of a sample of rows [N, D] to their nearest other row."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(unit), min(sample, len(unit)), replace=False)  # [S]
    cos = unit[rows] @ unit.T  # [S, N]
    cos[np.arange(len(rows)), rows] = -np.inf  # not itself
    return float(np.median(cos.max(axis=1)))


def fill(ids: np.ndarray, vectors: np.ndarray, total: int, seed: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """The real items [N], [N, D] and synthetic ones up to `total`, float32."""
    extra = max(0, total - len(ids))
    if not extra:
        return ids, vectors.astype(np.float32)
    rng = np.random.default_rng(seed)
    dim = vectors.shape[1]
    norms = np.linalg.norm(vectors, axis=1)  # [N]
    unit = vectors / np.maximum(norms, 1e-12)[:, None]  # [N, D]
    cos = min(max(nearest_cosine(vectors, seed=seed), 0.05), 0.999)
    # unit + s * g / sqrt(D) has cosine ~ 1 / sqrt(1 + s^2) to unit
    spread = float(np.sqrt(1.0 / cos**2 - 1.0))
    out_ids = np.concatenate([ids, SYNTHETIC_ID_BASE + np.arange(extra)]).astype(np.int64)
    out = np.empty((len(out_ids), dim), dtype=np.float32)
    out[:len(ids)] = vectors
    chunk = 100_000
    for start in range(0, extra, chunk):
        n = min(chunk, extra - start)
        parents = rng.integers(0, len(ids), n)  # [n]
        moved = unit[parents] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)  # [n, D]
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        out[len(ids) + start:len(ids) + start + n] = moved * rng.choice(norms, n)[:, None]
    return out_ids, out


def cached_fill(ids: np.ndarray, vectors: np.ndarray, total: int, cache_dir: Path,
                key: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float | None]:
    """fill(), stored as .npy under cache_dir/<key>-<total>/ and read back next time; the
    seconds the build took (None: read from the cache)."""
    where = cache_dir / f"{key}-{total}-seed{seed}"
    if (where / "vectors.npy").is_file():
        return np.load(where / "ids.npy"), np.load(where / "vectors.npy"), None
    started = time.perf_counter()
    out_ids, out = fill(ids, vectors, total, seed)
    where.mkdir(parents=True, exist_ok=True)
    np.save(where / "ids.npy", out_ids)
    np.save(where / "vectors.npy", out)
    return out_ids, out, time.perf_counter() - started
