"""`make run`'s launcher (python -m harness.stack.run) stopped by Ctrl-C, as a terminal sends it:
SIGINT to the whole process group (launcher, worker, API, servers at once). It must exit 0,
print one line per stopped process and no traceback. Before that, its API is secure by default:
the Ready message shows the token the launcher made, /drop without it is refused (401), with it
but without the confirmation too (422), and with both it empties the index."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
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
            token = check_api_needs_the_printed_token(log_path.read_text(), api)
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
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "stack").rglob("*.log"))
    assert token not in logs  # shown in the Ready message only, never logged


def check_api_needs_the_printed_token(out: str, port: int) -> str:
    """The Ready block's token, curl line and live link; /drop refused without the token or
    the confirmation, served with both. Returns the token."""
    found = re.search(r"API token: +(\S+) \(new each run", out)
    assert found, out[-3000:]
    token = found.group(1)
    base = f"http://127.0.0.1:{port}"
    assert f'curl -XPOST -H "Authorization: Bearer {token}" {base}/insert' in out
    assert f"live page:             {base}/live#token={token}" in out
    assert out.count(token) == 3, out[-3000:]  # those three lines, the Ready block only
    collection = {"confirm": "items"}  # the default RECALL_MILVUS_COLLECTION
    with httpx.Client(base_url=base, timeout=60) as client:
        count = client.get("/count").json()["count"]
        assert count > 0  # the launcher streamed the model's items
        assert client.post("/drop", json=collection).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        refused = client.post("/drop", headers=auth)
        assert refused.status_code == 422 and '"confirm": "items"' in refused.json()["detail"]
        assert client.get("/count").json() == {"count": count}
        assert client.post("/drop", headers=auth, json=collection).json() == {"dropped": True}
        assert client.get("/count").json() == {"count": 0}
    return token
