"""`python -m harness.bench.index_sweep`: which Milvus index each catalog size needs.

For each catalog size (the Beauty model's items filled with clustered synthetic ones,
harness.bench.items, built once and cached) and each index point (FLAT; IVF_FLAT at several
nlist and nprobe; HNSW at several ef), in one run on a private Milvus server (a standalone by
default: Milvus Lite ignores nprobe and has no HNSW), each index built on one loaded collection
and waited for:
- the search ceiling: users/s of back-to-back batched searches of the pipeline's shape
  (harness.bench.probes.search_ceiling, best of 1 and 2 threads);
- recall kept: the overlap of the recaller's merged top-50 through that index with the merged
  top-50 of exact search (NumPy over the same table) for the same interest vectors, over the
  Beauty model's test users (real histories), averaged over users.
- the server's resident memory with the index loaded.
On a standalone the loaded rows are compacted first, and after each build the sweep waits
until the server idles (harness.bench.cpu.settle), so its background work is not measured.
The chosen point of each size is the fastest one keeping >= 95% (streams.stores.index's
RECOMMENDED holds the choices). Writes JSON, and the .md table and .png plot beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus.client.constants import ConsistencyLevel
from tqdm import tqdm

from harness.bench.cpu import rss_mb, settle
from harness.bench.index_report import write_report
from harness.bench.items import cached_fill
from harness.bench.probes import search_ceiling
from harness.milvus_eval import holdout_users
from harness.stack.launch import ensure_model
from harness.stack.servers import LocalStack, free_ports
from harness.stack.standalone import compact, connect, milvus_standalone, rebuild
from model.serving import InterestModel, version_dir
from streams.recall.recaller import Recaller, VectorIndex
from streams.settings import Settings
from streams.stores.index import INDEX_PARAMS, ItemIndex

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


Build = tuple[str, dict[str, Any], list[dict[str, Any]]]  # index, build params, searches


def builds(nlists: Sequence[int], nprobes: Sequence[int], efs: Sequence[int]) -> list[Build]:
    """The sweep: FLAT; IVF_FLAT at each nlist with each nprobe up to it; HNSW (M 16) with
    each ef (none when `efs` is empty)."""
    out: list[Build] = [("FLAT", {}, [{}])]
    out += [("IVF_FLAT", {"nlist": n}, [{"nprobe": p} for p in nprobes if p <= n])
            for n in nlists]
    if efs:
        out.append(("HNSW", INDEX_PARAMS["HNSW"], [{"ef": ef} for ef in efs]))
    return out


def sweep_size(uri: str, pid: int, model: InterestModel, label: str, total: int,
               args: argparse.Namespace, histories: list[list[int]], settings: Settings
               ) -> dict[str, Any]:
    """Every point at one catalog size, each index built in turn on one loaded collection."""
    ids, vectors, built_s = cached_fill(*model.item_table(), total, Path(args.cache_dir),
                                        model.version)

    def recaller(index: VectorIndex, params: dict[str, Any] | None = None) -> Recaller:
        return Recaller(model, index, settings.top_k, settings.per_interest_extra,
                        settings.interest_pruning, settings.interest_dedup_cosine, params)

    started = time.perf_counter()
    exact = merged_lists(recaller(ExactIndex(ids, vectors)), histories, settings.batch_size)
    out: dict[str, Any] = {"items": int(len(ids)), "fill_s": built_s,
                           "exact_s": round(time.perf_counter() - started, 1), "points": []}
    print(f"{label}: {len(ids):,} items (" + ("cached" if built_s is None else
          f"filled in {built_s:.1f} s") + f"), exact lists of {len(histories)} users in "
          f"{out['exact_s']} s", flush=True)
    index = ItemIndex(uri, f"sweep_{label}", model.dim, "FLAT", timeout_s=600)
    connect(index)
    index.destroy()
    index.start()
    try:
        t0 = time.perf_counter()
        for s in tqdm(range(0, len(ids), 50_000), desc=f"{label} insert", disable=None):
            index.upsert(ids[s:s + 50_000], vectors[s:s + 50_000])
        index.client.flush(index.collection)
        out["insert_s"] = round(time.perf_counter() - t0, 1)
        if args.server == "standalone":  # merged now, not in the background while measured
            out["compaction_s"] = round(compact(index), 1)
        for kind, build, searches in builds(args.nlists, args.nprobes, args.efs):
            build_s = round(rebuild(index, kind, build), 1)
            idle = settle(pid)  # the server's own work after the build, done
            milvus_mb = round(rss_mb(pid))  # the server, this index loaded
            # FLAT also under Strong consistency, as the pipeline searches (a time-tick wait)
            levels = ["Eventually", "Strong"] if kind == "FLAT" else ["Eventually"]
            for params, level in [(p, lv) for p in searches for lv in levels]:
                index.consistency = getattr(ConsistencyLevel, level)
                through = recaller(index, params or None)
                kept = overlap(merged_lists(through, histories, settings.batch_size), exact)
                ceiling = search_ceiling(index, model, through, histories, settings.batch_size,
                                         args.ceiling_s)
                row = {"index": kind, "build": build, "search": params, "consistency": level,
                       "build_s": build_s, "settle": idle, "milvus_rss_mb": milvus_mb,
                       "recall_kept": round(kept, 4),
                       "ceiling_ups": max(ceiling["threads_1"], ceiling.get("threads_2", 0.0)),
                       **ceiling}
                out["points"].append(row)
                print(f"  {kind:8s} {build} {params} {level}: recall kept {kept:.4f}, ceiling "
                      f"{row['ceiling_ups']:8.1f} users/s (index built in {build_s} s)",
                      flush=True)
    finally:
        index.destroy()
        index.close()
    good = [p for p in out["points"] if p["recall_kept"] >= KEPT
            and p["consistency"] == "Eventually"]
    out["chosen"] = max(good, key=lambda p: p["ceiling_ups"]) if good else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    p = argparse.ArgumentParser(prog="python -m harness.bench.index_sweep", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", default="100k,1m", help=f"comma list of {', '.join(SIZES)}")
    p.add_argument("--nlists", type=lambda s: [int(x) for x in s.split(",") if x],
                   default=[1024, 4096], help="IVF_FLAT nlist values")
    p.add_argument("--nprobes", type=lambda s: [int(x) for x in s.split(",")],
                   default=[8, 16, 32, 64, 128], help="IVF_FLAT nprobe values")
    p.add_argument("--efs", type=lambda s: [int(x) for x in s.split(",") if x],
                   default=[128, 256, 512], help="HNSW ef values (standalone only; at least k)")
    p.add_argument("--server", choices=["lite", "standalone"], default="standalone",
                   help="Milvus Lite 2.5.1 (the local stack's; no HNSW, no IVF index: nprobe "
                   "is ignored) or a real standalone 2.3.5 (pip install milvus==2.3.5)")
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
    histories, _ = holdout_users(version_dir(args.model_dir), args.data)
    histories = histories[:args.users] if args.users else histories
    result: dict[str, Any] = {"model": model.version, "users": len(histories),
                              "kept_at_least": KEPT, "sizes": {}}
    (port,) = free_ports(1)
    if args.server == "lite":
        args.efs = []  # Lite builds no HNSW
    result["server"] = args.server
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        if args.server == "lite":
            local = LocalStack(stack_dir=workdir, milvus_port=port)
            local.start_server("milvus")
            stack.callback(local.stop)
            uri, pid = local.settings.milvus_uri, local.pids()["milvus"]
        else:
            server = stack.enter_context(milvus_standalone(port))
            uri, pid = server.uri, server.pid
        for label in args.sizes.split(","):
            result["sizes"][label] = sweep_size(uri, pid, model, label, SIZES[label], args,
                                                histories, settings)
            Path(args.out).write_text(json.dumps(result, indent=1))
    write_report(result, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
