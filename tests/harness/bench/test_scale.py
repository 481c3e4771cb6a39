"""harness.bench.scale: the large-catalog targets and table from a bench result."""

from __future__ import annotations

from typing import Any

from harness.bench.scale import scale_table, scale_targets


def catalog(cps: float, kept: float | None = None, fresh_p99: float | None = None,
            worker_mb: float = 500.0, index: str = "FLAT") -> dict[str, Any]:
    return {"index": index, "recall_kept": kept, "freshness": {"p99_ms": fresh_p99},
            "pipeline": {"max_sustained_cps": cps, "rss_mb": {"worker": [worker_mb],
                                                              "milvus": 900.0}},
            "redis": {"used_mb": 30.0, "bytes_per_user": 600},
            "redis_after_pipeline": {"used_mb": 45.0}}


def test_each_target_is_a_ratio_within_the_run() -> None:
    result = {"catalogs": {
        "12k": catalog(300), "100k": catalog(100),
        "100k-hnsw": catalog(260, kept=0.975, index="HNSW"),
        "1m": catalog(280, kept=0.96, fresh_p99=600.0, worker_mb=900.0, index="HNSW")}}
    assert scale_targets(result) == {
        "100k_hnsw_ge_2.5x_flat_at_95pct_kept": True, "1m_ge_0.9x_12k": True,
        "1m_recall_kept_ge_95pct": True, "1m_freshness_p99_le_1000ms": True,
        "1m_worker_rss_le_2gb": True}
    result["catalogs"]["1m"] = catalog(250, kept=0.94, fresh_p99=1200.0, worker_mb=2100.0)
    result["catalogs"]["100k-hnsw"]["recall_kept"] = 0.9  # fast but not kept
    assert not any(scale_targets(result).values())


def test_targets_of_catalogs_not_run_are_left_out() -> None:
    assert scale_targets({"catalogs": {"12k": catalog(300)}}) == {}
    only = scale_targets({"catalogs": {"12k": catalog(300), "1m": catalog(290)}})
    assert only["1m_ge_0.9x_12k"] is True and only["1m_recall_kept_ge_95pct"] is None


def test_table_rows_compare_each_large_catalog_with_its_base() -> None:
    result = {"catalogs": {"12k": catalog(300), "1m": catalog(270, kept=0.963,
                                                                index="HNSW")}}
    rows = scale_table(result)
    assert rows[-2].startswith("| 12k | FLAT | – | 300 | – | 500 | 900 | 30 (600) / 45 |")
    assert rows[-1].startswith("| 1m | HNSW | 96.3% | 270 | 0.90x 12k |")
