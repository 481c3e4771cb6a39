"""`make bench`'s catalogs: recall through Milvus, recall kept against exact search, memory per
process, and the targets that compare catalog sizes within one run (100k HNSW against 100k
FLAT, 1M against 12k)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import redis

from harness.bench.cpu import rss_mb
from harness.bench.index_sweep import KEPT, ExactIndex, merged_lists, overlap
from harness.milvus_eval import compare, holdout_users
from model.serving import InterestModel, version_dir
from streams.recall.recaller import Recaller
from streams.settings import Settings
from streams.stores.index import ItemIndex

LARGE = {"100k-hnsw": "100k", "1m": "12k"}  # a large catalog -> the one it is compared with


def recall_kept(model: InterestModel, index: ItemIndex, ids: np.ndarray, vectors: np.ndarray,
                model_dir: str, data: str, settings: Settings,
                params: dict[str, Any] | None) -> dict[str, Any]:
    """Overlap of the recaller's merged top-k through the collection with the merged top-k of
    exact search over the same table, for the model's test users (real histories)."""
    histories, _ = holdout_users(version_dir(model_dir), data)

    def through(where: Any, search: dict[str, Any] | None) -> list[list[int]]:
        recaller = Recaller(model, where, settings.top_k, settings.per_interest_extra,
                            settings.interest_pruning, settings.interest_dedup_cosine, search)
        return merged_lists(recaller, histories, settings.batch_size)

    kept = overlap(through(index, params), through(ExactIndex(ids, vectors), None))
    return {"users": len(histories), "recall_kept": round(kept, 4)}


def milvus_recall(model: InterestModel, index: ItemIndex, model_dir: str, data: str,
                  settings: Settings) -> dict[str, Any]:
    """Recall@50 of Beauty test users through Milvus with the recaller's pruning, vs exact."""
    histories, targets_ = holdout_users(version_dir(model_dir), data)
    got = compare(model, index, histories, targets_, settings.interest_pruning,
                  settings.interest_dedup_cosine)
    return {"users": len(histories), "exact_recall@50": round(got["exact"]["recall@50"], 4),
            "milvus_recall@50": round(got["milvus"]["recall@50"], 4),
            "recall_kept": round(got["recall_kept"], 4),
            "queries_per_user": round(got["queries_per_user"], 2)}


def memory_mb(pids: Mapping[str, list[int]]) -> dict[str, float]:
    """Resident MiB of each group of processes (with their descendants)."""
    return {name: round(sum(rss_mb(p) for p in group), 1) for name, group in pids.items()}


def redis_memory(settings: Settings, users: int) -> dict[str, Any]:
    """Redis's dataset: used MiB, keys, and bytes per user (everything over the users)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        info = client.info("memory")
        keys = int(client.dbsize())
    finally:
        client.close()
    data = int(info["used_memory"]) - int(info["used_memory_startup"])
    return {"used_mb": round(int(info["used_memory"]) / 2**20, 1), "keys": keys,
            "bytes_per_user": round(data / max(users, 1))}


def scale_targets(result: Mapping[str, Any]) -> dict[str, bool | None]:
    """The large-catalog targets, each a ratio within this run (None: not measured)."""
    cats = result["catalogs"]

    def rate(label: str) -> float | None:
        cat = cats.get(label)
        return None if cat is None else cat["pipeline"]["max_sustained_cps"]

    def kept(label: str) -> bool | None:
        got = (cats.get(label) or {}).get("recall_kept")
        return None if got is None else got >= KEPT

    out: dict[str, bool | None] = {}
    hnsw, flat = rate("100k-hnsw"), rate("100k")
    if hnsw is not None and flat:
        out["100k_hnsw_ge_2.5x_flat_at_95pct_kept"] = hnsw >= 2.5 * flat and bool(kept("100k-hnsw"))
    big, small = rate("1m"), rate("12k")
    if big is not None and small:
        one = cats["1m"]
        fresh = (one.get("freshness") or {}).get("p99_ms")
        worker = max((one["pipeline"].get("rss_mb") or {}).get("worker", [0.0]) or [0.0])
        out.update({
            "1m_ge_0.9x_12k": big >= 0.9 * small,
            "1m_recall_kept_ge_95pct": kept("1m"),
            "1m_freshness_p99_le_1000ms": None if fresh is None else fresh <= 1000,
            "1m_worker_rss_le_2gb": worker <= 2048 if worker else None,
        })
    return out


def scale_table(result: Mapping[str, Any]) -> list[str]:
    """Markdown lines: per catalog its index, recall kept and memory, and the ratios."""
    rows = ["", "Catalog sizes (index; recall kept = overlap with exact search's merged top-50; "
            "resident memory at the end of the pipeline's sweep):", "",
            "| catalog | index | recall kept | pipeline c/s | against | worker MiB | "
            "Milvus MiB | Redis MiB: histories (bytes/user) / after the pipeline |",
            "|---|---|---|---|---|---|---|---|"]
    for label, cat in result["catalogs"].items():
        pipe = cat["pipeline"]
        base = LARGE.get(label)
        other = result["catalogs"].get(base or "", {}).get("pipeline")
        ratio = (f"{pipe['max_sustained_cps'] / other['max_sustained_cps']:.2f}x {base}"
                 if other and other["max_sustained_cps"] else "–")
        rss = pipe.get("rss_mb") or {}
        red, after = cat.get("redis") or {}, cat.get("redis_after_pipeline") or {}
        kept = cat.get("recall_kept")
        rows.append(
            f"| {label} | {cat.get('index', 'FLAT')} | "
            f"{'–' if kept is None else f'{100 * kept:.1f}%'} | "
            f"{pipe['max_sustained_cps']:,.0f} | {ratio} | "
            f"{', '.join(f'{v:,.0f}' for v in rss.get('worker', [])) or '–'} | "
            f"{rss.get('milvus', 0):,.0f} | {red.get('used_mb', 0):,.0f} "
            f"({red.get('bytes_per_user', 0):,}) / {after.get('used_mb', 0):,.0f} |")
    return rows
