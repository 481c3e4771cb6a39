"""`make bench` probes: Milvus' search ceiling alone, and item freshness through the worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson

from harness.bench.cpu import CpuMeter
from harness.bench.sweep import percentile
from model.serving import InterestModel
from producers.kafka import make_producer
from streams.recall.recaller import Recaller
from streams.settings import Settings
from streams.stores.index import ItemIndex

PROBE_ID_BASE = 90_000_000  # freshness probe items, deleted again after each probe
PROBE_NORM = 100.0  # far above the catalog's norms: the probe is its own query's top hit


def sample_histories(items: np.ndarray, users: int, history_len: int,
                     seed: int = 1) -> list[list[int]]:
    """Histories like the preseeded ones (5..history_len random items)."""
    rng = np.random.default_rng(seed)
    return [rng.choice(items, int(rng.integers(5, history_len + 1))).tolist()
            for _ in range(users)]


def search_ceiling(index: ItemIndex, model: InterestModel, recaller: Recaller,
                   histories: Sequence[Sequence[int]], batch: int, seconds: float,
                   threads: Sequence[int] = (1, 2),
                   meter: CpuMeter | None = None) -> dict[str, Any]:
    """Users/s of back-to-back batched searches of the pipeline's shape (best thread count).

    The queries are what `Recaller.recall` sends for `batch` users: their interest vectors
    (after the recaller's pruning) with its per-interest top-k and search parameters.
    With `meter`, the cores each process group used during each thread count's run.
    """
    plans = []
    for start in range(0, len(histories) - batch + 1, batch):
        rows = histories[start:start + batch]
        vectors, _ = model.interests(rows)  # [B, K, D]
        plans.append(recaller.plan(vectors, rows))
    out: dict[str, Any] = {}
    for n in threads:
        calls = [0] * n
        stop = time.monotonic() + seconds

        def worker(slot: int, calls: list[int] = calls, stop: float = stop, n: int = n) -> None:
            i = slot
            while time.monotonic() < stop:
                plan = plans[i % len(plans)]
                index.search(plan.queries, plan.per_interest, recaller.search_params)
                calls[slot] += 1
                i += n

        started, cpu = time.monotonic(), meter.sample() if meter else None
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(worker, range(n)))
        out[f"threads_{n}"] = round(batch * sum(calls) / (time.monotonic() - started), 1)
        if meter and cpu:
            out[f"cores_{n}"] = CpuMeter.cores(cpu, meter.sample())
    out["queries_per_user"] = round(float(np.mean([len(p.queries) / batch for p in plans])), 2)
    return out


class Freshness(threading.Thread):
    """Publishes new item vectors to the worker's items topic, times until search finds them,
    then publishes their deletes and times until search no longer does.

    One probe at a time, every `every_s`: a random direction scaled to PROBE_NORM, searched
    with that direction until the probe item is the top hit; then its delete record, searched
    until it is not; then searched `recheck` more times over the pause: a deleted item found
    again counts as resurfaced (the target is none).
    """

    def __init__(self, settings: Settings, index: ItemIndex, every_s: float = 0.5,
                 timeout_s: float = 10.0, poll_s: float = 0.01, recheck: int = 5) -> None:
        super().__init__(daemon=True, name="freshness")
        self.settings, self.index = settings, index
        self.every_s, self.timeout_s, self.poll_s = every_s, timeout_s, poll_s
        self.recheck = recheck
        self.producer = make_producer(settings.kafka_bootstrap, settings=settings, linger_ms=0)
        self.latencies_ms: list[float] = []
        self.delete_ms: list[float] = []
        self.missed = self.not_deleted = self.resurfaced = 0
        self.stopping = threading.Event()
        self.rng = np.random.default_rng(7)

    def run(self) -> None:
        try:
            for n in range(1_000_000):
                if self.stopping.is_set():
                    return
                self.probe(PROBE_ID_BASE + n)
        finally:
            self.producer.close(timeout=10)

    def send(self, item: int, value: dict[str, Any]) -> float:
        sent = time.time()
        self.producer.send(self.settings.items_topic, key=str(item).encode(),
                           value=orjson.dumps({"item_id": item, **value}))
        self.producer.flush()
        return sent

    def probe(self, item: int) -> None:
        direction = self.rng.standard_normal(self.index.dim).astype(np.float32)  # [D]
        direction /= np.linalg.norm(direction)

        def top() -> int:
            return int(self.index.search(direction[None, :], 1)[0][0, 0])

        sent = self.send(item, {"vector": (direction * PROBE_NORM).tolist(), "deleted": False})
        if poll_until(lambda: top() == item, self.timeout_s, self.poll_s):
            self.latencies_ms.append(1000.0 * (time.time() - sent))
        else:
            self.missed += 1
        sent = self.send(item, {"deleted": True})
        if poll_until(lambda: top() != item, self.timeout_s, self.poll_s):
            self.delete_ms.append(1000.0 * (time.time() - sent))
            for _ in range(self.recheck):
                self.stopping.wait(self.every_s / self.recheck)
                self.resurfaced += top() == item
        else:
            self.not_deleted += 1
            self.index.delete([item])

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.join(2 * self.timeout_s + 5)
        return {"probes": len(self.latencies_ms), "missed": self.missed,
                "p50_ms": round(percentile(self.latencies_ms, 50), 1),
                "p99_ms": round(percentile(self.latencies_ms, 99), 1),
                "deletes": len(self.delete_ms), "not_deleted": self.not_deleted,
                "delete_p50_ms": round(percentile(self.delete_ms, 50), 1),
                "delete_p99_ms": round(percentile(self.delete_ms, 99), 1),
                "resurfaced": self.resurfaced}


def poll_until(check: Callable[[], bool], timeout_s: float, poll_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(poll_s)
    return False
