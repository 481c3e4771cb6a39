"""Group timing reaches the Kafka consumer; a stop signal always ends the process in time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from streams.settings import Settings
from streams.worker.app import create_app
from streams.worker.main import EXIT_STOP_TIMEOUT, parse_args


def test_group_timing_and_instance_id_come_from_settings(tmp_path: Path) -> None:
    settings = Settings(session_timeout_s=4.0, heartbeat_interval_s=0.5, rebalance_timeout_s=7.0,
                        group_instance_id="worker-a", worker_data_dir=str(tmp_path))
    conf = create_app(settings).conf
    assert conf.broker_session_timeout == 4.0
    assert conf.broker_heartbeat_interval == 0.5
    assert conf.broker_rebalance_timeout == 7.0
    assert conf.consumer_group_instance_id == "worker-a"
    app = create_app(Settings(worker_data_dir=str(tmp_path)))
    assert app.conf.consumer_group_instance_id is None


def test_instance_id_and_stop_timeout_options() -> None:
    args = parse_args(["--instance-id", "w7", "--stop-timeout", "3"], Settings())
    assert args.instance_id == "w7" and args.stop_timeout == 3.0
    assert parse_args([], Settings(group_instance_id="env-id")).instance_id == "env-id"


def test_stop_deadline_exits_although_a_thread_is_stuck() -> None:
    # A non-daemon thread that never ends would keep the interpreter alive forever.
    code = (
        "import threading, time\n"
        "from streams.worker.main import StopDeadline\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "StopDeadline(0.5).arm('test')\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert proc.returncode == EXIT_STOP_TIMEOUT
    assert time.monotonic() - started < 20
    assert b"exiting now" in proc.stderr
