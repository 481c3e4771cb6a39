"""Fault tests' world: one local stack, one trained model, worker processes and collectors.

Workers are real `python -m streams.worker` processes, each with its own log and, with
`static_membership`, its own static group membership id (RECALL_GROUP_INSTANCE_ID=worker-N,
kept across its restarts). Every signal the harness
sends is recorded; a worker that exits without one is an unplanned crash (and is restarted so
the run can go on).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from consumers.kafka import make_consumer
from harness.faults.oracle import ExactOracle
from harness.faults.poison import POISON_ITEMS
from harness.faults.traffic import ClickTraffic, Collector, Epoch, SentClick
from harness.stack.launch import to_env, wait_until
from harness.stack.servers import LocalStack, StackError, free_ports
from producers.items import embedding_records, publish, read_item_table
from producers.kafka import open_sender
from streams.errors import BadEvent
from streams.settings import Settings
from streams.stores.index import ItemIndex

WARMUP_USERS = range(700_000_001, 700_000_041)
T = TypeVar("T")


@dataclass
class WorkerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started_at: float
    planned: bool = False  # the harness signalled it


@dataclass
class World:
    """Start with `start()`, stop with `close()`; `settings` points at the stack."""

    stack_dir: Path
    model_dir: Path
    partitions: int = 4
    static_membership: bool = False  # RECALL_GROUP_INSTANCE_ID=<worker name> for each worker
    log: Any = print
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    crashes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        kafka, redis, milvus = free_ports(3)
        base = Settings().model_copy(update={
            "partitions": self.partitions, "model_dir": str(self.model_dir),
            "reload_interval_s": 3600.0,
            # every other setting is the production default (seen items excluded included);
            # the channels stay on (co-occurrence counted in the append script under fault);
            # records carry each channel's list so the MIND one can be checked exactly
            "record_channel_lists": True})
        self.stack = LocalStack(base, stack_dir=self.stack_dir, kafka_port=kafka,
                                redis_port=redis, milvus_port=milvus, fresh=True)
        self.settings = self.stack.settings
        self.epoch = Epoch()
        self._exit = ExitStack()
        self._serial = 0

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.stack.start()
        self._exit.callback(self.stack.stop)
        self.recs = Collector(self.settings, self.settings.recs_topic, self.epoch, "recs")
        self.dead = Collector(self.settings, self.settings.dead_letter_topic, self.epoch, "dead")
        for c in (self.recs, self.dead):
            c.start()
            self._exit.callback(c.stop)
        self._exit.callback(self.stop_workers)
        self.spawn_worker()
        _, ids, vectors = read_item_table(self.model_dir)
        self.item_ids = [int(i) for i in ids]
        self.item_vectors = vectors
        s = self.settings
        self.oracle = ExactOracle(self.model_dir, s.top_k, s.interest_pruning,
                                  s.interest_dedup_cosine)
        with open_sender(self.settings.kafka_bootstrap, self.settings.items_topic) as sender:
            publish(embedding_records(ids, vectors), sender)
        index = ItemIndex(self.settings.milvus_uri, self.settings.milvus_collection,
                          vectors.shape[1], self.settings.milvus_index)
        index.start()
        try:
            wait_until("item vectors in Milvus", lambda: index.count() >= len(ids), 180,
                       self.raise_if_crashed)
        finally:
            index.close()

    def close(self) -> None:
        self._exit.close()

    # --- workers ---------------------------------------------------------------------------
    def spawn_worker(self, name: str | None = None) -> float:
        """Start a worker process (a new name unless `name`); returns the wall-clock start."""
        name = name or self.next_name()
        path = self.stack.log_path(name)
        log = open(path, "ab")  # noqa: SIM115 - closed when the worker is reaped
        log.write(f"\n=== harness: start {name} at {time.time():.3f}\n".encode())
        log.flush()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECALL_")}
        env |= to_env(self.settings)
        env["RECALL_WORKER_WEB_PORT"] = str(free_ports(1)[0])  # workers side by side
        if self.static_membership:
            env["RECALL_GROUP_INSTANCE_ID"] = name
        proc = subprocess.Popen([sys.executable, "-m", "streams.worker"], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.workers[name] = WorkerProcess(name, proc, log, time.time())
        return self.workers[name].started_at

    def next_name(self) -> str:
        """A worker name (and static group membership id) not used before."""
        self._serial += 1
        return f"worker-{self._serial}"

    def main_worker(self) -> str:
        """The oldest worker still running."""
        alive = [w for w in self.workers.values() if w.proc.poll() is None]
        if not alive:
            raise StackError("no worker is running")
        return min(alive, key=lambda w: w.started_at).name

    def signal_worker(self, name: str, sig: int, timeout_s: float = 30.0) -> dict[str, Any]:
        """Send `sig`, wait for the exit; SIGKILL after `timeout_s`. Exit code and seconds."""
        worker = self.workers[name]
        worker.planned = True
        sent = time.monotonic()
        worker.proc.send_signal(sig)
        timed_out = False
        try:
            code = worker.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            worker.proc.kill()
            code = worker.proc.wait(10)
        self._reap(name)
        return {"signal": signal.Signals(sig).name, "exit_code": code,
                "exit_s": round(time.monotonic() - sent, 2), "timed_out": timed_out}

    def _reap(self, name: str) -> WorkerProcess:
        worker = self.workers.pop(name)
        worker.log.write(f"=== harness: {name} exited {worker.proc.returncode}\n".encode())
        worker.log.close()
        return worker

    def check_workers(self) -> list[str]:
        """Record (and restart) workers that exited without a signal from the harness."""
        crashed = []
        for name, worker in list(self.workers.items()):
            if worker.proc.poll() is not None and not worker.planned:
                self._reap(name)
                tail = self.stack.log_path(name).read_text(errors="replace")[-1500:]
                self.crashes.append({"worker": name, "exit_code": worker.proc.returncode,
                                     "at": time.time(), "log_tail": tail})
                self.log(f"  ! {name} exited by itself with {worker.proc.returncode}; "
                         f"restarting it (log {self.stack.log_path(name)})")
                self.spawn_worker(name)
                crashed.append(name)
        return crashed

    def raise_if_crashed(self) -> None:
        if self.check_workers():
            raise StackError(f"worker crashed: {self.crashes[-1]['log_tail'][-400:]}")

    def stop_workers(self) -> None:
        for name in list(self.workers):
            if self.workers[name].proc.poll() is None:
                self.signal_worker(name, signal.SIGTERM, 20)
            else:
                self._reap(name)

    def agent_crashes(self) -> list[str]:
        """Faust's "Crashed reason=" lines of every worker log: an agent that died inside a
        process that lives on (it consumes nothing more, and no supervisor sees an exit)."""
        lines = []
        for path in sorted(self.stack.dir.glob("worker-*.log")):
            text = path.read_text(errors="replace")
            lines += [f"{path.name}: {x.strip()[:300]}" for x in text.splitlines()
                      if "Crashed reason=" in x]
        return lines

    def log_has(self, name: str, text: str, since: int = 0) -> bool:
        path = self.stack.log_path(name)
        return path.is_file() and text in path.read_text(errors="replace")[since:]

    # --- checks' helpers -------------------------------------------------------------------
    def remove_poison_items(self) -> int:
        """Delete poison item ids the worker let into Milvus (counted as hijacks already), so
        the scenarios after the flood are checked on a clean index; returns how many."""
        index = ItemIndex(self.settings.milvus_uri, self.settings.milvus_collection,
                          self.item_vectors.shape[1], self.settings.milvus_index)
        index.start()
        try:
            found = index.client.query(self.settings.milvus_collection,
                                       filter=f"item_id >= {POISON_ITEMS}",
                                       output_fields=["item_id"], consistency_level="Strong")
            ids = [int(row["item_id"]) for row in found]
            index.delete(ids)
            return len(ids)
        finally:
            index.close()

    def freeze_workers(self) -> list[str]:
        """SIGSTOP every running worker: nothing is consumed, applied, published or committed
        until `thaw_workers` (the broker-loss proof reads the committed offsets meanwhile)."""
        frozen = [n for n, w in self.workers.items() if w.proc.poll() is None]
        for name in frozen:
            self.workers[name].proc.send_signal(signal.SIGSTOP)
        return frozen

    def thaw_workers(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.workers:
                self.workers[name].proc.send_signal(signal.SIGCONT)

    def committed_offsets(self) -> dict[int, int]:
        """The workers' consumer group's committed offset of each clicks partition."""
        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap,
                                 request_timeout_ms=5000)
        try:
            parts = [TopicPartition(self.settings.clicks_topic, p)
                     for p in range(self.settings.partitions)]
            group = self.settings.consumer_group
            got = admin.list_group_offsets({group: parts})[group]
        finally:
            admin.close()
        return {tp.partition: meta.offset for tp, meta in got.items() if meta.offset >= 0}

    def end_offsets(self, topic: str, consumer: KafkaConsumer | None = None) -> dict[int, int]:
        """Each partition's end offset (the next offset to be written); through `consumer`
        when given, else a short-lived one."""
        own = consumer is None
        client = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                               request_timeout_ms=6000) if consumer is None else consumer
        try:
            known = client.partitions_for_topic(topic) or range(self.settings.partitions)
            parts = [TopicPartition(topic, p) for p in sorted(known)]
            return {tp.partition: off for tp, off in client.end_offsets(parts).items()}
        finally:
            if own:
                client.close()

    def read_back(self, topic: str, users: Sequence[int], fields: Sequence[str]
                  ) -> set[tuple[int, int, float]]:
        """The click keys (user, item, ts) in the log of `topic` as it is now, for `users`:
        `fields` name them in its records (clicks: user_id, item_id, ts; recommendations:
        user_id, click_item, click_ts)."""
        user, item, ts = fields
        wanted = set(users)

        def key(value: bytes) -> tuple[int, int, float] | None:
            c = json.loads(value)
            return (c[user], c[item], c[ts]) if c[user] in wanted else None

        return self.read_log(topic, key)

    def read_log(self, topic: str, key: Callable[[bytes], T | None]) -> set[T]:
        """`key` of every record in the log of `topic` as it is now (None, or a value it
        cannot read: skipped)."""
        consumer = make_consumer(self.settings.kafka_bootstrap, topic, from_beginning=True,
                                 auto_offset_reset="earliest")
        keys: set[T] = set()
        deadline = time.monotonic() + 60
        try:
            end = self.end_offsets(topic, consumer)
            while time.monotonic() < deadline and any(
                    consumer.position(TopicPartition(topic, p)) < n
                    for p, n in end.items() if n > 0):
                for messages in consumer.poll(timeout_ms=200).values():
                    for m in messages:
                        with contextlib.suppress(ValueError, KeyError, TypeError, BadEvent):
                            k = key(m.value)
                            if k is not None:
                                keys.add(k)
        finally:
            consumer.close()
        return keys

    def warm_up(self, timeout_s: float = 180.0) -> float:
        """One click per warm-up user until every partition answers; returns seconds taken."""
        started = time.time()
        traffic = ClickTraffic(self.settings, self.epoch, WARMUP_USERS, self.item_ids[:50],
                               rate=20, seed=0)
        traffic.start()
        try:
            wait_until("first recommendations on every partition",
                       lambda: answered_partitions(traffic.sent, self.recs) >= self.partitions,
                       timeout_s, self.raise_if_crashed)
        finally:
            traffic.finish()
        return time.time() - started


def answered_partitions(clicks: Sequence[SentClick], recs: Collector) -> int:
    keys = {(r.rec.user_id, r.rec.click_item, r.rec.click_ts) for r in list(recs.recs)}
    return len({c.partition for c in clicks if c.state == "acked" and c.key in keys})

