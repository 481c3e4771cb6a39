"""`make faults` inside `make test`: all eight scenarios (worker SIGKILL and SIGTERM restarts,
Redis and Milvus restarts, SIGTERM during a Milvus outage, two workers with one killed, a
1,000-message poison flood, a broker restart) against real servers and processes, with the
production defaults, short phases (FAULTS_QUICK) and every done-when check."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.faults.scenarios import SCENARIOS

pytestmark = pytest.mark.integration
MAX_RECOVERY_S = 15.0

LINE = re.compile(r"\[\d+/\d+\] (?P<name>[a-z-]+): (?P<verdict>ok|FAIL [a-z_,]+) \| sent \d+ "
                  r"\| lost: pipeline \d+, broker \d+ clicks \+ \d+ recs \(proven\), "
                  r"\d+ read back \| duplicates \d+ \(\d+ unexplained\) \| errors: history \d+, "
                  r"seen \d+, "
                  r"recs \d+ \| recovery from the fault: first \S+, all \S+ ")


def test_every_fault_scenario_loses_nothing_it_cannot_prove(model_dir: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALL_", "FAULTS_"))}
    env |= {"FAULTS_QUICK": "1", "FAULTS_SCENARIOS": ",".join(SCENARIOS),
            "FAULTS_DIR": str(tmp_path / "stack"), "FAULTS_OUT": str(out),
            "FAULTS_MODEL_DIR": str(model_dir), "FAULTS_POISON": "1000",
            # `make faults` gates at 10 s; SIGTERM during a Milvus outage measured 6.7-10.0 s
            # here, so the run inside `make test` (a CI machine, short phases) allows 15
            "FAULTS_MAX_RECOVERY_S": str(MAX_RECOVERY_S)}
    done = subprocess.run([sys.executable, "-m", "harness.faults"], env=env, timeout=900,
                          capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if re.match(r"\[\d+/\d+\] |FAULTS ", x)]
    print("\n".join(lines), done.stderr[-3000:], sep="\n")
    assert lines and lines[-1].startswith("FAULTS "), "the run did not finish"
    summary = json.loads(lines[-1][len("FAULTS "):])
    results = json.loads(out.read_text())
    assert summary == results["summary"]
    assert summary["scenarios"] == list(SCENARIOS)
    named = [m.group("name") for m in map(LINE.match, lines[:-1]) if m]
    assert named == list(SCENARIOS)
    assert summary["clicks_sent"] > 3000 and summary["bad_inputs_sent"] >= 990
    for r in results["scenarios"]:  # every scenario measured its recovery from the injection
        assert r["recovery_clicks"] > 0, r["name"]
        # the last answer's time is unknown only for a record the collector did not read (it
        # is in the recommendations log: the read-back found it)
        assert r["recovery_last_s"] is not None or r["recommendations_missed_by_collector"]
    failures = {k: summary[k] for k in (
        "clicks_lost", "history_errors", "history_duplicates", "seen_errors",
        "recommendation_errors", "hijacked_recommendations", "duplicates_unexplained",
        "worker_crashes_unplanned", "agent_crashes", "valid_inputs_dead_lettered")}
    failures["bad_inputs_not_dead_lettered"] = (summary["bad_inputs_sent"]
                                                - summary["bad_inputs_dead_lettered"])
    failures["recovery_over_limit"] = max(0.0, summary["max_recovery_s"] - MAX_RECOVERY_S)
    examples = {r["name"]: r["examples"] for r in results["scenarios"] if r["failed"]}
    assert {k: v for k, v in failures.items() if v} == {}, (summary["failed_checks"], examples)
    assert done.returncode == 0 and summary["passed"]
