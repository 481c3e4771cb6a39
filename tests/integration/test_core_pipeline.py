"""The recall core and batch steps on real Redis, Milvus and a trained MIND model."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from model.fusion import fuse
from streams.recall.core import Core, open_core
from streams.recall.fused import FusedRecaller
from streams.records import DeadLetter, Limits, Recommendation
from streams.settings import Settings
from streams.stores.history import HistoryStore
from streams.worker.item_feed import apply_records
from streams.worker.pipeline import ClickPipeline, ItemPipeline, RawMessage

pytestmark = pytest.mark.integration


def click(offset: int, user: int, item: int, ts: float, partition: int = 0) -> RawMessage:
    value = json.dumps({"user_id": user, "item_id": item, "ts": ts}).encode()
    return RawMessage("clicks", partition, offset, str(user).encode(), value)


def exact_recall(core: Core, history: list[int], top_k: int) -> list[int]:
    """Independent answer: interests x full item table, best score per item, history removed."""
    ids, vectors = core.model.item_table()
    interests, _ = core.model.interests([history])  # [1, K, D]
    best = (interests[0] @ vectors.T).max(axis=0)  # [N]
    order = [int(ids[i]) for i in np.argsort(-best, kind="stable") if ids[i] not in history]
    return order[:top_k]


@pytest.fixture()
def core(core_settings: Settings) -> Iterator[Core]:
    with open_core(core_settings.model_copy(update={"record_channel_lists": True})) as opened:
        assert opened.history is not None
        opened.history.flush()
        opened.load_items()
        yield opened
        opened.index.destroy()


def test_load_items_fills_milvus_with_the_model_table(core: Core) -> None:
    ids, _ = core.model.item_table()
    assert core.index.count() == len(ids)


def test_click_batch_gives_one_recommendation_per_click_and_dead_letters(core: Core) -> None:
    assert core.history is not None and isinstance(core.recaller, FusedRecaller)
    items = core.model.item_table()[0][:6].tolist()
    messages = [
        click(0, 1, items[0], 100.0),
        click(1, 1, items[1], 101.0),
        RawMessage("clicks", 0, 2, b"1", b"{not json"),
        click(3, 2, items[2], 102.0),
        RawMessage("clicks", 0, 4, b"2", b'{"user_id": 2, "item_id": -5, "ts": 1}'),
    ]
    out = ClickPipeline(core.history, core.recaller, channel_lists=True).process(messages)
    recs = [Recommendation.parse(v) for _, v in out.records]
    pairs = [(r.user_id, r.click_item) for r in recs]
    assert pairs == [(1, items[0]), (1, items[1]), (2, items[2])]
    dead = [DeadLetter.parse(v) for _, v in out.dead]
    assert [(d.offset, d.partition, d.topic) for d in dead] == [(2, 0, "clicks"), (4, 0, "clicks")]
    assert "not JSON" in dead[0].reason and "item_id must be positive" in dead[1].reason
    for rec in recs:
        assert rec.model_version == core.model.version
        assert len(rec.item_ids) == core.settings.top_k
        assert not set(rec.item_ids) & set(rec.history)
        assert rec.channel_lists is not None and rec.channels is not None
        mind = rec.channel_lists["mind"]  # as long as RECALL_FUSION_LIST_LEN
        assert mind == exact_recall(core, rec.history, len(mind))
        fused = fuse(rec.channel_lists, core.recaller.fusion, core.settings.top_k)
        assert (rec.item_ids, rec.channels) == (fused.item_ids, fused.channels)
        assert rec.counts_ts == 102.0  # the three clicks were counted before the read
    assert recs[0].history == [items[0], items[1]]
    assert out.counts == {"history_items_without_vector": 0, "popular_fallbacks": 0}


def test_replayed_batch_is_not_applied_twice(core: Core) -> None:
    assert core.history is not None
    items = core.model.item_table()[0][:3].tolist()
    batch = [click(10, 7, items[0], 1.0), click(11, 7, items[1], 2.0)]
    pipeline = ClickPipeline(core.history, core.recaller)
    pipeline.process(batch)
    again = pipeline.process(batch)  # e.g. redelivered after a crash before the commit
    assert Recommendation.parse(again.records[-1][1]).history == items[:2]
    assert core.history.get([7])[7] == items[:2]


def test_streamed_items_are_searchable_usable_as_history_and_deletable(core: Core) -> None:
    assert core.history is not None
    ids, vectors = core.model.item_table()
    new_id = int(ids.max()) + 1000
    vector = (vectors[0] * 3.0).tolist()  # far out along item 0's direction: ranks high
    bad = RawMessage("items", 0, 1, b"x", json.dumps({"item_id": 5, "vector": [1.0]}).encode())
    payload = json.dumps({"item_id": new_id, "vector": vector}).encode()
    upsert = RawMessage("items", 0, 0, b"x", payload)
    limits = Limits(dim=core.model.dim)
    items = ItemPipeline(core.index, limits)
    out = items.process([upsert, bad])
    assert apply_records([upsert.value, bad.value], core.model, limits) == 1  # the worker's feed
    assert "dimensions" in DeadLetter.parse(out.dead[0][1]).reason
    assert core.index.count() == len(ids) + 1
    # A history made only of the streamed item is served from its streamed vector.
    mind = core.recaller.mind if isinstance(core.recaller, FusedRecaller) else core.recaller
    found = mind.recall([[new_id]])[0]
    assert found.source == "mind" and new_id not in found.item_ids
    found = mind.recall([[int(ids[0])]])[0]
    assert new_id in found.item_ids
    payload = json.dumps({"item_id": new_id, "deleted": True}).encode()
    delete = RawMessage("items", 0, 2, b"x", payload)
    items.process([delete])
    apply_records([delete.value], core.model, limits)
    assert core.model.streamed_items == 0
    assert new_id not in mind.recall([[int(ids[0])]])[0].item_ids
    assert core.index.count() == len(ids)


def test_history_with_only_unknown_items_falls_back_to_popular(core: Core) -> None:
    found = core.recaller.recall([[10**9]])[0]
    assert found.source == "popular" and found.skipped == 1
    assert found.item_ids == core.model.popular(core.settings.top_k)


def test_a_user_is_never_recommended_any_item_it_clicked(core: Core) -> None:
    """15 distinct clicks, each on the best candidate of the previous recommendation: none of
    the 15 comes back; with seen items off (the last 10 clicks excluded) earlier ones do."""
    assert core.history is not None
    pipeline = ClickPipeline(core.history, core.recaller)
    clicked = [int(core.model.item_table()[0][0])]
    for n in range(15):
        out = pipeline.process([click(100 + n, 9, clicked[-1], 1000.0 + n)])
        rec = Recommendation.parse(out.records[-1][1])
        assert not set(rec.item_ids) & set(clicked), n
        assert len(rec.item_ids) == core.settings.top_k
        if n < 14:
            clicked.append(rec.item_ids[0])
    assert len(set(clicked)) == 15 and rec.history == clicked[-10:]
    assert core.history.seen([9])[9] == clicked
    off = HistoryStore(core.settings.redis_url, prefix="seen-off:")  # seen_max 0
    try:
        messages = [click(100 + n, 9, item, 1000.0 + n) for n, item in enumerate(clicked)]
        out = ClickPipeline(off, core.recaller).process(messages)
        last = Recommendation.parse(out.records[-1][1])
        assert last.history == rec.history and set(last.item_ids) & set(clicked[:5])
    finally:
        off.flush()
        off.close()
