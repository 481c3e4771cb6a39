"""A second worker on a host stops at once, naming RECALL_WORKER_WEB_PORT, when its metrics
port is taken (it used to die deep inside Faust on `address already in use`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.worker.main import EXIT_WEB_PORT
from streams.worker.observe import web_port_problem

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def listening() -> Iterator[int]:
    """A port held as a running worker's web server holds it (SO_REUSEADDR, listening)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_the_check_finds_a_port_in_use_and_frees_what_it_binds() -> None:
    with listening() as port:
        problem = web_port_problem("127.0.0.1", port)
        assert problem is not None and "in use" in problem
        assert "RECALL_WORKER_WEB_PORT" in problem
    # Free now: the check passes, twice, as it binds nothing it keeps.
    assert web_port_problem("127.0.0.1", port) is None
    assert web_port_problem("127.0.0.1", port) is None
    with socket.create_server(("127.0.0.1", port)):  # and the port is still free to serve
        pass


def test_port_0_and_an_address_not_on_this_host() -> None:
    assert web_port_problem("127.0.0.1", 0) is None  # no server at all
    problem = web_port_problem("192.0.2.1", 6066)  # TEST-NET-1: no interface has it
    assert problem is not None and "RECALL_WORKER_WEB_HOST" in problem


def test_a_second_worker_process_stops_with_one_clear_message() -> None:
    with listening() as port:  # the first worker's metrics server
        env = os.environ | {"RECALL_WORKER_WEB_HOST": "127.0.0.1",
                            "RECALL_WORKER_WEB_PORT": str(port), "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "streams.worker"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_WEB_PORT, proc.stderr[-2000:]
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "RECALL_WORKER_WEB_PORT" in proc.stderr
    assert "Traceback" not in proc.stderr
