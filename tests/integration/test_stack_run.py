"""`make run`'s launcher (python -m harness.stack.run) stopped by Ctrl-C, as a terminal sends it:
SIGINT to the whole process group (launcher, worker, API, servers at once). It must exit 0,
print one line per stopped process and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.stack.servers import free_ports

pytestmark = pytest.mark.integration

READY = "Ctrl-C stops everything."


def test_ctrl_c_on_make_run_stops_everything_and_exits_0(model_dir: Path,
                                                          tmp_path: Path) -> None:
    kafka, redis, milvus, api, web = free_ports(5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECALL_")}
    env.update({"RECALL_STACK_DIR": str(tmp_path / "stack"), "RECALL_KAFKA_PORT": str(kafka),
                "RECALL_REDIS_PORT": str(redis), "RECALL_MILVUS_PORT": str(milvus),
                "RECALL_API_PORT": str(api), "RECALL_WORKER_WEB_PORT": str(web),
                "RECALL_MODEL_DIR": str(model_dir)})
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.stack.run"], stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while READY not in log_path.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.5)
            assert proc.poll() is None, log_path.read_text()[-3000:]
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
            status = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    out = log_path.read_text()
    assert status == 0, out[-3000:]
    assert "Traceback" not in out and "Error" not in out, out[-3000:]
    stopped = [line.split()[1] for line in out.splitlines() if line.startswith("stopped ")]
    assert sorted(stopped) == ["api", "kafka", "milvus", "redis", "worker"], out[-3000:]
