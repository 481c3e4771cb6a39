"""`make faults`: kill, stop and flood the real local system, then check every click.

One local stack (tansu, Redis with AOF, Milvus Lite) and one trained model serve every
scenario; workers are real `streams.worker` processes. Each scenario prints one line; the run
ends with `FAULTS {json}` and writes the full results (examples of every failure, logs of
unplanned worker exits) to --out. Exit code 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from harness.faults.runner import run
from harness.faults.scenarios import QUICK, SCENARIOS, Options
from harness.faults.world import World
from harness.options import EnvOptions, options_parser

TOTALS = ("clicks_sent", "click_sends_failed", "clicks_lost", "clicks_lost_by_broker",
          "recommendations_lost_by_broker",
          "history_errors", "history_duplicates", "seen_errors", "duplicate_recommendations",
          "duplicates_unexplained", "recommendations_missed_by_collector",
          "recommendation_errors", "recommendation_history_errors", "recommendation_item_errors",
          "recommendations_for_unsent_clicks", "hijacked_recommendations", "bad_inputs_sent",
          "bad_inputs_refused_by_broker", "bad_inputs_dead_lettered",
          "dead_letters_missed_by_collector",
          "valid_inputs_dead_lettered", "sigterm_unclean", "agent_crashes")


class FaultsEnv(EnvOptions):
    """`make faults` options (FAULTS_* variables)."""

    model_config = SettingsConfigDict(env_prefix="FAULTS_")

    quick: bool = Field(False, description=f"only {', '.join(QUICK)}, shorter phases")
    scenarios: str = Field("", description="comma-separated scenarios to run, of: "
                           + ", ".join(SCENARIOS) + " (default: all, or the quick ones)")
    rate: float = Field(100.0, description="valid clicks per second")
    users: int = Field(50, description="users per scenario")
    poison: int = Field(1200, description="bad messages in the flood")
    static: bool = Field(False, description="static group membership: "
                         "RECALL_GROUP_INSTANCE_ID=worker-N per worker (default: dynamic)")
    out: str = Field("faults-results.json", description="results file")
    dir: str = Field(".stack/faults", description="stack data and logs, wiped at start")
    model_dir: str = Field("", description="exported model to use (default: DIR-model, where "
                           "a small one is trained on the first run)")
    max_recovery_s: float = Field(10.0, description="fail a scenario whose partitions do not "
                                  "all answer within this many seconds of the fault's end")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = options_parser("harness.faults", __doc__, FaultsEnv())
    args = p.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        p.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    args.names = names or list(QUICK if args.quick else SCENARIOS)
    return args


def summarize(results: list[dict[str, Any]], world: World, elapsed: float) -> dict[str, Any]:
    totals = {k: sum(r.get(k, 0) for r in results) for k in TOTALS}
    failed = {r["name"]: r["failed"] for r in results if r["failed"]}
    return {
        "scenarios": [r["name"] for r in results],
        **totals,
        "worker_crashes_unplanned": len(world.crashes),
        "max_recovery_s": max((r["recovery_s"] for r in results), default=0.0),
        "recovery_s": {r["name"]: r["recovery_s"] for r in results},
        "failed_checks": failed,
        "passed": not failed and not world.crashes,
        "elapsed_s": round(elapsed, 1),
    }


def line(n: int, total: int, r: dict[str, Any]) -> str:
    verdict = "ok" if not r["failed"] else "FAIL " + ",".join(r["failed"])
    bad = (f" bad {r['bad_inputs_dead_lettered']}/{r['bad_inputs_sent']} dead-lettered"
           f" ({r['bad_inputs_refused_by_broker']} refused by broker,"
           f" {r['dead_letters_missed_by_collector']} read back)"
           if "bad_inputs_sent" in r else "")
    return (f"[{n}/{total}] {r['name']}: {verdict} | sent {r['clicks_sent']} | lost: "
            f"pipeline {r['clicks_lost']}, broker {r['clicks_lost_by_broker']} clicks + "
            f"{r['recommendations_lost_by_broker']} recs (proven), "
            f"{r['recommendations_missed_by_collector']} read back | duplicates "
            f"{r['duplicate_recommendations']} ({r['duplicates_unexplained']} unexplained) | "
            f"errors: history {r['history_errors']}, seen {r['seen_errors']}, recs "
            f"{r['recommendation_errors']} | recovery from the fault: first "
            f"{_s(r['recovery_first_s'])}, all {_s(r['recovery_last_s'])} "
            f"(every partition {r['recovery_s']}s after it ended){bad} | crashes "
            f"{r['worker_crashes_unplanned']} agent {r['agent_crashes']} | {r['elapsed_s']}s")


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds}s"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # clients reconnecting through faults
    started = time.time()
    opts = Options(rate=args.rate, users=args.users, poison=args.poison,
                   max_recovery_s=args.max_recovery_s)
    if args.quick:
        opts.pre_s, opts.post_s, opts.outage_s = 2.0, 2.0, 1.0
    stack_dir = Path(args.dir).absolute()
    model_dir = Path(args.model_dir) if args.model_dir else stack_dir.parent / (
        stack_dir.name + "-model")
    if not (model_dir / "LATEST").is_file():
        print(f"faults: training a small model into {model_dir}", flush=True)
        subprocess.run([sys.executable, "-m", "model.train", "--synthetic", "--epochs", "2",
                        "--no-progress", "--out", str(model_dir)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for old in stack_dir.glob("*.log"):  # the stack itself wipes its AOF and items.db
        old.unlink()
    world = World(stack_dir, model_dir, static_membership=args.static,
                  log=lambda s: print(s, flush=True))
    results: list[dict[str, Any]] = []
    try:
        world.start()
        warm = world.warm_up()
        print(f"faults: stack in {stack_dir}, model {model_dir}, first worker answering after "
              f"{warm:.1f}s, {'static' if args.static else 'dynamic'} group membership; "
              f"scenarios: {', '.join(args.names)}", flush=True)
        for n, name in enumerate(args.names, 1):
            result = run(world, name, n, opts)
            results.append(result)
            print(line(n, len(args.names), result), flush=True)
    finally:
        summary = summarize(results, world, time.time() - started)
        crashes = list(world.crashes)
        world.close()
    Path(args.out).write_text(json.dumps(
        {"summary": summary, "scenarios": results, "crashes": crashes,
         "logs": str(stack_dir)}, indent=1, default=str))
    print("FAULTS " + json.dumps(summary), flush=True)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
