"""The Faust worker as a process on the real stack: clicks in, recommendations and dead letters."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from consumers.kafka import make_consumer, poll_records
from harness.launch import to_env, wait_until
from producers.items import embedding_records, publish, read_item_table
from producers.kafka import open_sender
from streams.history import HistoryStore
from streams.index import ItemIndex
from streams.records import DeadLetter, Recommendation, Wire
from streams.settings import Settings
from tests.integration.conftest import train_small_model

pytestmark = pytest.mark.integration


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
    settings = core_settings.model_copy(update={
        "model_dir": str(own_model), "consumer_group": f"worker-{tmp_path.name}"})
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


def test_worker_end_to_end_with_bad_events_and_hot_reload(worker: Settings) -> None:
    settings = worker
    version, ids, vectors = read_item_table(settings.model_dir)
    with open_sender(settings.kafka_bootstrap, settings.items_topic) as sender:
        publish(embedding_records(ids, vectors), sender)
    index = ItemIndex(settings.milvus_uri, settings.milvus_collection, settings.embedding_dim)
    index.start()
    # >=: other tests of the session also publish items on the shared topic
    wait_until("item vectors in Milvus", lambda: index.count() >= len(ids), 120)
    index.close()

    recs = Reader(settings, settings.recs_topic, Recommendation)
    dead = Reader(settings, settings.dead_letter_topic, DeadLetter)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=1)
    users = range(70_001, 70_021)
    sent = []
    for n in range(200):
        user, item = users[n % 20], int(ids[(n * 7) % len(ids)])
        value = {"user_id": user, "item_id": item, "ts": 1000.0 + n}
        key = str(user).encode()
        producer.send(settings.clicks_topic, key=key, value=json.dumps(value).encode())
        sent.append((user, item, 1000.0 + n))
    bad = [b"{oops 70001", b'{"user_id": 70001, "item_id": "x", "ts": 1}', b'{"user_id": 70001}']
    for raw in bad:
        producer.send(settings.clicks_topic, key=b"70001", value=raw)
    producer.flush()

    wait_until("recommendations",
               lambda: len(recs.drain()) >= 200 and len(dead.drain()) >= 3, 120)
    got = [r for r in recs.records if r.user_id in users]
    assert sorted((r.user_id, r.click_item, r.click_ts) for r in got) == sorted(sent)
    assert all(r.model_version == version and len(r.item_ids) == settings.top_k for r in got)
    reasons = [d.reason for d in dead.records
               if d.topic == settings.clicks_topic and "70001" in d.excerpt]
    assert len(reasons) == 3 and "not JSON" in reasons[0] and "integer" in reasons[1]

    store = HistoryStore(settings.redis_url)
    store.start()
    expected = [item for user, item, _ in sent if user == users[0]][-10:]
    assert store.get([users[0]])[users[0]] == expected
    store.close()

    # Hot reload: a newer export appears; the worker switches without dropping clicks.
    train_small_model(Path(settings.model_dir), seed=1)
    new_version = (Path(settings.model_dir) / "LATEST").read_text().strip()
    assert new_version > version

    def switched() -> bool:
        producer.send(settings.clicks_topic, key=b"70001",
                      value=json.dumps({"user_id": 70001, "item_id": int(ids[0]),
                                        "ts": time.time()}).encode())
        producer.flush()
        time.sleep(0.5)
        return any(r.model_version == new_version for r in recs.drain())

    wait_until("the worker to serve the new model", switched, 120)
    producer.close()
