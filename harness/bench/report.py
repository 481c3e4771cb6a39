"""`make bench` outputs besides the JSON: a markdown table and a latency-against-rate plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.bench.options import HEADLINE
from harness.bench.scale import scale_table
from harness.bench.sweep import MODES, P99_LIMIT_MS, STAGES


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{float(value):,.{digits}f}"
    return str(value)


def markdown_table(result: Mapping[str, Any]) -> str:
    """Per catalog: max sustained clicks/s and p50/p99 at it per mode, ceiling, freshness."""
    lines = [
        "| catalog | items | search ceiling users/s | pass-through c/s | naive c/s | "
        "pipeline c/s (p50 / p99 ms) | pipeline / naive | pipeline / ceiling | "
        "p99 at half rate ms | freshness p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, cat in result["catalogs"].items():
        pipe = cat["pipeline"]
        naive = cat["naive"]["max_sustained_cps"]
        ceiling = cat["search_ceiling_ups"]
        fresh = cat.get("freshness") or {}
        lines.append(
            f"| {label} | {_fmt(cat['catalog_items'])} | {_fmt(ceiling)} | "
            f"{_fmt(result['passthrough']['max_sustained_cps'])} | {_fmt(naive)} | "
            f"{_fmt(pipe['max_sustained_cps'])} ({_fmt(pipe['p50_ms'], 1)} / "
            f"{_fmt(pipe['p99_ms'], 1)}) | "
            f"{_fmt(pipe['max_sustained_cps'] / naive, 1) if naive else '–'}x | "
            f"{_fmt(100 * pipe['max_sustained_cps'] / ceiling) if ceiling else '–'}% | "
            f"{_fmt(cat.get('half_rate_p99_ms'), 1)} | "
            f"{_fmt(fresh.get('p50_ms'), 1)} / {_fmt(fresh.get('p99_ms'), 1)} |")
    stages = result.get("stages_ms") or {}
    if stages:
        lines += ["", "Pipeline stage means per micro-batch at its maximum sustained rate "
                  f"({result['catalog_items']:,} items), ms:", "",
                  "| " + " | ".join(STAGES) + " |",
                  "|" + "---|" * len(STAGES),
                  "| " + " | ".join(_fmt(stages.get(s), 1) for s in STAGES) + " |"]
    cores = result["pipeline"].get("cpu_cores") or {}
    if cores:
        lines += ["", "Cores busy at the pipeline's maximum sustained rate (of "
                  f"{result['machine']['cpus']}): " + ", ".join(
                      f"{name} {_fmt(v, 2)}" for name, v in cores.items())]
    if result.get("two_workers"):
        two = result["two_workers"]
        lines += ["", f"Two workers in one group ({result['catalog_items']:,} items): "
                  f"{_fmt(two['max_sustained_cps'])} clicks/s sustained "
                  f"(p50 {_fmt(two['p50_ms'], 1)} / p99 {_fmt(two['p99_ms'], 1)} ms) against "
                  f"{_fmt(result['pipeline']['max_sustained_cps'])} for one."]
    variants = result["catalogs"].get(HEADLINE, {}).get("variants") or {}
    if variants:
        lines += ["", f"Pipeline variants in the same run ({result['catalog_items']:,} items; "
                  "settings changed from the run's own):", "",
                  "| pipeline | sustained c/s (p50 / p99 ms) | against the run's own | "
                  + " | ".join(STAGES) + " | worker / redis cores |",
                  "|---|---|---|" + "---|" * len(STAGES) + "---|"]
        own = result["pipeline"]["max_sustained_cps"]
        for name, run in [("the run's own", result["pipeline"]), *variants.items()]:
            stage = run.get("stages_ms") or {}
            cores = run.get("cpu_cores") or {}
            lines.append(
                f"| {name} | {_fmt(run['max_sustained_cps'])} ({_fmt(run['p50_ms'], 1)} / "
                f"{_fmt(run['p99_ms'], 1)}) | {_fmt(run['max_sustained_cps'] / own, 2)} | "
                + " | ".join(_fmt(stage.get(s), 1) for s in STAGES)
                + f" | {_fmt(cores.get('worker'), 2)} / {_fmt(cores.get('redis'), 2)} |")
    if len(result["catalogs"]) > 1:
        lines += scale_table(result)
    lines += ["", "Targets on the headline figures: " + ", ".join(
        f"{name} {'yes' if ok else ('not measured' if ok is None else 'NO')}"
        for name, ok in result["targets"].items())]
    return "\n".join(lines) + "\n"


def plot(result: Mapping[str, Any], path: Path) -> None:
    """p50 and p99 latency against offered rate for the three modes (headline catalog)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = {"passthrough": "tab:green", "naive": "tab:red", "pipeline": "tab:blue"}
    for mode in MODES:
        sweep = list({s["offered_cps"]: s for s in result[mode]["sweep"]}.values())  # last run
        rates = [s["offered_cps"] for s in sweep]
        for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
            ax.plot(rates, [s[key] for s in sweep], style, marker="o", color=colors[mode],
                    label=f"{mode} {key[:3]}")
        lost = [s for s in sweep if s["lost"]]
        if lost:
            ax.scatter([s["offered_cps"] for s in lost], [s["p99_ms"] for s in lost],
                       marker="x", s=80, color=colors[mode])
    ax.axhline(P99_LIMIT_MS, color="gray", linewidth=0.8)
    ax.annotate(f"p99 limit {P99_LIMIT_MS:.0f} ms", (0.99, P99_LIMIT_MS), ha="right",
                va="bottom", color="gray", xycoords=("axes fraction", "data"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered clicks/s (open loop)")
    ax.set_ylabel("click produced -> answer consumed, ms")
    ax.set_title(f"{result['catalog_items']:,} items, {result['users']:,} users "
                 f"({'quick' if result.get('quick') else 'full'} run; x: clicks lost)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
