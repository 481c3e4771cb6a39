"""`python -m harness.bench.versus --rev REV`: the worker's CPU per click against an earlier
commit, measured in one run.

Exports REV's tree (`git archive`) into a temporary directory that shares this checkout's
`artifacts/` (the same model and cached catalog), then runs `python -m harness.bench` of REV's
tree and of this one, one after the other, with the same quick options: the 12k catalog, the
pass-through and pipeline modes, the same rate steps. Each tree's workers run their own code and
their own settings defaults, under the same click producer (`--click-linger-ms`; an earlier
tree's load generator is edited to it). `--new-arg` passes more options to this tree's bench
only (for example `--variant channels=mind` to add MIND alone beside the default pipeline).
`--rounds N` runs both benches N times, alternating: single runs on a small machine spread
widely.

For each mode it prints, at every offered rate that both sustained (first round), the worker's
cores and its CPU per click (cores / clicks per second, in ms) side by side with their ratio,
and each one's figure at its own highest sustained rate; then each round's highest sustained
rates, their ratio and the median. Writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.bench.options import BenchEnv

QUICK = ["--catalogs", "12k", "--modes", "passthrough,pipeline"]


def export_tree(rev: str, dest: Path) -> None:
    """REV's files in `dest`, with this checkout's artifacts/ linked in."""
    archive = subprocess.run(["git", "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    (dest / "artifacts").symlink_to(Path("artifacts").resolve())


#: Where earlier trees' load generators set their producer's linger (before BENCH_CLICK_LINGER_MS).
OLD_LOADS = ("harness/load.py", "harness/bench/load.py")
OLD_LINGER = "make_producer(settings.kafka_bootstrap, settings=settings, linger_ms=2)"


def same_linger(tree: Path, linger_ms: int) -> bool:
    """Give an earlier tree's click producer `linger_ms` (trees with BENCH_CLICK_LINGER_MS
    read it from the environment instead); whether a file was edited."""
    for name in OLD_LOADS:
        path = tree / name
        if path.exists() and OLD_LINGER in (text := path.read_text()):
            path.write_text(text.replace(OLD_LINGER, OLD_LINGER.replace(
                "linger_ms=2", f"linger_ms={linger_ms}")))
            return True
    return False


def run_bench(tree: Path, args: Sequence[str], log: Path, linger_ms: int) -> dict[str, Any]:
    """One `python -m harness.bench` of `tree`; its result (the JSON line it prints)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_QUICK": "1",
           "BENCH_CLICK_LINGER_MS": str(linger_ms)}
    with open(log, "wb") as out:  # a run of some modes only exits 1 after printing its result
        subprocess.run([sys.executable, "-m", "harness.bench", *args], cwd=tree, env=env,
                       stdout=out, stderr=subprocess.STDOUT, check=False)
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("BENCH partial run"):
            return dict(json.loads(line[line.index("{"):]))
    raise RuntimeError(f"no result line in {log}")


def runs(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each measured mode's run: pass-through, pipeline and any --variant runs."""
    out = {"passthrough": result["passthrough"]} if "passthrough" in result else {}
    cat = result.get("catalogs", {}).get("12k", {})
    if "pipeline" in cat:
        out["pipeline"] = cat["pipeline"]
    out.update({f"pipeline {name}": run for name, run in cat.get("variants", {}).items()})
    return out


def sweeps(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each measured mode's sweep steps."""
    return {mode: run.get("sweep", []) for mode, run in runs(result).items()}


def per_click(sweep: list[dict[str, Any]]) -> dict[float, tuple[float, float]]:
    """Offered rate -> (worker cores, worker CPU ms per click) of its first sustained step."""
    out: dict[float, tuple[float, float]] = {}
    for step in sweep:
        rate = round(float(step["offered_cps"]), 1)
        if step["sustained"] and rate not in out and step["sent_cps"] > 0:
            cores = float(step["cpu_cores"]["worker"])
            out[rate] = (cores, 1000.0 * cores / float(step["sent_cps"]))
    return out


def compare(old: dict[str, Any], new: dict[str, Any], rev: str) -> list[dict[str, Any]]:
    """Rows: per mode, every rate both sustained, then each one's highest sustained rate."""
    rows = []
    before, after = sweeps(old), sweeps(new)
    for mode, steps in after.items():
        base = per_click(before.get(mode.split()[0], []))
        now = per_click(steps)
        for rate in sorted(set(base) & set(now)):
            rows.append({"mode": mode, "rate": rate, rev: base[rate], "HEAD": now[rate],
                         "ratio": now[rate][1] / base[rate][1]})
        if base and now:
            top_old, top_new = max(base), max(now)
            rows.append({"mode": mode, "rate": f"highest sustained: {top_old:g} / {top_new:g}",
                         rev: base[top_old], "HEAD": now[top_new],
                         "ratio": now[top_new][1] / base[top_old][1]})
    return rows


def markdown(head: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A markdown table: the header cells, then one row of cells per line."""
    cells = ["| " + " | ".join(line) + " |\n" for line in [head, *lines]]
    return cells[0] + "|---" * len(head) + "|\n" + "".join(cells[1:])


def table(rows: list[dict[str, Any]], rev: str) -> str:
    return markdown(
        ["mode", "offered clicks/s", f"{rev}: worker cores, ms per click",
         "HEAD: worker cores, ms per click", "HEAD / REV per click"],
        [[r["mode"], str(r["rate"]), f"{r[rev][0]:.2f}, {r[rev][1]:.2f}",
          f"{r['HEAD'][0]:.2f}, {r['HEAD'][1]:.2f}", f"{r['ratio']:.2f}"] for r in rows])


def highest(result: dict[str, Any]) -> dict[str, float]:
    """Each measured mode's highest sustained clicks/s (0: none sustained)."""
    return {mode: float(run.get("max_sustained_cps") or 0) for mode, run in runs(result).items()}


def summary(rounds: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per mode of this tree: each round's highest sustained rates (REV's mode of the same
    first word, this tree's), their ratios and the median ratio; and each round's range of
    worker CPU per click (HEAD / REV) at the rates both sustained (`cpu_ratios`, JSON only)."""
    tops = [(highest(old), highest(new)) for old, new in rounds]
    equal = [[r for r in compare(old, new, "REV") if not isinstance(r["rate"], str)]
             for old, new in rounds]
    rows = []
    for mode in tops[0][1]:
        pairs = [(old.get(mode.split()[0], 0.0), new.get(mode, 0.0)) for old, new in tops]
        ratios = [now / base for base, now in pairs if base > 0]
        cpu = [[r["ratio"] for r in one if r["mode"] == mode] for one in equal]
        if ratios:
            rows.append({"mode": mode, "rates": pairs, "ratios": ratios,
                         "median": statistics.median(ratios),
                         "cpu_ratios": [(min(c), max(c)) if c else None for c in cpu]})
    return rows


def summary_table(rows: list[dict[str, Any]], rev: str) -> str:
    return markdown(
        ["mode", f"highest sustained clicks/s per round ({rev} / HEAD)", "HEAD / REV per round",
         "median"],
        [[r["mode"], "; ".join(f"{a:g} / {b:g}" for a, b in r["rates"]),
          ", ".join(f"{x:.2f}" for x in r["ratios"]), f"{r['median']:.2f}"] for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.versus", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rev", required=True, help="the earlier commit to measure against")
    p.add_argument("--out", default="versus.json", help="JSON out (and .md beside it)")
    p.add_argument("--model-root", default="artifacts/model", help="model both trees serve")
    p.add_argument("--pipeline-start", default="250", help="first pipeline rate, both trees")
    p.add_argument("--passthrough-start", default="340", help="first pass-through rate")
    p.add_argument("--factor", default="1.7", help="rate step factor, both trees")
    p.add_argument("--click-linger-ms", type=int, default=BenchEnv().click_linger_ms,
                   help="the click producer's linger in both trees (an earlier tree's load "
                   "generator is edited to it: its own was 2 ms)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run both benches this many times, alternating (REV, HEAD, REV, ...); "
                   "the summary gives each round's ratio of highest sustained rates and their "
                   "median")
    p.add_argument("--new-arg", action="append", default=[],
                   help="one more option for this tree's bench only (repeatable)")
    args = p.parse_args(argv)
    common = [*QUICK, "--model-root", args.model_root, "--factor", args.factor,
              "--pipeline-start", args.pipeline_start, "--passthrough-start",
              args.passthrough_start]
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="versus-", dir=".") as tmp:
        old_tree = Path(tmp)
        export_tree(args.rev, old_tree)
        edited = same_linger(old_tree, args.click_linger_ms)
        rounds = []
        for r in range(args.rounds):
            tag = f".r{r + 1}" if args.rounds > 1 else ""
            print(f"bench of {args.rev} (log {out.with_suffix(tag + '.old.log')})", flush=True)
            old = run_bench(old_tree, common, out.with_suffix(tag + ".old.log"),
                            args.click_linger_ms)
            print(f"bench of HEAD (log {out.with_suffix(tag + '.new.log')})", flush=True)
            new = run_bench(Path.cwd(), [*common, *args.new_arg], out.with_suffix(tag + ".new.log"),
                            args.click_linger_ms)
            rounds.append((old, new))
    old, new = rounds[0]
    rows = compare(old, new, args.rev)
    totals = summary(rounds)
    out.write_text(json.dumps({"rev": args.rev, "args": common, "new_args": args.new_arg,
                               "click_linger_ms": args.click_linger_ms,
                               "rev_load_edited": edited, "rows": rows, args.rev: old,
                               "HEAD": new, "summary": totals,
                               "more_rounds": [{args.rev: o, "HEAD": n} for o, n in rounds[1:]]},
                              indent=1))
    text = table(rows, args.rev) + "\n" + summary_table(totals, args.rev)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
