"""harness.online.report and online_table: the trainer's exports, seeds combined, ratios, leak
counts, the table, the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.online.report import (
    VARIANTS,
    combine,
    summary_line,
    trained_ts,
    trainer_stats,
)
from harness.online.table import markdown_table, write


def variant(hr50: float | None, hr20: float = 0.1, slices: tuple[float, ...] = (0.2, 0.4),
            **extra: Any) -> dict[str, Any]:
    half = {"hitrate@20": hr20, "hitrate@50": hr50, "new_item_hitrate@50": None,
            "evaluated_clicks": 5, "new_item_clicks": 0, "from_ts": 0.0, "to_ts": 1.0}
    return {"hitrate@20": hr20, "hitrate@50": hr50, "new_item_hitrate@50": None,
            "evaluated_clicks": 10, "new_item_clicks": 0, "unavailable": 0,
            "halves": {"first": half, "second": {**half, "hitrate@50": 0.5}},
            "slices": [{"from_ts": 0.0 + i, "to_ts": 1.0 + i, "clicks": 5, "hitrate@50": h}
                       for i, h in enumerate(slices)], **extra}


def leaks(counts: int, model: int) -> dict[str, Any]:
    return {"at_cut": 1,
            "counts_ts": {"checked": 9, "violations": counts, "unknown": 0,
                          "lag_s_median": 30.0, "behind_answered_click_s_median": -4.0,
                          "examples": []},
            "model": {"checked": 9, "violations": model, "unknown": 1,
                      "lag_s_median": 7200.0, "behind_answered_click_s_median": None,
                      "examples": []}}


def run(mp: float, batch: float, realtime: float, cont: float, served: float,
        slices: tuple[float, ...] = (0.2, 0.4), leak: tuple[int, int] = (0, 0)
        ) -> dict[str, Any]:
    return {"most_popular": variant(mp), "batch": variant(batch), "realtime": variant(realtime),
            "continuous": variant(cont, slices=slices, trainer=True, note="x",
                                  realtime_at_served={"hitrate@50": served}),
            "itemcf": variant(0.25), "served": variant(0.3), "leaks": leaks(*leak)}


def test_combine_means_spreads_slices_ratios_and_leaks() -> None:
    out = combine([run(0.2, 0.1, 0.15, 0.3, 0.2, (0.2, 0.4), (2, 0)),
                   run(0.2, 0.1, 0.25, 0.1, 0.2, (0.4, 0.0), (1, 3))])
    cont = out["continuous"]
    assert abs(cont["hitrate@50"] - 0.2) < 1e-12
    assert cont["spread"]["hitrate@50"] == [0.1, 0.3]
    assert cont["trainer"] is True and cont["note"] == "x"  # not numbers: the first run's
    assert [s["hitrate@50"] for s in cont["slices"]] == [0.30000000000000004, 0.2]
    assert cont["halves"]["second"]["hitrate@50"] == 0.5
    assert cont["realtime_at_served"]["hitrate@50"] == 0.2
    assert out["batch"]["evaluated_clicks"] == 10  # the same in every run: kept as it is
    assert out["batch"]["spread"]["evaluated_clicks"] == [10.0, 10.0]
    r = out["ratios"]
    assert abs(r["continuous/realtime"] - 1.0) < 1e-12
    assert abs(r["continuous/most_popular"] - 1.0) < 1e-12
    assert abs(r["realtime/batch"] - 2.0) < 1e-12
    assert abs(r["served/continuous"] - 1.5) < 1e-12
    assert abs(r["continuous/realtime_at_served"] - 1.0) < 1e-12
    assert out["leaks"]["counts_ts"] == {"checked": 18, "violations": 3, "unknown": 0}
    assert out["leaks"]["model"] == {"checked": 18, "violations": 3, "unknown": 2}


def test_ratio_against_zero_or_a_missing_variant_is_none() -> None:
    one = run(0.0, 0.0, 0.1, 0.1, 0.0)
    one["itemcf"] = variant(None, slices=(0.1,))
    one["itemcf"]["slices"][0]["hitrate@50"] = None
    out = combine([one])
    assert out["ratios"]["continuous/most_popular"] is None
    assert out["ratios"]["itemcf/most_popular"] is None
    assert out["itemcf"]["slices"][0]["hitrate@50"] is None


def export(root: Path, name: str, online: dict[str, Any] | None, **top: Any) -> None:
    (root / name).mkdir(parents=True)
    meta: dict[str, Any] = {"version": name, **top}
    if online is not None:
        meta["online"] = online
    (root / name / "meta.json").write_text(json.dumps(meta))


def test_trainer_stats_read_the_online_objects_of_the_later_versions(tmp_path: Path) -> None:
    export(tmp_path, "v0", None)
    export(tmp_path, "v1", {"parent": "v0", "samples_seen": 100, "samples_per_s": 50.0,
                            "data_ts": [10, 20], "exported_at": 1.0, "lag_s": 4.0})
    export(tmp_path, "v2", {"parent": "v1", "samples_seen": 300, "samples_per_s": 70.0,
                            "data_ts": [15, 40], "exported_at": 2.0, "lag_s": 6.0})
    export(tmp_path, "v3", {"parent": "gone", "samples_seen": 400, "samples_per_s": 90.0,
                            "data_ts": [30, 50], "exported_at": 3.0, "lag_s": 11.0})
    (tmp_path / ".tmp-v4").mkdir()
    assert trainer_stats(tmp_path, "v0") == {
        "versions": 3, "samples_per_s": 70.0, "export_lag_s": 6.0, "export_lag_s_max": 11.0,
        "samples_seen": 400.0, "data_ts": [10.0, 50.0], "parents_known": 2}


def test_trainer_stats_without_exports(tmp_path: Path) -> None:
    export(tmp_path, "v0", None)
    stats = trainer_stats(tmp_path, "v0")
    assert stats["versions"] == 0 and stats["export_lag_s"] is None


def test_trained_ts_reads_each_versions_newest_learned_click(tmp_path: Path) -> None:
    export(tmp_path, "v0", None)
    export(tmp_path, "v1", {"parent": "v0"}, trained_ts_max=120.5, clicks_learned=3)
    export(tmp_path, "v2", {"parent": "v1", "trained_ts_max": 130})
    export(tmp_path, "v3", {"parent": "v2"})
    (tmp_path / ".tmp-v4").mkdir()
    assert trained_ts(tmp_path, "v0", 99.0) == {"v0": 99.0, "v1": 120.5, "v2": 130.0,
                                                 "v3": None}


def result_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {**combine(runs), "data": "x.csv", "future_clicks": 9, "evaluated_clicks": 10,
            "cut_ts": 0.0, "rate": 200.0, "elapsed_s": 60.0, "watermark": True,
            "export_every": 1000, "seeds": [1], "runs": runs}


def test_markdown_table_and_summary_line() -> None:
    result = result_of([run(0.2, 0.1, 0.15, 0.3, 0.2, leak=(0, 2))])
    table = markdown_table(result)
    for name in VARIANTS:
        assert f"| {name} | 10.00 |" in table
    assert "| continuous | 10.00 | 30.00 | – | 10.00 / 30.00 / – | 10.00 / 50.00 / – | 10 |" \
        in table
    assert "| 1970-01-01 – 1970-01-01 | 20.00 | 20.00 | 20.00 | 20.00 | 20.00 | 20.00 |" in table
    assert "continuous/realtime 2.00" in table
    assert "| model | 9 | 2 | 1 | 2.0 h | – |" in table
    assert "| counts_ts | 9 | 0 | 0 | 30 s | -4 s |" in table
    assert "watermark on; trainer exports every 1,000 learned clicks" in table
    line = summary_line(result)
    assert line.startswith("ONLINE ")
    brief = json.loads(line[7:])
    assert brief["continuous_hr50"] == 0.3 and brief["served_hr50"] == 0.3
    assert brief["leak_violations"] == {"counts_ts": 0, "model": 2}


def test_write_puts_json_table_and_plot_side_by_side(tmp_path: Path) -> None:
    result = result_of([run(0.2, 0.1, 0.15, 0.3, 0.2)])
    result["continuous"]["realtime_at_served"]["slices"] = result["realtime"]["slices"]
    result["itemcf"]["slices"][0]["hitrate@50"] = None  # a slice without lists: a gap
    paths = write(result, tmp_path / "out" / "online.json")
    assert [p.name for p in paths] == ["online.json", "online.md", "online.png"]
    assert json.loads(paths[0].read_text())["ratios"] == result["ratios"]
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
