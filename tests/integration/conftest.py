"""Fixtures that start one real local stack per test session and hand out clients on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from consumers.kafka import make_consumer, poll_records
from harness.stack.launch import to_env, wait_until
from harness.stack.servers import LocalStack, free_ports
from producers.items import embedding_records, publish, read_item_table
from producers.kafka import open_sender
from streams.records import Wire
from streams.settings import Settings
from streams.stores.history import HistoryStore
from streams.stores.index import ItemIndex


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running LocalStack on free ports in a temp dir; `stack.settings` points at it."""
    kafka_port, redis_port, milvus_port = free_ports(3)
    local = LocalStack(
        Settings(),
        stack_dir=tmp_path_factory.mktemp("stack"),
        kafka_port=kafka_port,
        redis_port=redis_port,
        milvus_port=milvus_port,
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@contextmanager
def empty_store(url: str, history_len: int, cluster: bool = False,
                **options: Any) -> Iterator[HistoryStore]:
    """A started, emptied HistoryStore (`options`: more of its arguments), closed on exit."""
    store = HistoryStore(url, history_len=history_len, cluster=cluster, **options)
    store.start()
    try:
        store.flush()
        yield store
    finally:
        store.close()


@pytest.fixture()
def redis_store(stack: LocalStack) -> Iterator[HistoryStore]:
    """A started HistoryStore on the stack's Redis, emptied before the test."""
    with empty_store(stack.settings.redis_url, stack.settings.history_len) as store:
        yield store


@pytest.fixture()
def item_index(stack: LocalStack) -> Iterator[ItemIndex]:
    """A started ItemIndex on a collection unique to this test, dropped afterwards."""
    s = stack.settings
    index = ItemIndex(
        s.milvus_uri, f"test_{uuid.uuid4().hex[:12]}", s.embedding_dim, s.milvus_index
    )
    index.start()
    try:
        yield index
    finally:
        try:
            index.destroy()
        finally:
            index.close()


def train_small_model(out: Path, seed: int = 0) -> None:
    """Train and export a small real MIND model on the built-in generator (about 10 s)."""
    command = [sys.executable, "-m", "model.train", "--synthetic", "--epochs", "2",
               "--seed", str(seed), "--no-progress", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported MIND model trained once per session; tests must not write into it."""
    out = tmp_path_factory.mktemp("model")
    train_small_model(out)
    return out


@pytest.fixture()
def core_settings(stack: LocalStack, model_dir: Path) -> Settings:
    """Stack settings with the session model and a Milvus collection unique to the test."""
    return stack.settings.model_copy(update={
        "model_dir": str(model_dir),
        "milvus_collection": f"items_{uuid.uuid4().hex[:12]}",
        "reload_interval_s": 1.0,
        "worker_web_port": 0,  # workers serve /metrics only where a test asks (free port)
    })


class Reader:
    """Collects records of one type from a topic, starting at its current end."""

    def __init__(self, settings: Settings, topic: str, kind: type[Wire]):
        self.consumer = make_consumer(settings.kafka_bootstrap, topic, fetch_max_wait_ms=10)
        self.kind = kind
        self.records: list[Any] = []

    def drain(self) -> list[Any]:
        self.records += [r for _, r in poll_records(self.consumer, self.kind, idle_timeout_s=0.3)]
        return self.records


@pytest.fixture()
def worker(core_settings: Settings, model_dir: Path, tmp_path: Path) -> Iterator[Settings]:
    """A worker process on its own copy of the model (the test exports a newer one into it)."""
    own_model = tmp_path / "model"
    shutil.copytree(model_dir, own_model)
    (web_port,) = free_ports(1)
    settings = core_settings.model_copy(update={
        "model_dir": str(own_model), "consumer_group": f"worker-{tmp_path.name}",
        "worker_web_port": web_port, "metrics_interval_s": 1.0})
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streams.worker"], stdout=log,
                            stderr=subprocess.STDOUT, env=to_env(settings) | {"PATH": "/usr/bin"})
    try:
        yield settings
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        log.close()
        print((tmp_path / "worker.log").read_text()[-3000:])
        assert code == 0, "worker did not stop cleanly on SIGTERM"
        index = ItemIndex(settings.milvus_uri, settings.milvus_collection, settings.embedding_dim)
        index.start()
        index.destroy()
        index.close()


def answers(url: str) -> bool:
    """Whether a GET of `url` answers 200 now (a refused or timed-out request: False)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stream_model_items(settings: Settings) -> tuple[str, np.ndarray, np.ndarray]:
    """Publish the model's item table on the items topic and wait until Milvus holds it.

    Returns (model version, ids [N], vectors [N, D]). Waits for >= N items: other tests of the
    session also publish on the shared topic.
    """
    version, ids, vectors = read_item_table(settings.model_dir)
    with open_sender(settings.kafka_bootstrap, settings.items_topic) as sender:
        publish(embedding_records(ids, vectors), sender)
    index = ItemIndex(settings.milvus_uri, settings.milvus_collection, settings.embedding_dim)
    index.start()
    try:
        wait_until("item vectors in Milvus", lambda: index.count() >= len(ids), 120)
    finally:
        index.close()
    return version, ids, vectors
