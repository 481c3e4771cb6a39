"""harness.online_report: the trainer's exports, seeds combined, ratios, the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.online_report import (
    VARIANTS,
    combine,
    markdown_table,
    summary_line,
    trainer_stats,
    write,
)


def variant(hr50: float, hr20: float = 0.1, slices: tuple[float, ...] = (0.2, 0.4),
            **extra: Any) -> dict[str, Any]:
    return {"hitrate@20": hr20, "hitrate@50": hr50, "new_item_hitrate@50": None,
            "evaluated_clicks": 10, "new_item_clicks": 0,
            "slices": [{"from_ts": 0.0 + i, "to_ts": 1.0 + i, "clicks": 5, "hitrate@50": h}
                       for i, h in enumerate(slices)], **extra}


def run(mp: float, batch: float, realtime: float, cont: float, served: float,
        slices: tuple[float, ...] = (0.2, 0.4)) -> dict[str, Any]:
    return {"most_popular": variant(mp), "batch": variant(batch), "realtime": variant(realtime),
            "continuous": variant(cont, slices=slices, trainer=True, note="x",
                                  realtime_at_served={"hitrate@50": served})}


def test_combine_means_spreads_slices_and_ratios() -> None:
    out = combine([run(0.2, 0.1, 0.15, 0.3, 0.2, (0.2, 0.4)),
                   run(0.2, 0.1, 0.25, 0.1, 0.2, (0.4, 0.0))])
    cont = out["continuous"]
    assert abs(cont["hitrate@50"] - 0.2) < 1e-12
    assert cont["spread"]["hitrate@50"] == [0.1, 0.3]
    assert cont["trainer"] is True and cont["note"] == "x"  # not numbers: the first run's
    assert [s["hitrate@50"] for s in cont["slices"]] == [0.30000000000000004, 0.2]
    assert cont["realtime_at_served"]["hitrate@50"] == 0.2
    assert out["batch"]["evaluated_clicks"] == 10  # the same in every run: kept as it is
    assert out["batch"]["spread"]["evaluated_clicks"] == [10.0, 10.0]
    r = out["ratios"]
    assert abs(r["continuous/realtime"] - 1.0) < 1e-12
    assert abs(r["continuous/most_popular"] - 1.0) < 1e-12
    assert abs(r["realtime/batch"] - 2.0) < 1e-12
    assert abs(r["continuous/realtime_at_served"] - 1.0) < 1e-12


def test_ratio_against_zero_is_none() -> None:
    assert combine([run(0.0, 0.0, 0.1, 0.1, 0.0)])["ratios"]["continuous/most_popular"] is None


def export(root: Path, name: str, online: dict[str, Any] | None) -> None:
    (root / name).mkdir(parents=True)
    meta: dict[str, Any] = {"version": name}
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


def test_markdown_table_and_summary_line() -> None:
    result = {**combine([run(0.2, 0.1, 0.15, 0.3, 0.2)]), "data": "x.csv", "future_clicks": 9,
              "rate": 200.0, "elapsed_s": 1.0, "runs": [{}]}
    table = markdown_table(result)
    for name in VARIANTS:
        assert f"| {name} | 10.00 |" in table
    assert "| continuous | 10.00 | 30.00 | – | 10 |" in table
    assert "| 1970-01-01 – 1970-01-01 | 20.00 | 20.00 | 20.00 | 20.00 |" in table
    assert "continuous/realtime 2.00" in table
    line = summary_line(result)
    assert line.startswith("ONLINE ")
    assert json.loads(line[7:])["continuous_hr50"] == 0.3


def test_write_puts_json_table_and_plot_side_by_side(tmp_path: Path) -> None:
    result = {**combine([run(0.2, 0.1, 0.15, 0.3, 0.2)]), "data": "x.csv", "runs": [{}]}
    result["continuous"]["realtime_at_served"]["slices"] = result["realtime"]["slices"]
    paths = write(result, tmp_path / "online.json")
    assert [p.name for p in paths] == ["online.json", "online.md", "online.png"]
    assert json.loads(paths[0].read_text())["ratios"] == result["ratios"]
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
