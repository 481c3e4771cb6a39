"""Recovery measurements: worker processes in one group, a steady click load, a stall clock.

Used by test_recovery.py and runnable on its own to print every case's numbers:

    .venv/bin/python -m tests.integration.recovery [--cases a,b,c,d,e] [--model DIR]

A case starts a fresh consumer group (tansu keeps a group's session timeout from its first
join), puts a steady load of clicks on every partition, applies a fault and reports, per clicks
partition, when recommendations for it were flowing again: the end of the last silence longer
than `gap_s` that ends after the fault, in seconds after the fault (0 when it never stalled).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kafka import KafkaProducer

from consumers.kafka import make_consumer
from harness.stack.launch import to_env
from harness.stack.servers import LocalStack, free_ports
from streams.records import Recommendation
from streams.settings import Settings

STEADY_S = 3.0  # recommendations must keep flowing on every partition this long to count


class Load(threading.Thread):
    """Sends `rate` clicks per second keyed by user (users spread over every partition)."""

    def __init__(self, settings: Settings, rate: float = 50.0, users: int = 500):
        super().__init__(daemon=True, name="click-load")
        self.settings = settings
        self.rate = rate
        self.users = users
        self.sent = 0
        self._stop_event = threading.Event()
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=1)

    def run(self) -> None:
        rng = random.Random(0)
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop_event.is_set():
            user = rng.randrange(1, self.users + 1)
            value = {"user_id": user, "item_id": rng.randrange(1, 200), "ts": time.time()}
            self.producer.send(self.settings.clicks_topic, key=str(user).encode(),
                               value=json.dumps(value).encode())
            self.sent += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self.producer.close(timeout=5)


class Watch(threading.Thread):
    """Follows the recommendations topic (no group) and keeps (receipt time, click partition)."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True, name="recs-watch")
        self.consumer = make_consumer(settings.kafka_bootstrap, settings.recs_topic,
                                      fetch_max_wait_ms=10)
        self.seen: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            batches = self.consumer.poll(timeout_ms=50)
            now = time.monotonic()
            got = []
            for messages in batches.values():
                for m in messages:
                    try:
                        got.append((now, Recommendation.parse(m.value).click_partition))
                    except Exception:  # noqa: BLE001 - not ours to judge here
                        continue
            with self._lock:
                self.seen += got

    def partition_times(self, since: float) -> dict[int, list[float]]:
        with self._lock:
            seen = list(self.seen)
        out: dict[int, list[float]] = {}
        for t, p in seen:
            if t >= since:
                out.setdefault(p, []).append(t)
        return out

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self.consumer.close()


def resume_times(times: dict[int, list[float]], fault: float, partitions: int,
                 gap_s: float, now: float) -> dict[int, float | None]:
    """Seconds after `fault` at which each partition's recommendations flowed again for good.

    None: the partition is silent (no recommendation in the last `gap_s` before `now`, or none
    after the fault at all).
    """
    out: dict[int, float | None] = {}
    for p in range(partitions):
        ts = sorted(times.get(p, []))
        if not ts or ts[-1] <= fault or now - ts[-1] > gap_s:
            out[p] = None
            continue
        resumed = 0.0
        prev = fault - gap_s  # a silence that began before the fault still counts
        for t in ts:
            if t > fault and t - prev > gap_s:
                resumed = t - fault
            prev = max(prev, t)
        out[p] = resumed
    return out


@dataclass
class Workers:
    """Worker processes (`python -m streams.worker`) sharing one consumer group."""

    settings: Settings
    log_dir: Path
    static: bool = False  # static membership: the worker's name is its group.instance.id
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, **settings: object) -> None:
        """Start worker `name`; `settings` override fields for this worker (e.g. its web port)."""
        own = self.settings.model_copy(update={"worker_web_port": 0} | settings)  # no port
        env = to_env(own) | {"PATH": os.environ.get("PATH", "/usr/bin")}
        if self.static:
            env["RECALL_GROUP_INSTANCE_ID"] = name
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], stdout=log, stderr=subprocess.STDOUT,
            env=env)

    def log_text(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def wait_assigned(self, name: str, timeout_s: float) -> None:
        """Wait until worker `name` has been assigned at least one clicks partition."""
        deadline = time.monotonic() + timeout_s
        clicks = self.settings.clicks_topic
        while True:
            self.check_alive()
            text = self.log_text(name)
            at = text.rfind("Setting newly assigned partitions")  # aiokafka's line, one per join
            if at >= 0 and f"topic='{clicks}'" in text[at:].split("\n", 1)[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {name} got no clicks partition in {timeout_s}s")
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def terminate(self, name: str, timeout_s: float = 30.0) -> tuple[float, int | None]:
        """SIGTERM; returns (seconds to exit, exit code) (code None: still running, killed)."""
        proc = self.procs.pop(name)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            code = None
        return time.monotonic() - started, code

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited with {proc.returncode}; "
                                   f"see {self.log_dir / (name + '.log')}")

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.terminate(name, timeout_s=15)
        for log in self.logs:
            log.close()
        self.logs.clear()


@dataclass
class Run:
    """One case in progress: its workers, the load and the watch on one fresh group."""

    workers: Workers
    load: Load
    watch: Watch
    partitions: int

    def wait_flowing(self, timeout_s: float, since: float | None = None) -> float:
        """Wait until every partition has steady recommendations; return when they resumed."""
        start = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout_s
        while True:
            self.workers.check_alive()
            now = time.monotonic()
            times = self.watch.partition_times(start - 5.0)
            resumed = resume_times(times, start, self.partitions, 1.0, now)
            if all(r is not None and now - (start + r) >= STEADY_S for r in resumed.values()):
                return max(r for r in resumed.values() if r is not None)
            if now > deadline:
                raise TimeoutError(f"partitions not all flowing {timeout_s:.0f}s after the "
                                   f"fault: {resumed}")
            time.sleep(0.2)

    def longest_silence(self, fault: float) -> float:
        """The longest gap between two recommendations of one partition since the fault."""
        longest = 0.0
        for ts in self.watch.partition_times(fault - 5.0).values():
            ts = sorted(ts)
            for a, b in zip(ts, ts[1:], strict=False):
                if b > fault:
                    longest = max(longest, b - max(a, fault))
        return longest

    def per_partition(self, fault: float) -> dict[int, float | None]:
        now = time.monotonic()
        return resume_times(self.watch.partition_times(fault - 5.0), fault, self.partitions,
                            1.0, now)


@contextmanager
def case(settings: Settings, log_dir: Path, rate: float = 50.0,
         static: bool = False) -> Iterator[Run]:
    """A fresh consumer group with a load and a watch; workers are started by the caller."""
    group = f"recovery-{uuid.uuid4().hex[:8]}"
    s = settings.model_copy(update={"consumer_group": group})
    (log_dir / group).mkdir(parents=True)
    workers = Workers(s, log_dir / group, static)
    watch = Watch(s)
    watch.start()
    load = Load(s, rate)
    load.start()
    try:
        yield Run(workers, load, watch, s.partitions)
    finally:
        load.stop()
        watch.stop()
        workers.stop_all()


def measure(name: str, settings: Settings, log_dir: Path, static: bool = False,
            timeout_s: float = 120.0) -> dict[str, object]:
    """Run case `name` (a-e) and return its numbers."""
    result: dict[str, object] = {"case": name, "static": static}
    with case(settings, log_dir, static=static) as run:
        w = run.workers
        w.start("w1")
        result["first_start_s"] = round(run.wait_flowing(timeout_s), 1)
        if name in ("c", "d"):
            joined = time.monotonic()
            w.start("w2")
            w.wait_assigned("w2", timeout_s)
            result["second_join_s"] = round(run.wait_flowing(timeout_s, since=joined), 1)
        fault = time.monotonic()
        if name == "e":
            w.start("w2")
        elif name == "a":
            w.kill("w1")
            time.sleep(1.0)
            w.start("w1")
        elif name == "b":
            result["exit_s"], result["exit_code"] = w.terminate("w1")
            time.sleep(1.0)
            w.start("w1")
        elif name == "c":
            w.kill("w2")
        elif name == "d":
            result["exit_s"], result["exit_code"] = w.terminate("w2")
        if name == "e":
            w.wait_assigned("w2", timeout_s)
        result["recovery_s"] = round(run.wait_flowing(timeout_s, since=fault), 1)
        result["longest_silence_s"] = round(run.longest_silence(fault), 1)
        result["per_partition_s"] = {
            p: None if r is None else round(r, 1) for p, r in run.per_partition(fault).items()}
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.integration.recovery",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="a,b,c,d,e", help="comma-separated cases a..e")
    p.add_argument("--model", required=True, help="exported model dir (model.train --out)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--static", action="store_true", help="static membership (instance ids)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="Settings override, e.g. session_timeout_s=3")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="recovery-"))
    kafka_port, redis_port, milvus_port = free_ports(3)
    stack = LocalStack(Settings(), stack_dir=log_dir / "stack", kafka_port=kafka_port,
                       redis_port=redis_port, milvus_port=milvus_port)
    with stack:
        overrides = dict(item.split("=", 1) for item in args.set)
        settings = Settings.model_validate(
            stack.settings.model_dump() | {"model_dir": args.model} | overrides)
        print(json.dumps({"overrides": overrides, "static": args.static}), flush=True)
        for _ in range(args.repeat):
            for name in args.cases.split(","):
                print(json.dumps(measure(name, settings, log_dir, args.static)), flush=True)
    print(f"logs in {log_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
