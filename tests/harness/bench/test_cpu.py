"""harness.bench.cpu: cores per process group, measured on real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from harness.bench.cpu import CpuMeter, rss_mb, settle

BUSY = "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"


def test_busy_child_counts_about_one_core_and_a_sleeper_none() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    # a launcher: the busy work is in its child, counted with it
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY!r}])"
    launcher = subprocess.Popen([sys.executable, "-c", child])
    try:
        time.sleep(0.5)  # past interpreter start-up
        meter = CpuMeter({"busy": [busy.pid], "idle": [idle.pid], "launcher": [launcher.pid]})
        before = meter.sample()
        time.sleep(1.5)
        cores = CpuMeter.cores(before, meter.sample())
    finally:
        for proc in (busy, idle, launcher):
            proc.kill()
            proc.wait()
    assert cores["idle"] < 0.1
    # two busy loops on a 2-core machine shared with the test itself: at least a third each
    assert cores["busy"] > 0.3 and cores["launcher"] > 0.3
    assert cores["busy"] <= 1.05 and cores["launcher"] <= 1.05
    assert cores["bench"] < 0.5  # this process only sleeps
    assert cores["machine"] >= cores["busy"] + cores["launcher"] - 0.1


def test_a_process_gone_counts_zero() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    meter = CpuMeter({"gone": [proc.pid]})
    assert CpuMeter.cores(meter.sample(), meter.sample())["gone"] == 0.0


def test_rss_counts_a_process_tree_and_zero_for_a_process_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; b = b'x' * (64 << 20); "
                              "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while rss_mb(child.pid) < 64 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rss_mb(child.pid) >= 64
        own = psutil.Process().memory_info().rss / 2**20
        assert rss_mb(os.getpid()) - own >= 64  # the child counts in its parent's tree
    finally:
        child.kill()
        child.wait()
    assert rss_mb(child.pid) == 0.0


def test_settle_waits_until_a_busy_process_idles() -> None:
    work = "import time\nend = time.time() + 2\nwhile time.time() < end: pass\ntime.sleep(30)\n"
    proc = subprocess.Popen([sys.executable, "-c", work])
    try:
        got = settle(proc.pid, idle_cores=0.2, window_s=0.5, timeout_s=20, quiet_s=1.5)
    finally:
        proc.kill()
        proc.wait()
    assert got["settled"] and got["cores"] < 0.2 and got["busy_windows"] >= 2
    # the busy loop's 2 s (less the interpreter's start), then 1.5 s quiet
    assert 2.5 <= got["waited_s"] < 10


def test_settle_waits_again_when_the_process_gets_busy_within_the_quiet_period() -> None:
    work = ("import time\ntime.sleep(1.2)\nend = time.time() + 1.5\n"
            "while time.time() < end: pass\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", work])
    try:
        time.sleep(0.5)  # past interpreter start-up: idle first, busy 1.5 s later
        got = settle(proc.pid, idle_cores=0.2, window_s=0.5, timeout_s=20, quiet_s=2.0)
    finally:
        proc.kill()
        proc.wait()
    assert got["settled"] and got["busy_windows"] >= 2
    assert got["waited_s"] >= 3.5  # the late busy spell ends ~2.2 s in, then 2 s quiet


def test_settle_gives_up_after_its_timeout() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.3)
        got = settle(busy.pid, idle_cores=0.2, window_s=0.5, timeout_s=1.0, quiet_s=0.5)
    finally:
        busy.kill()
        busy.wait()
    assert not got["settled"] and got["cores"] > 0.2 and got["waited_s"] >= 1.0
