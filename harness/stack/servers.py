"""Local stack launcher: a tansu Kafka-protocol broker, Redis and a Milvus-lite gRPC server."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from harness.stack.probes import free_ports as free_ports  # re-exported: harnesses import it here
from harness.stack.probes import kafka_ready, milvus_ready, port_open, redis_ready
from harness.stack.procs import broker_bin as broker_bin  # re-exported, as free_ports
from harness.stack.procs import die_with_parent, milvus_lib_dir, stop_all
from harness.stack.procs import redis_bin as redis_bin
from harness.stack.settings import StackSettings
from streams.settings import Settings

STOP_TIMEOUT_S = 5.0
SERVERS = ("kafka", "redis", "milvus")
# Co-occurrence sets of up to 512 neighbours stay compact (a listpack/ziplist, ~10 bytes per
# neighbour with whole counts) instead of a skiplist (~140 bytes): docs/quality.md. The 6.2 name;
# Redis 7 reads it as zset-max-listpack-entries.
ZSET_COMPACT = ("--zset-max-ziplist-entries", "512")


class StackError(RuntimeError):
    """A local server did not start or did not become ready."""


class LocalStack:
    """Start/stop the three servers on the ports of `base` (or given ones), data and logs in a dir.

    Kafka (tansu memory storage) loses everything on stop; topics are created again at every
    start. Redis writes an append-only file (`<dir>/appendonly.aof`, fsync every second, as in
    production), so a restart keeps histories and offsets; after a kill (power loss) up to the
    last second of writes may be gone, after a clean stop nothing. Milvus keeps its items in
    `<dir>/items.db` across restarts unless `fresh` is set (which also deletes the AOF).
    Each server can be stopped, started and restarted alone (`stop_server`, `start_server`,
    `restart_server`), on the same port, for fault tests.
    """

    def __init__(
        self,
        base: Settings | None = None,
        *,
        stack_dir: str | Path | None = None,
        kafka_port: int | None = None,
        redis_port: int | None = None,
        milvus_port: int | None = None,
        timeout_s: float = 60.0,
        fresh: bool = False,
    ) -> None:
        base = base or Settings()
        where = StackSettings()
        self.dir = Path(stack_dir or where.stack_dir).absolute()
        self.kafka_port = kafka_port or where.kafka_port
        self.redis_port = redis_port or where.redis_port
        self.milvus_port = milvus_port or where.milvus_port
        self.timeout_s = timeout_s
        self.fresh = fresh
        self._settings = base.model_copy(update={
            "worker_data_dir": str(self.dir),
            "kafka_bootstrap": f"127.0.0.1:{self.kafka_port}",
            "redis_url": f"redis://127.0.0.1:{self.redis_port}/0",
            "milvus_uri": f"http://127.0.0.1:{self.milvus_port}",
        })
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.startup_s: dict[str, float] = {}

    @property
    def settings(self) -> Settings:
        """Settings pointing at the servers of this stack."""
        return self._settings

    def pids(self) -> dict[str, int]:
        """The pid of each server process running now, by name (kafka, redis, milvus)."""
        return {name: proc.pid for name, proc in self._procs.items() if proc.poll() is None}

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every server and wait until each answers; on any failure stop what started."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.fresh:
            (self.dir / "items.db").unlink(missing_ok=True)
            (self.dir / "appendonly.aof").unlink(missing_ok=True)  # Redis 6
            shutil.rmtree(self.dir / "appendonlydir", ignore_errors=True)  # Redis 7
        try:
            for name in SERVERS:
                self._starters[name]()
            for name in SERVERS:
                self._wait(name, self._ready[name])
        except BaseException:
            self.stop()
            raise

    @property
    def _starters(self) -> dict[str, Callable[[], None]]:
        return {"kafka": self._start_kafka, "redis": self._start_redis,
                "milvus": self._start_milvus}

    @property
    def _ready(self) -> dict[str, Callable[[], bool]]:
        settings = self._settings
        return {"kafka": lambda: kafka_ready(settings), "redis": lambda: redis_ready(settings),
                "milvus": lambda: milvus_ready(settings)}

    def running(self, name: str) -> bool:
        """Whether server `name` (kafka, redis or milvus) has a live process."""
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    def stop_server(self, name: str, kill: bool = False) -> None:
        """Stop one server: SIGTERM (clean shutdown) or, with `kill`, SIGKILL; wait for exit."""
        proc = self._procs.pop(name, None)
        if proc is None:
            raise StackError(f"{name} is not running")
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        port = {"kafka": self.kafka_port, "redis": self.redis_port,
                "milvus": self.milvus_port}[name]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while port_open(port) and time.monotonic() < deadline:  # a child may hold it briefly
            time.sleep(0.05)

    def start_server(self, name: str) -> float:
        """Start one stopped server on its old port and wait until it answers; seconds taken."""
        if self.running(name):
            raise StackError(f"{name} is already running")
        self._starters[name]()
        self._wait(name, self._ready[name])
        return self.startup_s[name]

    def restart_server(self, name: str, kill: bool = False) -> float:
        """`stop_server` then `start_server`; returns the seconds the start took."""
        self.stop_server(name, kill=kill)
        return self.start_server(name)

    def stop(self, report: Callable[[str, int], None] | None = None) -> None:
        """Terminate every child, wait, kill the ones that do not exit in time; `report(name,
        exit status)` for each."""
        try:
            stop_all(self._procs, STOP_TIMEOUT_S, report)
        finally:
            self._procs.clear()
            for log in self._logs.values():
                log.close()
            self._logs.clear()

    def _spawn(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        old = self._logs.pop(name, None)
        if old is not None:
            old.close()
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log
        self._procs[name] = subprocess.Popen(
            list(args), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.dir, env=env, preexec_fn=die_with_parent,
        )
        self.startup_s[name] = time.monotonic()

    def _start_kafka(self) -> None:
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        self._spawn("kafka", [broker_bin(), "broker", "--listener-url", url,
                              "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"])

    def _start_redis(self) -> None:
        self._spawn("redis", [redis_bin(), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                              *ZSET_COMPACT, "--dir", str(self.dir)])

    def _start_milvus(self) -> None:
        lib = milvus_lib_dir()
        env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH",)}
        env["LD_LIBRARY_PATH"] = lib + ":" + os.environ.get("LD_LIBRARY_PATH", "")
        db = self.dir / "items.db"
        addr = f"127.0.0.1:{self.milvus_port}"
        self._spawn("milvus", [str(Path(lib) / "milvus"), str(db), addr, "ERROR"], env=env)

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        """Poll `ready` until it is true; fail fast if the process exits or time runs out."""
        proc = self._procs[name]
        deadline = self.startup_s[name] + self.timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"{name} exited with code {proc.returncode}; see {self.log_path(name)}"
                )
            try:
                if ready():
                    self.startup_s[name] = time.monotonic() - self.startup_s[name]
                    return
            except Exception as exc:  # noqa: BLE001 - not ready yet, keep polling
                last = exc
            time.sleep(0.05)
        raise StackError(
            f"{name} not ready after {self.timeout_s:.0f}s (last error: {last!r}); "
            f"see {self.log_path(name)}"
        )


def _parser() -> argparse.ArgumentParser:
    env = StackSettings()
    p = argparse.ArgumentParser(
        prog="python -m harness.stack", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dir", default=env.stack_dir, help="data/log dir (env RECALL_STACK_DIR)")
    p.add_argument("--kafka-port", type=int, default=env.kafka_port, help="env RECALL_KAFKA_PORT")
    p.add_argument("--redis-port", type=int, default=env.redis_port, help="env RECALL_REDIS_PORT")
    p.add_argument(
        "--milvus-port", type=int, default=env.milvus_port, help="env RECALL_MILVUS_PORT"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="readiness timeout per server (s)")
    p.add_argument("--fresh", action="store_true", help="delete the Milvus items.db first")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Start the stack, print where it listens, run until Ctrl-C or SIGTERM, then stop it."""
    args = _parser().parse_args(argv)
    stack = LocalStack(
        Settings(),
        stack_dir=args.dir, kafka_port=args.kafka_port, redis_port=args.redis_port,
        milvus_port=args.milvus_port, timeout_s=args.timeout, fresh=args.fresh,
    )

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        stack.start()
        s = stack.settings
        print(f"RECALL_KAFKA_BOOTSTRAP={s.kafka_bootstrap}")
        print(f"RECALL_REDIS_URL={s.redis_url}")
        print(f"RECALL_MILVUS_URI={s.milvus_uri}")
        print("startup seconds: " + ", ".join(f"{k}={v:.2f}" for k, v in stack.startup_s.items()))
        print(f"logs in {stack.dir}; Ctrl-C to stop", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
