"""`make faults --quick` inside `make test`: worker SIGKILL + restart, Redis restart and a
1,000-message poison flood against real servers and processes, with the done-when checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_quick_fault_run_loses_nothing_and_dead_letters_every_bad_input(
        model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALL_", "FAULTS_"))}
    env |= {"FAULTS_QUICK": "1", "FAULTS_DIR": str(tmp_path / "stack"),
            "FAULTS_OUT": str(out), "FAULTS_MODEL_DIR": str(model_dir), "FAULTS_POISON": "1000"}
    done = subprocess.run([sys.executable, "-m", "harness.faults"], env=env, timeout=600,
                          capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if re.match(r"\[\d+/\d+\] |FAULTS ", x)]
    print("\n".join(lines), done.stderr[-3000:], sep="\n")
    assert lines and lines[-1].startswith("FAULTS "), "the run did not finish"
    summary = json.loads(lines[-1][len("FAULTS "):])
    assert summary == json.loads(out.read_text())["summary"]
    assert summary["scenarios"] == ["worker-sigkill-restart", "redis-restart", "poison-flood"]
    assert summary["clicks_sent"] > 1000 and summary["bad_inputs_sent"] >= 990
    failures = {
        "clicks_lost": summary["clicks_lost"],
        "history_errors": summary["history_errors"],
        "history_duplicates": summary["history_duplicates"],
        "recommendation_errors": summary["recommendation_errors"],
        "hijacked_recommendations": summary["hijacked_recommendations"],
        "worker_crashes_unplanned": summary["worker_crashes_unplanned"],
        "agent_crashes": summary["agent_crashes"],
        "bad_inputs_not_dead_lettered":
            summary["bad_inputs_sent"] - summary["bad_inputs_dead_lettered"],
        "valid_inputs_dead_lettered": summary["valid_inputs_dead_lettered"],
        "recovery_over_10s": max(0.0, summary["max_recovery_s"] - 10.0),
    }
    assert {k: v for k, v in failures.items() if v} == {}, summary["failed_checks"]
    assert done.returncode == 0
