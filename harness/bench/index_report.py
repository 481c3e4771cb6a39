"""`python -m harness.bench.index_sweep` outputs besides the JSON: a markdown table of every
point and a plot of recall kept against the search ceiling, one panel per catalog size."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def markdown(result: Mapping[str, Any]) -> str:
    lines = [f"Index sweep on Milvus {result['server']}: model {result['model']}, "
             f"{result['users']:,} test users; chosen: "
             f"the fastest point keeping >= {result['kept_at_least']:.0%} of exact search's "
             "merged top-50.", ""]
    for label, size in result["sizes"].items():
        chosen = size.get("chosen") or {}
        lines += [f"### {label}: {size['items']:,} items", "",
                  "| index | built with | searched with | consistency | recall kept | "
                  "ceiling users/s (1 / 2 threads) | index built in s | Milvus RSS MiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in size["points"]:
            mark = " **chosen**" if p == chosen else ""
            lines.append(f"| {p['index']}{mark} | {_params(p['build'])} | "
                         f"{_params(p['search'])} | {p['consistency']} | "
                         f"{p['recall_kept']:.4f} | "
                         f"{p['ceiling_ups']:,.0f} ({p['threads_1']:,.0f} / "
                         f"{p.get('threads_2', 0):,.0f}) | {p['build_s']} | "
                         f"{p.get('milvus_rss_mb', '–')} |")
        flat = next((p for p in size["points"] if p["index"] == "FLAT"
                     and p["consistency"] == "Eventually"), None)
        if chosen and flat:
            ratio = chosen["ceiling_ups"] / flat["ceiling_ups"]
            ratio = chosen["ceiling_ups"] / flat["ceiling_ups"]
            lines += ["", f"Chosen against FLAT: {ratio:.1f}x the users/s at "
                      f"{chosen['recall_kept']:.1%} recall kept."]
        lines.append("")
    return "\n".join(lines)


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items()) or "–"


def plot(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["sizes"]
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for ax, (label, size) in zip(axes[0], sizes.items(), strict=True):
        for build in dict.fromkeys(f"{p['index']} {_params(p['build'])}"
                                   for p in size["points"]):
            pts = [p for p in size["points"] if f"{p['index']} {_params(p['build'])}" == build
                   and p["consistency"] == "Eventually"]
            ax.plot([p["ceiling_ups"] for p in pts], [p["recall_kept"] for p in pts],
                    "o-" if len(pts) > 1 else "s", label=build.replace(" –", ""))
            for p in pts:
                if p["search"]:
                    ax.annotate(str(next(iter(p["search"].values()))),
                                (p["ceiling_ups"], p["recall_kept"]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        ax.axhline(result["kept_at_least"], color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{label}: {size['items']:,} items (labels: nprobe or ef)")
        ax.set_xlabel("search ceiling, users/s")
        ax.set_ylabel("recall kept (vs exact merged top-50)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: Mapping[str, Any], out: Path) -> None:
    out.with_suffix(".md").write_text(markdown(result))
    plot(result, out.with_suffix(".png"))
