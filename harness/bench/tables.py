"""`python -m harness.bench.tables`: the item tables that grow with the catalog, at 1M items.

- The worker's streamed table (model.serving's `add_items`, fed by the items topic): a million
  streamed items added in the feed's batches (RECALL_ITEM_BATCH_SIZE), milliseconds per batch
  as the table grows, resident memory it adds, and a forward pass on streamed histories. Beside
  it, in the same run, the design it replaced (every batch copied the whole table into a new
  one) grown to `--old-items`.
- The continuous trainer's learner (model.online.learner) with a table of 1M items (the Beauty
  model's items filled with clustered ones, harness.bench.items): building it, adding a batch
  of new items, training steps, and one export cycle (changed rows found, version written),
  with the process's resident memory after each; with the dense table gradient and with the
  sparse one (RECALL_ONLINE_SPARSE), each in a process of its own.
Prints one JSON line; `--out` writes it too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from harness.bench.items import cached_fill
from harness.stack.launch import ensure_model
from model.online.learner import OnlineConfig, load_learner
from model.online.state import StreamState, Window, changed_rows, export_online
from model.serving import InterestModel, version_dir
from streams.settings import Settings


def rss() -> float:
    return round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return round(1000 * (time.perf_counter() - started), 2)


def copy_on_write_add(table: dict[int, np.ndarray], ids: list[int], vecs: np.ndarray,
                      dim: int) -> dict[int, np.ndarray]:
    """The replaced design: a batch merged into a copy of the whole table, rebuilt as arrays."""
    merged = dict(table)
    merged.update(zip(ids, vecs, strict=True))
    np.array(list(merged.values()), dtype=np.float32).reshape(len(merged), dim)
    np.argsort(np.array(list(merged), dtype=np.int64))
    return merged


def streamed_table(model: InterestModel, total: int, old_total: int, batch: int
                   ) -> dict[str, Any]:
    """Grow the worker's streamed table to `total` items, and the old design to `old_total`."""
    rng = np.random.default_rng(0)
    base = 10**9  # ids no model was trained on
    marks = {m for m in (10_000, 100_000, 1_000_000, total) if m <= total}
    out: dict[str, Any] = {"batch": batch, "items": total, "ms_per_batch_at": {},
                           "old_ms_per_batch_at": {}}
    before, started, times = rss(), time.perf_counter(), []
    for start in range(0, total, batch):
        n = min(batch, total - start)
        vecs = rng.standard_normal((n, model.dim)).astype(np.float32)  # [n, D]
        ids = list(range(base + start, base + start + n))
        began = time.perf_counter()
        model.add_items(ids, vecs)
        times.append(1000 * (time.perf_counter() - began))
        if start + n in marks or any(start < m <= start + n for m in marks):
            out["ms_per_batch_at"][start + n] = round(float(np.median(times[-20:])), 2)
    out["total_s"] = round(time.perf_counter() - started, 1)
    out["rss_added_mb"] = round(rss() - before, 1)
    histories = [[base + int(i) for i in rng.integers(0, total, 10)] for _ in range(64)]
    trained = [[int(i) for i in rng.choice(model.item_table()[0], 10)] for _ in range(64)]
    out["forward_64_streamed_ms"] = float(np.median([timed(lambda: model.interests(histories))
                                                     for _ in range(20)]))
    out["forward_64_trained_ms"] = float(np.median([timed(lambda: model.interests(trained))
                                                    for _ in range(20)]))
    table: dict[int, np.ndarray] = {}
    old_times = []
    for start in range(0, old_total, batch):
        vecs = rng.standard_normal((batch, model.dim)).astype(np.float32)
        ids = list(range(base + start, base + start + batch))
        began = time.perf_counter()
        table = copy_on_write_add(table, ids, vecs, model.dim)
        old_times.append(1000 * (time.perf_counter() - began))
        if start + batch >= old_total or start < 10_000 <= start + batch:
            out["old_ms_per_batch_at"][start + batch] = round(float(np.median(old_times[-5:])), 2)
    out["old_total_s"] = round(sum(old_times) / 1000, 1)
    return out


def trainer_table(model_dir: str, total: int, cache: Path, settings: Settings, sparse: bool
                  ) -> dict[str, Any]:
    """The learner with `total` items: build, new items, a step, an export cycle; RSS after.
    `main` runs it in a process of its own, so that its memory figures are its own."""
    version = version_dir(model_dir)
    ocfg = OnlineConfig(sparse=sparse)
    ids, vectors, _ = cached_fill(np.load(version / "item_ids.npy"),
                                  np.load(version / "item_vectors.npy").astype(np.float32),
                                  total, cache, version.name)
    out: dict[str, Any] = {"items": int(len(ids)), "sparse": sparse, "rss_start_mb": rss()}
    started = time.perf_counter()
    learner, _ = load_learner(version, ocfg)
    learner.add_items([(int(i), []) for i in ids[learner.num_items:]])
    out["build_s"] = round(time.perf_counter() - started, 1)
    out["rss_built_mb"] = rss()
    rng = np.random.default_rng(1)
    new = [(2 * 10**9 + k, [int(i) for i in rng.choice(ids, 10)]) for k in range(1024)]
    out["add_1024_new_items_ms"] = timed(lambda: learner.add_items(new))
    hist = np.stack([learner.rows(h) for _, h in new[:settings.online_batch]])  # [B, L]
    label = np.array([learner.row[i] for i, _ in new[:settings.online_batch]])  # [B]
    published = learner.vectors()  # [N, D] as the items topic holds them
    out["first_step_ms"] = timed(lambda: learner.step(hist, label))
    out["step_ms"] = float(np.median([timed(lambda: learner.step(hist, label))
                                      for _ in range(3)]))
    out["rss_after_step_mb"] = rss()
    started = time.perf_counter()
    rows = changed_rows(learner.vectors(), published, settings.online_publish_min_change)
    out["changed_rows"] = int(len(rows))
    out["changed_rows_s"] = round(time.perf_counter() - started, 2)
    with tempfile.TemporaryDirectory() as root:
        state = StreamState()
        state.counts.update(int(i) for i in ids[:1000])
        started = time.perf_counter()
        vdir = export_online(Path(root), learner, state, Window(), version.name, ocfg,
                             len(rows))
        out["export_write_s"] = round(time.perf_counter() - started, 1)
        out["export_mb"] = round(sum(p.stat().st_size for p in vdir.iterdir()) / 2**20, 1)
    out["rss_after_export_mb"] = rss()
    out["rss_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    p = argparse.ArgumentParser(prog="python -m harness.bench.tables", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000, help="catalog size")
    p.add_argument("--old-items", type=int, default=200_000,
                   help="how far the replaced streamed-table design is grown")
    p.add_argument("--model-dir", default="artifacts/model-amazon-beauty")
    p.add_argument("--data", default="../shared/data/amazon-beauty.txt")
    p.add_argument("--cache-dir", default="artifacts/bench-items", help="filled catalogs")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    ensure_model(args.model_dir, args.data, open(os.devnull, "w"))  # noqa: SIM115
    model = InterestModel.load(args.model_dir, device="cpu")
    result = {"worker": streamed_table(model, args.items, args.old_items,
                                       settings.item_batch_size)}
    print(f"worker streamed table: {result['worker']}", flush=True)
    del model
    for sparse in (False, True):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            got = child.submit(trainer_table, args.model_dir, args.items, Path(args.cache_dir),
                               settings, sparse).result()
        result["trainer_sparse" if sparse else "trainer"] = got
        print(f"trainer ({'sparse' if sparse else 'dense'}): {got}", flush=True)
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"TABLES {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
