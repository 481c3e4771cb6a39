"""`make online-eval` outputs: the trainer's exports, seeds combined, JSON (online_table: the
markdown table and the plot)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VARIANTS = ("most_popular", "batch", "realtime", "continuous", "itemcf", "served")
RATIOS = (("continuous", "realtime"), ("continuous", "most_popular"), ("realtime", "batch"),
          ("itemcf", "most_popular"), ("served", "continuous"), ("served", "itemcf"))
LEAK_KINDS = ("counts_ts", "model")


def _numbers(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values
            if isinstance(v, int | float) and not isinstance(v, bool)]


def trainer_stats(model_root: Path, initial: str) -> dict[str, Any]:
    """What the continuous trainer's exports say in their meta.json `online` objects: how many
    versions, median samples/s and export lag, samples seen, data time trained on, and how
    many name an existing version (or the initial one) as their `parent`."""
    metas = []
    for vdir in sorted(p for p in model_root.iterdir() if p.is_dir() and p.name != initial
                       and not p.name.startswith(".")):
        meta_path = vdir / "meta.json"
        if meta_path.is_file():
            online = json.loads(meta_path.read_text()).get("online")
            if isinstance(online, dict):
                metas.append((vdir.name, online))
    names = {initial, *(name for name, _ in metas)}
    lags = _numbers([o.get("lag_s") for _, o in metas])
    rates = _numbers([o.get("samples_per_s") for _, o in metas])
    seen = _numbers([o.get("samples_seen") for _, o in metas])
    spans = [o.get("data_ts") for _, o in metas]
    lows = _numbers([s[0] for s in spans if isinstance(s, list) and len(s) == 2])
    highs = _numbers([s[1] for s in spans if isinstance(s, list) and len(s) == 2])
    return {
        "versions": len(metas),
        "samples_per_s": statistics.median(rates) if rates else None,
        "export_lag_s": statistics.median(lags) if lags else None,
        "export_lag_s_max": max(lags) if lags else None,
        "samples_seen": max(seen) if seen else None,
        "data_ts": [min(lows), max(highs)] if lows and highs else None,
        "parents_known": sum(o.get("parent") in names for _, o in metas),
    }


def trained_ts(model_root: Path, initial: str, past_ts: float) -> dict[str, float | None]:
    """Version -> the data time of the newest click it learned (`trained_ts_max` in its
    meta.json, or in its `online` object; None: not said). The initial version learned the
    past: `past_ts` unless its meta says otherwise."""
    out: dict[str, float | None] = {}
    for vdir in sorted(p for p in model_root.iterdir() if p.is_dir()
                       and not p.name.startswith(".")):
        meta_path = vdir / "meta.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        online = meta.get("online") if isinstance(meta.get("online"), dict) else {}
        value = meta.get("trained_ts_max", online.get("trained_ts_max"))
        out[vdir.name] = float(value) if _numbers([value]) else None
    if out.get(initial) is None:
        out[initial] = past_ts
    return out


def _mean(values: Sequence[Any]) -> float | None:
    numbers = _numbers(values)
    return statistics.fmean(numbers) if numbers else None


def _mean_dict(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Numbers: mean, with `spread` [min, max]; anything else: the first run's value."""
    out: dict[str, Any] = {}
    spread: dict[str, list[float]] = {}
    for key, first in rows[0].items():
        values = [row.get(key) for row in rows]
        numbers = _numbers(values)
        dicts = [v for v in values if isinstance(v, dict)]
        if len(dicts) == len(values):
            out[key] = _mean_dict(dicts)
        elif key == "slices":
            out[key] = [{**s, "hitrate@50": _mean(
                [run[key][i]["hitrate@50"] for run in rows])} for i, s in enumerate(first)]
        elif numbers and len(numbers) == len(values):
            same = all(v == first for v in values)  # one seed, or a count every run shares
            out[key] = first if same else statistics.fmean(numbers)
            spread[key] = [min(numbers), max(numbers)]
        else:
            out[key] = first
    out["spread"] = spread
    return out


def combine(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant the mean over seeds (and `spread`), the HR@50 ratios of the means, and the
    leak counts summed over the seeds."""
    out: dict[str, Any] = {v: _mean_dict([run[v] for run in runs]) for v in VARIANTS}
    out["ratios"] = ratios(out)
    out["leaks"] = {kind: {k: sum(int(run["leaks"][kind][k]) for run in runs)
                           for k in ("checked", "violations", "unknown")}
                    for kind in LEAK_KINDS}
    return out


def ratios(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """HR@50 ratios of the RATIOS pairs, and continuous/realtime_at_served."""
    out: dict[str, float | None] = {}
    for top, bottom in RATIOS:
        a, b = variants[top].get("hitrate@50"), variants[bottom].get("hitrate@50")
        out[f"{top}/{bottom}"] = a / b if a is not None and b else None
    a = variants["continuous"].get("hitrate@50")
    b = (variants["continuous"].get("realtime_at_served") or {}).get("hitrate@50")
    out["continuous/realtime_at_served"] = a / b if a is not None and b else None
    return out


def summary_line(result: Mapping[str, Any]) -> str:
    """`ONLINE {json}`: HR@50 per variant, the ratios, the leak counts and the run's figures."""
    brief: dict[str, Any] = {f"{v}_hr50": result[v]["hitrate@50"] for v in VARIANTS}
    brief.update({k: result.get(k) for k in ("future_clicks", "rate", "watermark", "elapsed_s",
                                              "ratios")})
    brief["leak_violations"] = {k: result["leaks"][k]["violations"] for k in LEAK_KINDS}
    brief["missing"] = result["continuous"].get("missing_recommendations")
    brief["trainer_versions"] = result["continuous"].get("versions")
    return "ONLINE " + json.dumps(brief)

