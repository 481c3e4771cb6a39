"""Poison input against a real worker process: each finding of the fault review, end to end.

Before the fixes: a 300 KB non-UTF-8 click made a 1.8 MB dead letter the broker refused and
the agent stopped for good; item id 2**70 reached Redis and then poisoned the user's later
clicks; a click dated 2200 stayed "newest" for ever; a 3e38 vector became every user's top
candidate. Here valid clicks around them must all be answered, histories hold valid clicks
only, and every bad message is dead-lettered (small) with its offset.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from kafka import KafkaProducer

from harness.stack.launch import wait_until
from streams.records import DeadLetter, Recommendation
from streams.settings import Settings
from streams.stores.history import HistoryStore
from streams.stores.index import ItemIndex
from tests.integration.conftest import Reader, stream_model_items

pytestmark = pytest.mark.integration

USER, LATE_USER = 81_001, 81_002
HIJACKER = 9_000_001  # an item id the model does not know, streamed with a huge vector


def _click(user: int, item: int, ts: float) -> bytes:
    return json.dumps({"user_id": user, "item_id": item, "ts": ts}).encode()


def test_poison_messages_are_dead_lettered_and_valid_clicks_served(worker: Settings) -> None:
    settings = worker
    _, ids, vectors = stream_model_items(settings)
    index = ItemIndex(settings.milvus_uri, settings.milvus_collection, settings.embedding_dim)
    index.start()

    recs = Reader(settings, settings.recs_topic, Recommendation)
    dead = Reader(settings, settings.dead_letter_topic, DeadLetter)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5,
                             max_request_size=8 << 20)
    now = time.time()
    items = [int(i) for i in ids[:6]]
    bad_items = [  # (value, reason expected in the dead letter)
        (json.dumps({"item_id": HIJACKER, "vector": [3e38] * settings.embedding_dim}).encode(),
         "norm"),
        (json.dumps({"item_id": HIJACKER + 1, "vector": [0.0] * settings.embedding_dim}).encode(),
         "zeros"),
    ]
    bad_offsets = {}
    for value, reason in bad_items:
        meta = producer.send(settings.items_topic, key=b"x", value=value).get(30)
        bad_offsets[(settings.items_topic, meta.partition, meta.offset)] = reason
    sent = []  # valid clicks: (user, item, ts)
    bad_clicks = [
        (USER, bytes(range(128, 256)) * 1200, "over the"),  # 150 KB of non-UTF-8
        (USER, b"\xff" * (2 << 20), "over the"),  # 2 MB
        (USER, _click(USER, 2**70, now + 1.5), "item_id must be at most"),
        (USER, _click(2**63, 5, now), "user_id must be at most"),
        (LATE_USER, _click(LATE_USER, items[0], 7258118400.0), "ahead of the worker's clock"),
    ]
    for n in range(3):
        sent.append((USER, items[n], now + n))
    for user, value, reason in bad_clicks:
        meta = producer.send(settings.clicks_topic, key=str(user).encode(), value=value).get(30)
        bad_offsets[(settings.clicks_topic, meta.partition, meta.offset)] = reason
    sent += [(USER, items[3], now + 3), (LATE_USER, items[1], now + 4),
             (LATE_USER, items[2], now + 5)]
    for user, item, ts in sent:
        producer.send(settings.clicks_topic, key=str(user).encode(), value=_click(user, item, ts))
    producer.flush()

    def answered() -> bool:
        got = {(r.user_id, r.click_item, r.click_ts) for r in recs.drain()}
        letters = {(d.topic, d.partition, d.offset) for d in dead.drain()}
        return set(sent) <= got and set(bad_offsets) <= letters

    wait_until("answers to every valid click and a dead letter for every bad one", answered, 120)
    for letter in dead.records:
        where = (letter.topic, letter.partition, letter.offset)
        if where in bad_offsets:
            assert bad_offsets[where] in letter.reason, letter.reason
            assert len(letter.to_bytes()) < 8192 and len(letter.excerpt) <= 4 * 1024
    big = [d for d in dead.records if d.size == 2 << 20]
    assert big and big[0].truncated

    store = HistoryStore(settings.redis_url)
    store.start()
    histories = store.get([USER, LATE_USER])
    store.close()
    assert histories[USER] == items[:4]  # no 2**70, the valid clicks of the batch all applied
    assert histories[LATE_USER] == items[1:3]  # the year-2200 click never became "newest"

    mine = [r for r in recs.records if r.user_id in (USER, LATE_USER)]
    assert all(HIJACKER not in r.item_ids for r in mine)
    assert all(r.click_partition >= 0 and r.click_offset >= 0 for r in mine)
    found, _ = index.search(np.asarray(vectors[:1], dtype=np.float32), 5)
    assert HIJACKER not in found[0].tolist() and HIJACKER + 1 not in found[0].tolist()
    index.close()
    producer.close()
