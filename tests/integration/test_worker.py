"""The Faust worker as a process on the real stack: clicks in, recommendations and dead letters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from harness.stack.launch import wait_until
from streams.records import DeadLetter, Recommendation
from streams.settings import Settings
from streams.stores.history import HistoryStore
from tests.integration.conftest import Reader, stream_model_items, train_small_model

pytestmark = pytest.mark.integration


def test_worker_end_to_end_with_bad_events_and_hot_reload(worker: Settings) -> None:
    settings = worker
    version, ids, _ = stream_model_items(settings)

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
