"""What `make bench` runs on: catalogs in Milvus, preseeded histories, worker processes.

One local stack (broker, Redis, Milvus) for the whole run. Every worker run gets its own
clicks, recommendations and items topics and consumer group, so no run replays another's
clicks. A catalog is a Milvus collection: the demo model's 1k items, the Beauty model's 12k,
or the Beauty items plus synthetic vectors clustered around them up to 100k or 1M
(harness.bench.items), on the stack's Milvus Lite (FLAT) or on a Milvus standalone of its own
(harness.stack.standalone: HNSW, which Lite does not build).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kafka.admin import KafkaAdminClient, NewTopic
from tqdm import tqdm

from harness.bench.cpu import settle
from harness.bench.items import cached_fill
from harness.bench.load import ClickLoad, Collector
from harness.stack.launch import _base_env, ensure_model, to_env
from harness.stack.servers import StackError, free_ports
from harness.stack.standalone import compact, connect, rebuild
from model.serving import InterestModel
from streams.settings import Settings
from streams.stores.history import ClickAt, HistoryStore
from streams.stores.index import INDEX_PARAMS, ItemIndex

STAGE_LINE = re.compile(r'^recall_stage_seconds_(sum|count)\{stage="(\w+)"\} (\S+)$')


@dataclass(frozen=True)
class Catalog:
    """A model and how many items its Milvus collection holds."""

    label: str
    model_dir: str
    items: int
    data: str | None = None  # dataset the model is trained on when missing
    server: str = "lite"  # "lite": the stack's Milvus Lite; "standalone": one of its own
    index: str = "FLAT"  # RECALL_MILVUS_INDEX of the collection

    @property
    def collection(self) -> str:
        return f"bench_{self.label.replace('-', '_')}"


def prepare_model(catalog: Catalog, log_dir: Path) -> InterestModel:
    """Load the catalog's model, training a small one first if there is none."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"train-{catalog.label}.log", "w") as log:
        ensure_model(catalog.model_dir, catalog.data, log)
    return InterestModel.load(catalog.model_dir, device="cpu")


def fill_catalog(settings: Settings, catalog: Catalog, model: InterestModel, cache: Path,
                 server_pid: int | None = None, seed: int = 0
                 ) -> tuple[ItemIndex, np.ndarray, np.ndarray, dict[str, Any]]:
    """A fresh collection with the model's items, plus synthetic ones up to `catalog.items`
    (harness.bench.items: clustered around the real ones, cached under `cache`); its ids [N],
    vectors [N, D] and how it was made ready. Rows go in under FLAT; on a standalone
    (`server_pid`) the segments are merged, another index is built and waited for, every row
    indexed, and then the server's background work, so that none of it is measured."""
    ids, vectors, _ = cached_fill(*model.item_table(), catalog.items, cache, model.version, seed)
    index = ItemIndex(settings.milvus_uri, catalog.collection, model.dim, "FLAT", timeout_s=600,
                      consistency=settings.milvus_consistency)
    connect(index)
    index.destroy()
    index.start()
    chunk = 10_000 if catalog.server == "lite" else 50_000
    for start in tqdm(range(0, len(ids), chunk), desc=f"catalog {catalog.label}", unit="chunk",
                      disable=None):
        index.upsert(ids[start:start + chunk], vectors[start:start + chunk])
    ready: dict[str, Any] = {}
    if catalog.server == "standalone":
        ready["compaction_s"] = round(compact(index), 1)
    if catalog.index != "FLAT":
        index.client.flush(index.collection)
        ready["index_build_s"] = round(
            rebuild(index, catalog.index, settings.build_params() or INDEX_PARAMS[catalog.index]),
            1)
    if server_pid is not None:
        ready["settle"] = settle(server_pid)
    if ready:
        print(f"catalog {catalog.label}: {ready}", flush=True)
    return index, ids, vectors, ready


def preseed_histories(settings: Settings, users: int, items: np.ndarray, seed: int = 0) -> None:
    """Every user starts with 5..10 random clicks (the bench's Redis emptied first, counts of
    an earlier catalog included), as active users do."""
    store = HistoryStore(settings.redis_url, history_len=settings.history_len)
    store.start()
    try:
        store.client.flushdb()
        rng = np.random.default_rng(seed)
        lengths = rng.integers(5, settings.history_len + 1, users)  # [U]
        owners = np.repeat(np.arange(1, users + 1), lengths)  # [C]
        clicked = rng.choice(items, len(owners))  # [C]
        offsets = itertools.count()
        chunk = 20_000
        for start in tqdm(range(0, len(owners), chunk), desc="histories", unit="chunk",
                              disable=None):
            store.append([ClickAt(int(u), int(i), 1.0 + n, 0, next(offsets), "preseed")
                          for n, (u, i) in enumerate(zip(owners[start:start + chunk],
                                                         clicked[start:start + chunk],
                                                         strict=True))])
    finally:
        store.close()


def create_topics(settings: Settings, names: dict[str, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(name, parts, 1) for name, parts in names.items()])
    finally:
        admin.close()


class WorkerRun:
    """`workers` worker processes of one mode on their own topics; load and answers attached."""

    counter = itertools.count(1)

    def __init__(self, base: Settings, mode: str, catalog: Catalog, users: int, items: np.ndarray,
                 log_dir: Path, workers: int = 1, overrides: dict[str, object] | None = None, *,
                 linger_ms: int):
        name = f"{mode}-{catalog.label}-{next(self.counter)}-{int(time.time())}"
        self.settings = base.model_copy(update={
            "clicks_topic": f"clicks-{name}", "recs_topic": f"recs-{name}",
            "items_topic": f"items-{name}", "consumer_group": f"bench-{name}",
            "milvus_collection": catalog.collection, "model_dir": catalog.model_dir,
            "batch_size": 1 if mode == "naive" else base.batch_size,
            **(overrides or {})})
        self.name, self.mode, self.log_dir = name, mode, log_dir
        self.module = "harness.bench.passthrough" if mode == "passthrough" else "streams.worker"
        self.ports = free_ports(workers)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.users, self.items, self.linger_ms = users, items, linger_ms

    def __enter__(self) -> WorkerRun:
        s = self.settings
        create_topics(s, {s.clicks_topic: s.partitions, s.recs_topic: s.partitions,
                          s.items_topic: 1})
        for port in self.ports:
            env = {**_base_env(), **to_env(self.settings.model_copy(
                update={"worker_web_port": port}))}
            log = open(self.log_dir / f"worker-{self.name}-{port}.log", "wb")  # noqa: SIM115
            self.procs.append(subprocess.Popen([sys.executable, "-m", self.module], env=env,
                                               stdout=log, stderr=subprocess.STDOUT))
        self.collector = Collector(s, s.recs_topic)
        self.collector.start()
        self.load = ClickLoad(s, s.clicks_topic, self.users, self.items,
                              linger_ms=self.linger_ms)
        self.warm_up()
        return self

    def warm_up(self, timeout_s: float = 180.0) -> None:
        """One click per partition answered: every worker joined and loaded its model."""
        deadline = time.monotonic() + timeout_s
        keys = [self.load.send(user, int(self.items[0])) for user in range(1, 65)]
        self.load.producer.flush()
        while self.collector.wait_for(keys, 1.0) < len(keys):
            self.check_alive()
            if time.monotonic() > deadline:
                raise StackError(f"{self.name}: no answers after {timeout_s:.0f}s")
        time.sleep(1.0)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise StackError(f"{self.name}: worker exited with {proc.returncode}; "
                                 f"see {self.log_dir}")

    def stages(self) -> dict[str, tuple[float, float]]:
        """(sum_s, count) of recall_stage_seconds per stage, over every worker of the run."""
        if self.mode == "passthrough":
            return {}
        out: dict[str, tuple[float, float]] = {}
        for port in self.ports:
            url = f"http://{self.settings.worker_web_host}:{port}/metrics"
            text = urllib.request.urlopen(url, timeout=10).read().decode()
            for line in text.splitlines():
                found = STAGE_LINE.match(line)
                if found:
                    kind, stage, value = found.groups()
                    total, count = out.get(stage, (0.0, 0.0))
                    if kind == "sum":
                        out[stage] = (total + float(value), count)
                    else:
                        out[stage] = (total, count + float(value))
        return out

    def __exit__(self, *exc: object) -> None:
        self.collector.stop()
        self.load.close()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
