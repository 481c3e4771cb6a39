"""Two worker processes in one consumer group split the clicks, and both use streamed items.

The items topic has one partition, so only one of the two workers upserts item records into
Milvus; before each worker read the whole topic itself (streams/worker/item_feed.py), the other one
skipped every streamed item in its users' histories (and answered users who had only those with
popular items).
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from harness.stack.launch import wait_until
from harness.stack.servers import free_ports
from producers.items import deletion_records, embedding_records, publish, read_item_table
from producers.kafka import open_sender
from streams.records import Recommendation
from streams.settings import Settings
from streams.stores.history import HistoryStore
from streams.stores.index import ItemIndex
from tests.integration.conftest import Reader
from tests.integration.recovery import Workers

pytestmark = pytest.mark.integration

USERS, CLICKS_PER_USER, NEW_ITEMS = 80, 12, 20


def scrape(port: int) -> dict[str, float]:
    """A worker's `recall_*` samples without labels, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name.startswith("recall_") and not s.labels}


def test_two_workers_split_clicks_and_both_use_new_items(core_settings: Settings,
                                                        tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = core_settings.model_copy(update={  # clicks of its own: other tests' workers
        "consumer_group": f"two-workers-{tag}", "metrics_interval_s": 1.0,  # read from 0
        "clicks_topic": f"clicks-{tag}", "recs_topic": f"recs-{tag}"})
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(t, settings.partitions, 1)
                         for t in (settings.clicks_topic, settings.recs_topic)])
    admin.close()
    ports = dict(zip(("w1", "w2"), free_ports(2), strict=True))
    workers = Workers(settings, tmp_path)
    recs = Reader(settings, settings.recs_topic, Recommendation)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    index = ItemIndex(settings.milvus_uri, settings.milvus_collection, settings.embedding_dim)
    try:
        for name, port in ports.items():
            workers.start(name, worker_web_port=port)
        for name in ports:
            workers.wait_assigned(name, 90)
        wait_until("both item feeds caught up", lambda: all(
            "item feed caught up" in workers.log_text(name) for name in ports), 30)
        # streamed vectors other tests of the session left on the shared items topic
        before = {name: scrape(port).get("recall_streamed_items", 0)
                  for name, port in ports.items()}

        # The model's items, then NEW ones (ids the model never saw) and deletes of 5 of them.
        _, ids, vectors = read_item_table(settings.model_dir)
        new_ids = np.arange(NEW_ITEMS, dtype=np.int64) + 7_000_000_000 + int(ids.max())
        new_vectors = vectors[:NEW_ITEMS] * 1.5
        doomed = [int(i) for i in new_ids[-5:]]
        with open_sender(settings.kafka_bootstrap, settings.items_topic) as sender:
            publish(embedding_records(ids, vectors), sender)
            publish(embedding_records(new_ids, new_vectors), sender)
            publish(deletion_records(doomed), sender)
        index.start()
        wait_until("items in Milvus", lambda: index.count() >= len(ids) + NEW_ITEMS - 5, 60,
                   workers.check_alive)

        def doomed_in_milvus() -> list[object]:
            return index.client.query(settings.milvus_collection, filter=f"item_id in {doomed}",
                                      output_fields=["item_id"], consistency_level="Strong")

        # the count can reach its mark before the deletes land (the new items first)
        wait_until("deletes applied in Milvus", lambda: not doomed_in_milvus(), 30,
                   workers.check_alive)
        held = NEW_ITEMS - 5

        def holding() -> dict[str, float]:
            return {name: scrape(port).get("recall_streamed_items", 0) - before[name]
                    for name, port in ports.items()}

        wait_until("both workers hold the streamed vectors, deletes applied",
                   lambda: set(holding().values()) == {held}, 30, workers.check_alive)

        # Every user's first clicks are new items: only their streamed vectors make a history.
        kept = [int(i) for i in new_ids[:-5]]
        sent: dict[tuple[int, int], tuple[int, int]] = {}  # (partition, offset) -> (user, item)
        futures = []
        for n in range(CLICKS_PER_USER):
            for user in range(1, USERS + 1):
                uid = 50_000_000 + user
                item = kept[(user + n) % len(kept)] if n % 3 != 2 else int(ids[user + n])
                value = {"user_id": uid, "item_id": item, "ts": 1000.0 + n}
                futures.append(((uid, item), producer.send(
                    settings.clicks_topic, key=str(uid).encode(),
                    value=json.dumps(value).encode())))
        producer.flush()
        for click, future in futures:
            meta = future.get(10)
            sent[(meta.partition, meta.offset)] = click

        def answered() -> bool:
            workers.check_alive()
            return len({(r.click_partition, r.click_offset) for r in recs.drain()
                        if (r.click_partition, r.click_offset) in sent}) >= len(sent)

        wait_until("a recommendation per click", answered, 60)
        ours = [r for r in recs.drain() if (r.click_partition, r.click_offset) in sent]
        keys = [(r.click_partition, r.click_offset) for r in ours]
        assert len(keys) == len(set(keys)) == len(sent), "exactly one recommendation per click"
        for r in ours:
            assert (r.user_id, r.click_item) == sent[(r.click_partition, r.click_offset)]
            assert not set(doomed) & set(r.item_ids)

        expected: dict[int, list[int]] = {}
        for _, (user, item) in sorted(sent.items()):
            expected.setdefault(user, []).append(item)  # one user: one partition, offset order
        store = HistoryStore(settings.redis_url)
        store.start()
        try:
            assert store.get(list(expected)) == {u: items[-10:] for u, items in expected.items()}
        finally:
            store.close()

        by_worker = {name: scrape(port) for name, port in ports.items()}
        print(json.dumps(by_worker, indent=1))
        published = [m["recall_recommendations_published_total"] for m in by_worker.values()]
        assert sum(published) == len(sent) and min(published) > 0, "both workers served clicks"
        for name, m in by_worker.items():
            assert m["recall_history_items_without_vector_total"] == 0, name
            assert m["recall_popular_fallbacks_total"] == 0, name
    finally:
        producer.close()
        workers.stop_all()
        index.destroy()
        index.close()
        for name in ports:
            print(name, workers.log_text(name)[-2000:])
