"""Unit tests of the topic records: strict parsing with clear reasons, plain JSON on the wire."""

from __future__ import annotations

import json

import pytest

from streams.errors import BadEvent
from streams.records import Click, ItemEmbedding, Recommendation


def test_click_round_trip_is_plain_json() -> None:
    click = Click(user_id=3, item_id=9, ts=12.5)
    assert json.loads(click.to_bytes()) == {"user_id": 3, "item_id": 9, "ts": 12.5}
    assert Click.parse(click.to_bytes()) == click


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"user_id": 1, "item_id": 2}', "missing"),
        (b'{"user_id": 1, "item_id": 2, "ts": 1, "extra": 0}', "unknown fields"),
        (b'{"user_id": "1", "item_id": 2, "ts": 1}', "user_id must be an integer"),
        (b'{"user_id": true, "item_id": 2, "ts": 1}', "user_id must be an integer"),
        (b'{"user_id": 1, "item_id": 0, "ts": 1}', "item_id must be positive"),
        (b'{"user_id": 1, "item_id": 2, "ts": -1}', "non-negative"),
        (b'{"user_id": 1, "item_id": 2, "ts": "now"}', "ts must be a number"),
    ],
)
def test_bad_clicks_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(BadEvent, match=reason):
        Click.parse(raw)


def test_item_embedding_rules() -> None:
    assert ItemEmbedding.parse(b'{"item_id": 4, "deleted": true}').deleted
    assert ItemEmbedding.parse({"item_id": 4, "vector": [0.5, 1]}).vector == [0.5, 1]
    with pytest.raises(BadEvent, match="non-empty list"):
        ItemEmbedding.parse({"item_id": 4})
    with pytest.raises(BadEvent, match="non-finite"):
        ItemEmbedding.parse(b'{"item_id": 4, "vector": [1, NaN]}')


def test_recommendation_parses_what_the_worker_writes() -> None:
    rec = Recommendation(user_id=1, item_ids=[5, 6], scores=[0.9, 0.8], model_version="v",
                         click_item=3, click_ts=1.0, emit_ts=1.1, history=[3])
    assert Recommendation.parse(rec.to_bytes()).item_ids == [5, 6]
