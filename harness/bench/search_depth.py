"""`python -m harness.bench.search_depth`: what one batch search costs Milvus standalone by its
depth (the top-k asked of each query) on a large HNSW catalog.

With RECALL_EXCLUDE_SEEN one search per batch used to ask every query for top_k + the batch's
heaviest user's seen count (up to 1,050), and HNSW searches with ef >= that depth. This tool
builds the bench's filled catalog (harness.bench.items: the Beauty model's items and clustered
ones up to --items) on a private Milvus standalone with HNSW, made ready by `make bench`'s own
`harness.bench.world.fill_catalog` (compacted, indexed, Milvus idle), and times batches of 143
queries (64 users' interests after pruning) near catalog items at each depth: median wall ms
per call and Milvus CPU ms per call, each depth twice, interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.cpu import cpu_seconds
from harness.bench.world import Catalog, fill_catalog
from harness.stack.servers import free_ports
from harness.stack.standalone import milvus_standalone
from model.serving import InterestModel
from streams.settings import Settings
from streams.stores.index import INDEX_PARAMS

QUERIES = 143  # a batch of 64 users at 2.24 queries per user (interest dedup)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.search_depth", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000, help="catalog size")
    p.add_argument("--depths", default="62,150,1050", help="top-k asked of each query")
    p.add_argument("--calls", type=int, default=20, help="timed calls per depth and round")
    p.add_argument("--model-dir", default="artifacts/model-amazon-beauty")
    p.add_argument("--cache-dir", default="artifacts/bench-items", help="filled catalogs")
    p.add_argument("--out", default="search-depth.json", help="the results, as JSON")
    args = p.parse_args(argv)
    model = InterestModel.load(args.model_dir, device="cpu")
    catalog = Catalog("search-depth", args.model_dir, args.items, None, "standalone", "HNSW")
    depths = [int(d) for d in args.depths.split(",")]
    with milvus_standalone(free_ports(1)[0]) as server:
        settings = Settings().model_copy(update={"milvus_uri": server.uri,
                                                 "milvus_consistency": "Session"})
        index, ids, vectors, ready = fill_catalog(settings, catalog, model,
                                                  Path(args.cache_dir), server.pid)
        result: dict[str, Any] = {"items": len(ids), "queries_per_call": QUERIES,
                                  "index": INDEX_PARAMS["HNSW"], "ready": ready, "rounds": []}
        rng = np.random.default_rng(0)
        picks = vectors[rng.integers(0, len(ids), QUERIES * args.calls)]  # [N, D]
        queries = (picks + 0.1 * rng.standard_normal(picks.shape)).astype(np.float32)
        for _ in range(30):  # the first calls after a load cost more
            index.search(queries[:QUERIES], depths[0])
        for depth in depths * 2:
            wall = []
            before = cpu_seconds(server.pid)
            for call in range(args.calls):
                started = time.perf_counter()
                index.search(queries[call * QUERIES:(call + 1) * QUERIES], depth)
                wall.append(1000 * (time.perf_counter() - started))
            row = {"depth": depth, "wall_ms": round(statistics.median(wall), 1),
                   "milvus_cpu_ms_per_call": round(
                       1000 * (cpu_seconds(server.pid) - before) / args.calls, 1)}
            result["rounds"].append(row)
            print(row, flush=True)
        index.close()
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
