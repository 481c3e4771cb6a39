"""`make online-eval` outputs: the markdown table, the plot of HR@50 per slice, the files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.online.report import LEAK_KINDS, VARIANTS


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.2f}"


def _span(low: Any, high: Any, digits: int = 2) -> str:
    return "" if low == high else f" ({100 * low:.{digits}f}–{100 * high:.{digits}f})"


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _half(v: Mapping[str, Any], name: str) -> str:
    h = (v.get("halves") or {}).get(name) or {}
    return " / ".join(_pct(h.get(k)) for k in ("hitrate@20", "hitrate@50",
                                               "new_item_hitrate@50"))


def _lag(seconds: Any) -> str:
    if seconds is None:
        return "–"
    return f"{seconds / 3600:.1f} h" if abs(seconds) >= 3600 else f"{seconds:.0f} s"


def header(result: Mapping[str, Any]) -> list[str]:
    """What was run: data, cut, clicks, seeds, watermark, export cadence, time."""
    every = result.get("export_every")
    cadence = (f"every {every:,} learned clicks" if every
               else f"every {result.get('export_s', 0):g} s")
    warmup = (result.get("trainer_settings") or {}).get("online_warmup_steps")
    if warmup is not None:
        cadence += f", warm-up {warmup} steps"
    return [
        f"Data `{Path(str(result['data'])).name}`"
        + (f" (first {result['limit']:,} clicks)" if result.get("limit") else "")
        + f", cut at {_day(result['cut_ts'])}: {result.get('future_clicks', 0):,} future clicks, "
        f"{result['evaluated_clicks']:,} evaluated, "
        f"{100 * result.get('new_item_share', 0):.1f}% on items new at the cut. "
        f"Seeds {', '.join(str(s) for s in result.get('seeds', []))}; watermark "
        f"{'on' if result.get('watermark') else 'off'}; trainer exports {cadence}; replay at "
        f"most {result.get('rate', 0):g} clicks/s; {result.get('elapsed_s', 0) / 60:.1f} min.",
        ""] + [replay_line(run) for run in result.get("runs", []) if run.get("replay")] + [""]


def replay_line(run: Mapping[str, Any]) -> str:
    """One seed's replay: pace, round trips, the bound on running ahead of W."""
    r = run["replay"]
    rtt = r.get("round_trip_s") or {}
    ahead = r.get("ahead_s") or {}
    return (f"Seed {run.get('seed')}: {r.get('rate_sent', 0):g} clicks/s sent, round trip "
            f"(click sent to its recommendation back) median {_secs(rtt.get('p50'))}, p90 "
            f"{_secs(rtt.get('p90'))}; clicks sent at most {_bound(ahead.get('median'))} "
            f"(median; widest {_bound(ahead.get('widest'))}) of data time after W; "
            f"{run.get('phases_s', {}).get('replay_s', 0) / 60:.1f} min replay.")


def _bound(x: Any) -> str:
    return "unbounded" if x is None else _lag(x)


def _secs(x: Any) -> str:
    return "–" if x is None else f"{x:.2f} s"


def variant_rows(result: Mapping[str, Any]) -> list[str]:
    """One row per variant: the whole future, then each half (HR@20 / HR@50 / new-item HR@50)."""
    lines = ["| variant | HR@20 % | HR@50 % | new-item HR@50 % | 1st half: HR@20 / HR@50 / new "
             "% | 2nd half: HR@20 / HR@50 / new % | evaluated clicks |",
             "|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        v = result[name]
        lo, hi = v.get("spread", {}).get("hitrate@50", [None, None])
        off = f" ({v['unavailable']:,.0f} without a list)" if v.get("unavailable") else ""
        lines.append(f"| {name} | {_pct(v['hitrate@20'])} | {_pct(v['hitrate@50'])}"
                     f"{_span(lo, hi) if lo is not None else ''} | "
                     f"{_pct(v['new_item_hitrate@50'])} | {_half(v, 'first')} | "
                     f"{_half(v, 'second')} | {v['evaluated_clicks']:,.0f}{off} |")
    return lines


def leak_rows(result: Mapping[str, Any]) -> list[str]:
    """Per kind: clicks checked, violations, unknown, median data-time lag of what served."""
    lines = ["Leak check (every evaluated click served a worker record; a violation: the "
             "record's co-occurrence counts or its model version held a click later than the "
             "one scored). Lags are medians in data time: how far the newest click the "
             "counts or the model held was behind the click scored, and behind the click "
             "whose answer the list was (the learners' staleness when the list was made):", "",
             "| kind | checked | violations | unknown | lag behind the scored click | "
             "behind the answered click |", "|---|---|---|---|---|---|"]
    runs = result.get("runs") or [{}]
    for kind in LEAK_KINDS:
        total = result["leaks"][kind]
        mine = [run.get("leaks", {}).get(kind, {}) for run in runs]
        lag = ", ".join(_lag(x.get("lag_s_median")) for x in mine)
        behind = ", ".join(_lag(x.get("behind_answered_click_s_median")) for x in mine)
        lines.append(f"| {kind} | {total['checked']:,} | {total['violations']:,} | "
                     f"{total['unknown']:,} | {lag} | {behind} |")
    return lines


def markdown_table(result: Mapping[str, Any]) -> str:
    """Header, the variants (whole future and halves, seed range in brackets), the ratios, the
    leak check, the trainer figures and HR@50 per slice of data time."""
    c = result["continuous"]
    lines = header(result) + variant_rows(result)
    lines += ["", "HR@50 ratios: " + ", ".join(
        f"{k} {'–' if r is None else f'{r:.2f}'}" for k, r in result["ratios"].items()), ""]
    lines += leak_rows(result) + [""]
    if c.get("trainer"):
        lines.append(f"Trainer: {c.get('versions', 0):.0f} versions, "
                     f"{c.get('samples_per_s') or 0:,.0f} samples/s, median export lag "
                     f"{c.get('export_lag_s') or 0:.1f} s; ")
    else:
        lines.append("No trainer (--no-trainer): `continuous` is the realtime worker itself. ")
    lines[-1] += (f"{c.get('missing_recommendations', 0):.0f} recommendations missing, "
                  f"{c.get('same_batch_clicks', 0):.0f} clicks answered in their previous "
                  f"click's micro-batch, {c.get('served_from_cut', 0):.0f} served the lists at "
                  f"the cut, {c.get('seen_items_per_served_list') or 0:.1f} already-seen items "
                  "per served list (removed before scoring).")
    at = c.get("realtime_at_served") or {}
    lines += ["", f"The initial model on the histories the worker's lists were made from: HR@50 "
              f"{_pct(at.get('hitrate@50'))} % (continuous {_pct(c.get('hitrate@50'))} %)."]
    lines += ["", "HR@50 % per slice of the evaluated clicks (data time):", "",
              "| slice | " + " | ".join(VARIANTS) + " |", "|---" * (len(VARIANTS) + 1) + "|"]
    for i, s in enumerate(result["most_popular"]["slices"]):
        cells = " | ".join(_pct(result[v]["slices"][i]["hitrate@50"]) for v in VARIANTS)
        lines.append(f"| {_day(s['from_ts'])} – {_day(s['to_ts'])} | {cells} |")
    return "\n".join(lines) + "\n"


def _xs(slices: list[dict[str, Any]]) -> np.ndarray:
    return np.array([int((s["from_ts"] + s["to_ts"]) / 2) for s in slices],
                    dtype="datetime64[s]")


def plot(result: Mapping[str, Any], path: Path) -> None:
    """HR@50 per slice against data time, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for name in VARIANTS:
        slices = result[name]["slices"]
        ys = [np.nan if s["hitrate@50"] is None else 100 * s["hitrate@50"] for s in slices]
        ax.plot(_xs(slices), ys, marker="o", label=name)
    at_served = (result["continuous"].get("realtime_at_served") or {}).get("slices")
    if at_served:
        ax.plot(_xs(at_served), [100 * s["hitrate@50"] for s in at_served], linestyle="--",
                color="gray", label="initial model on the histories the worker's lists were "
                "made from")
    ax.set_xlabel("data time (middle of each equal-count slice of evaluated clicks)")
    ax.set_ylabel("HR@50, %")
    trainer = "" if result["continuous"].get("trainer") else ", no trainer"
    mark = "watermark" if result.get("watermark") else "no watermark"
    ax.set_title(f"{Path(str(result['data'])).name}: prequential HR@50 after the cut "
                 f"({len(result['runs'])} seed(s), {mark}{trainer})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: Mapping[str, Any], out: Path) -> list[Path]:
    """The JSON at `out`, the plot and the table beside it (.png, .md); the paths written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    table = out.with_suffix(".md")
    table.write_text(markdown_table(result))
    image = out.with_suffix(".png")
    plot(result, image)
    return [out, table, image]
