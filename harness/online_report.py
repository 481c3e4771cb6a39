"""`make online-eval` outputs: the trainer's exports, seeds combined, JSON, a plot, a table."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("most_popular", "batch", "realtime", "continuous")
RATIOS = (("continuous", "realtime"), ("continuous", "most_popular"), ("realtime", "batch"))


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
            out[key] = [{**s, "hitrate@50": statistics.fmean(
                _numbers([run[key][i]["hitrate@50"] for run in rows]))}
                for i, s in enumerate(first)]
        elif numbers and len(numbers) == len(values):
            same = all(v == first for v in values)  # one seed, or a count every run shares
            out[key] = first if same else statistics.fmean(numbers)
            spread[key] = [min(numbers), max(numbers)]
        else:
            out[key] = first
    out["spread"] = spread
    return out


def combine(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant the mean over seeds (and `spread`), and the HR@50 ratios of the means."""
    out: dict[str, Any] = {v: _mean_dict([run[v] for run in runs]) for v in VARIANTS}
    out["ratios"] = ratios(out)
    return out


def ratios(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """continuous/realtime, continuous/most_popular, realtime/batch on HR@50."""
    out: dict[str, float | None] = {}
    for top, bottom in RATIOS:
        a, b = variants[top].get("hitrate@50"), variants[bottom].get("hitrate@50")
        out[f"{top}/{bottom}"] = a / b if a is not None and b else None
    a = variants["continuous"].get("hitrate@50")
    b = (variants["continuous"].get("realtime_at_served") or {}).get("hitrate@50")
    out["continuous/realtime_at_served"] = a / b if a is not None and b else None
    return out


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.2f}"


def _span(low: Any, high: Any, digits: int = 2) -> str:
    return "" if low == high else f" ({100 * low:.{digits}f}–{100 * high:.{digits}f})"


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def markdown_table(result: Mapping[str, Any]) -> str:
    """Per variant HR@20/50 and new-item HR@50 in percent (seed range in brackets), the ratios,
    the trainer figures and HR@50 per slice of data time."""
    lines = ["| variant | HR@20 % | HR@50 % | new-item HR@50 % | evaluated clicks |",
             "|---|---|---|---|---|"]
    for name in VARIANTS:
        v = result[name]
        lo, hi = v["spread"].get("hitrate@50", [None, None])
        lines.append(f"| {name} | {_pct(v['hitrate@20'])} | {_pct(v['hitrate@50'])}"
                     f"{_span(lo, hi) if lo is not None else ''} | "
                     f"{_pct(v['new_item_hitrate@50'])} | {v['evaluated_clicks']:,.0f} |")
    c = result["continuous"]
    lines += ["", "HR@50 ratios: " + ", ".join(
        f"{k} {'–' if r is None else f'{r:.2f}'}" for k, r in result["ratios"].items()), ""]
    if c.get("trainer"):
        lines.append(f"Trainer: {c.get('versions', 0):.0f} versions, "
                     f"{c.get('samples_per_s') or 0:,.0f} samples/s, median export lag "
                     f"{c.get('export_lag_s') or 0:.1f} s; ")
    else:
        lines.append("No trainer (--no-trainer): `continuous` is the realtime worker itself. ")
    lines[-1] += (f"{c.get('missing_recommendations', 0):.0f} recommendations missing, "
                  f"{c.get('same_batch_clicks', 0):.0f} clicks answered in their previous "
                  f"click's micro-batch (served the list before it), "
                  f"{c.get('seen_items_per_served_list') or 0:.1f} already-seen items per served "
                  "list (removed before scoring).")
    at = c.get("realtime_at_served") or {}
    lines += ["", f"The initial model on the histories the worker's lists were made from: HR@50 "
              f"{_pct(at.get('hitrate@50'))} % (continuous {_pct(c.get('hitrate@50'))} %)."]
    lines += ["", "HR@50 % per slice of the evaluated clicks (data time):", "",
              "| slice | " + " | ".join(VARIANTS) + " |", "|---" * (len(VARIANTS) + 1) + "|"]
    for i, s in enumerate(result["most_popular"]["slices"]):
        cells = " | ".join(_pct(result[v]["slices"][i]["hitrate@50"]) for v in VARIANTS)
        lines.append(f"| {_day(s['from_ts'])} – {_day(s['to_ts'])} | {cells} |")
    return "\n".join(lines) + "\n"


def plot(result: Mapping[str, Any], path: Path) -> None:
    """HR@50 per slice against data time, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in VARIANTS:
        slices = result[name]["slices"]
        xs = np.array([int((s["from_ts"] + s["to_ts"]) / 2) for s in slices],
                      dtype="datetime64[s]")
        ax.plot(xs, [100 * s["hitrate@50"] for s in slices], marker="o", label=name)
    at_served = (result["continuous"].get("realtime_at_served") or {}).get("slices")
    if at_served:
        xs = np.array([int((s["from_ts"] + s["to_ts"]) / 2) for s in at_served],
                      dtype="datetime64[s]")
        ax.plot(xs, [100 * s["hitrate@50"] for s in at_served], linestyle="--", color="gray",
                label="initial model on the histories the worker's lists were made from")
    ax.set_xlabel("data time (middle of each equal-count slice of evaluated clicks)")
    ax.set_ylabel("HR@50, %")
    trainer = "" if result["continuous"].get("trainer") else ", no trainer"
    ax.set_title(f"{Path(result['data']).name}: prequential HR@50 after the cut "
                 f"({len(result['runs'])} seed(s){trainer})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: Mapping[str, Any], out: Path) -> list[Path]:
    """The JSON at `out`, the plot and the table beside it (.png, .md); the paths written."""
    out.write_text(json.dumps(result, indent=1))
    table = out.with_suffix(".md")
    table.write_text(markdown_table(result))
    image = out.with_suffix(".png")
    plot(result, image)
    return [out, table, image]


def summary_line(result: Mapping[str, Any]) -> str:
    """`ONLINE {json}`: HR@50 per variant, the ratios and the run's figures."""
    brief = {f"{v}_hr50": result[v]["hitrate@50"] for v in VARIANTS}
    brief.update({k: result[k] for k in ("future_clicks", "rate", "elapsed_s", "ratios")})
    brief["missing"] = result["continuous"].get("missing_recommendations")
    brief["trainer_versions"] = result["continuous"].get("versions")
    return "ONLINE " + json.dumps(brief)
