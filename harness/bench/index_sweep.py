"""`python -m harness.bench.index_sweep`: which Milvus index each catalog size needs.

For each catalog size (the Beauty model's items filled with clustered synthetic ones,
harness.bench.items, built once and cached) and each index point (FLAT; IVF_FLAT at several
nlist and nprobe), in one run on a private Milvus server:
- the search ceiling: users/s of back-to-back batched searches of the pipeline's shape
  (harness.bench.probes.search_ceiling, best of 1 and 2 threads);
- recall kept: the overlap of the recaller's merged top-50 through that index with the merged
  top-50 of exact search (NumPy over the same table) for the same interest vectors, over the
  Beauty model's test users (real histories), averaged over users.
The chosen point of each size is the fastest one keeping >= 95%. Writes JSON, and the .md
table and .png plot beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from harness.bench.index_report import write_report
from harness.bench.items import cached_fill
from harness.bench.probes import search_ceiling
from harness.milvus_eval import holdout_users
from harness.stack.launch import ensure_model
from harness.stack.servers import LocalStack, free_ports
from model.serving import InterestModel
from streams.recall.recaller import Recaller, VectorIndex
from streams.settings import Settings
from streams.stores.index import ItemIndex

SIZES = {"100k": 100_000, "1m": 1_000_000}
KEPT = 0.95  # the least recall kept a chosen point may have


class ExactIndex:
    """Exact inner-product top-k over a table in memory (the reference of recall kept)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, chunk: int = 32) -> None:
        self.ids, self.vectors, self.chunk = ids, vectors, chunk

    def search(self, vectors: np.ndarray, top_k: int,
               params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        ids = np.empty((len(vectors), top_k), dtype=np.int64)  # [Q, k]
        scores = np.empty((len(vectors), top_k), dtype=np.float32)  # [Q, k]
        for start in range(0, len(vectors), self.chunk):
            part = vectors[start:start + self.chunk] @ self.vectors.T  # [c, N]
            top = np.argpartition(-part, top_k - 1, axis=1)[:, :top_k]  # [c, k] unordered
            got = np.take_along_axis(part, top, axis=1)  # [c, k]
            order = np.argsort(-got, axis=1, kind="stable")  # [c, k]
            ids[start:start + len(part)] = self.ids[np.take_along_axis(top, order, axis=1)]
            scores[start:start + len(part)] = np.take_along_axis(got, order, axis=1)
        return ids, scores


def merged_lists(recaller: Recaller, histories: Sequence[Sequence[int]],
                 batch: int) -> list[list[int]]:
    """The recaller's merged top-k of every history, a batch at a time."""
    out: list[list[int]] = []
    for start in range(0, len(histories), batch):
        out += [c.item_ids for c in recaller.recall(histories[start:start + batch])]
    return out


def overlap(got: Sequence[Sequence[int]], want: Sequence[Sequence[int]]) -> float:
    """Mean share of each exact list that the other list holds."""
    shares = [len(set(g) & set(w)) / len(w) for g, w in zip(got, want, strict=True) if w]
    return float(np.mean(shares))


def points(nlists: Sequence[int], nprobes: Sequence[int]) -> list[tuple[str, int, int]]:
    """(index, nlist, nprobe) of the sweep: FLAT, then each nlist at each nprobe below it."""
    return [("FLAT", 0, 0)] + [("IVF_FLAT", nlist, nprobe) for nlist in nlists
                               for nprobe in nprobes if nprobe <= nlist]


def sweep_size(uri: str, model: InterestModel, label: str, total: int, args: argparse.Namespace,
               histories: list[list[int]], settings: Settings) -> dict[str, Any]:
    """Every point at one catalog size."""
    ids, vectors, built_s = cached_fill(*model.item_table(), total, Path(args.cache_dir),
                                        model.version)

    def recaller(index: VectorIndex, params: dict[str, Any] | None = None) -> Recaller:
        return Recaller(model, index, settings.top_k, settings.per_interest_extra,
                        settings.interest_pruning, settings.interest_dedup_cosine, params)

    started = time.perf_counter()
    exact = merged_lists(recaller(ExactIndex(ids, vectors)), histories,
                         settings.batch_size)
    out: dict[str, Any] = {"items": int(len(ids)), "build_s": built_s,
                           "exact_s": round(time.perf_counter() - started, 1), "points": []}
    print(f"{label}: {len(ids):,} items (built in {built_s or 0:.0f} s, 0: cached), exact lists "
          f"of {len(histories)} users in {out['exact_s']} s", flush=True)
    for nlist in sorted({n for _, n, _ in points(args.nlists, args.nprobes)}):
        kind = "IVF_FLAT" if nlist else "FLAT"
        index = ItemIndex(uri, f"sweep_{label}_{nlist}", model.dim, kind, timeout_s=600,
                          build_params={"nlist": nlist} if nlist else None)
        index.start()
        index.destroy()
        index.start()
        t0 = time.perf_counter()
        for s in tqdm(range(0, len(ids), 50_000), desc=f"{label} {kind} {nlist or ''}",
                      disable=None):
            index.upsert(ids[s:s + 50_000], vectors[s:s + 50_000])
        index.client.flush(index.collection)
        loaded_s = round(time.perf_counter() - t0, 1)
        try:
            for _, n, nprobe in [p for p in points(args.nlists, args.nprobes) if p[1] == nlist]:
                params = {"nprobe": nprobe} if nlist else None
                through = recaller(index, params)
                kept = overlap(merged_lists(through, histories, settings.batch_size), exact)
                ceiling = search_ceiling(index, model, through, histories, settings.batch_size,
                                         args.ceiling_s)
                row = {"index": kind, "nlist": n, "nprobe": nprobe, "load_s": loaded_s,
                       "recall_kept": round(kept, 4),
                       "ceiling_ups": max(ceiling["threads_1"], ceiling.get("threads_2", 0.0)),
                       **ceiling}
                out["points"].append(row)
                print(f"  {kind:8s} nlist {n:5d} nprobe {nprobe:4d}: recall kept "
                      f"{kept:.4f}, ceiling {row['ceiling_ups']:8.1f} users/s", flush=True)
        finally:
            index.destroy()
            index.close()
    good = [p for p in out["points"] if p["recall_kept"] >= KEPT]
    out["chosen"] = max(good, key=lambda p: p["ceiling_ups"]) if good else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    p = argparse.ArgumentParser(prog="python -m harness.bench.index_sweep", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", default="100k,1m", help=f"comma list of {', '.join(SIZES)}")
    p.add_argument("--nlists", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1024, 4096], help="IVF_FLAT nlist values")
    p.add_argument("--nprobes", type=lambda s: [int(x) for x in s.split(",")],
                   default=[8, 16, 32, 64, 128], help="IVF_FLAT nprobe values")
    p.add_argument("--users", type=int, default=0, help="test users scored (0: all)")
    p.add_argument("--ceiling-s", type=float, default=8.0, help="seconds per ceiling run")
    p.add_argument("--model-dir", default="artifacts/model-amazon-beauty",
                   help="the Beauty model (trained when missing)")
    p.add_argument("--data", default="../shared/data/amazon-beauty.txt",
                   help="its dataset (test users' histories)")
    p.add_argument("--cache-dir", default="artifacts/bench-items", help="filled catalogs")
    p.add_argument("--out", default="index-sweep.json", help="JSON; .md and .png beside it")
    args = p.parse_args(argv)
    ensure_model(args.model_dir, args.data, sys.stdout)
    model = InterestModel.load(args.model_dir, device="cpu")
    version = Path(args.model_dir) / model.version
    histories, _ = holdout_users(version if version.is_dir() else Path(args.model_dir),
                                 args.data)
    histories = histories[:args.users] if args.users else histories
    result: dict[str, Any] = {"model": model.version, "users": len(histories),
                              "kept_at_least": KEPT, "sizes": {}}
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as workdir:
        stack = LocalStack(stack_dir=workdir, milvus_port=port)
        stack.start_server("milvus")
        try:
            for label in args.sizes.split(","):
                result["sizes"][label] = sweep_size(stack.settings.milvus_uri, model, label,
                                                    SIZES[label], args, histories, settings)
                Path(args.out).write_text(json.dumps(result, indent=1))
        finally:
            stack.stop()
    write_report(result, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
