"""CPU used by each process of a bench run: where the machine's cores go during a step (and
the memory a process tree holds).

A group is a name and the pids it stands for; each pid counts with all its descendants (a
launcher's server child). `CpuMeter.cores` turns two samples into cores used per group over the
time between them (1.0 = one core busy all the time), plus the whole machine's busy cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

Sample = tuple[float, dict[str, float], float]  # (monotonic s, group -> cpu s, machine busy s)


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system seconds of `pid` and its live descendants (0 for a process gone)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *(root.children(recursive=True) if descendants else [])]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
    except psutil.Error:
        return 0.0
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its live descendants, MiB (0 for a process gone)."""
    total = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
    except psutil.Error:
        return 0.0
    return total / 2**20


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


class CpuMeter:
    """Samples CPU seconds per group of processes, and of the calling process itself.

    The caller (the bench: load generator, answer reader, probes) is counted without its
    children: the servers and workers it started are groups of their own.
    """

    def __init__(self, groups: Mapping[str, Sequence[int]], self_name: str = "bench") -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.self_name = self_name

    def sample(self) -> Sample:
        per = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.groups.items()}
        per[self.self_name] = cpu_seconds(os.getpid(), descendants=False)
        return time.monotonic(), per, _machine_busy()

    @staticmethod
    def cores(before: Sample, after: Sample) -> dict[str, float]:
        """Cores used per group between two samples, and `machine` for every process."""
        wall = max(after[0] - before[0], 1e-9)
        out = {name: round((after[1][name] - before[1].get(name, 0.0)) / wall, 2)
               for name in after[1]}
        out["machine"] = round((after[2] - before[2]) / wall, 2)
        return out


def settle(pid: int, idle_cores: float = 0.2, window_s: float = 5.0,
           timeout_s: float = 900.0, quiet_s: float = 90.0) -> dict[str, Any]:
    """Wait until the server's processes have used less than `idle_cores` in every `window_s`
    window for `quiet_s` in a row (its background work after a load, segment merges and their
    indexes, done; Milvus standalone may start such work a minute after a quiet spell) or
    `timeout_s` passed: how long it waited, the last window's cores, whether it got there, and
    how many busy windows it saw."""
    started = time.monotonic()
    quiet_since, busy = started, 0
    while True:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        cores = (cpu_seconds(pid) - before) / window_s
        now = time.monotonic()
        if cores >= idle_cores:
            busy, quiet_since = busy + 1, now
        settled = now - quiet_since >= quiet_s
        if settled or now - started >= timeout_s:
            return {"waited_s": round(now - started, 1), "cores": round(cores, 2),
                    "settled": settled, "busy_windows": busy}
