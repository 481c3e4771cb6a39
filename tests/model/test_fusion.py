"""Weighted reciprocal-rank fusion and its attribution (model.fusion)."""

from __future__ import annotations

import pytest

from model.fusion import FusionConfig, fuse


def test_items_in_several_lists_add_up_and_keep_the_largest_share() -> None:
    cfg = FusionConfig(mind=1.0, cooccur=2.0, popular=0.5, k0=1.0)
    fused = fuse({"mind": [1, 2, 3], "cooccur": [3, 4], "popular": [5, 1]}, cfg, 10)
    want = {1: 1 / 2 + 0.5 / 3, 2: 1 / 3, 3: 1 / 4 + 2 / 2, 4: 2 / 3, 5: 0.5 / 2}
    assert fused.item_ids == sorted(want, key=lambda i: (-want[i], i))
    assert fused.scores == pytest.approx(sorted(want.values(), reverse=True))
    assert dict(zip(fused.item_ids, fused.channels, strict=True)) == {
        1: "mind", 2: "mind", 3: "cooccur", 4: "cooccur", 5: "popular"}


def test_ties_go_to_the_smaller_id_and_the_earlier_channel() -> None:
    cfg = FusionConfig(mind=1.0, cooccur=1.0, popular=1.0, k0=0.0)
    fused = fuse({"mind": [8], "cooccur": [7], "popular": [8]}, cfg, 1)
    assert fused.item_ids == [8] and fused.channels == ["mind"]
    fused = fuse({"mind": [8], "cooccur": [7]}, cfg, 2)
    assert fused.item_ids == [7, 8]


def test_a_zero_weight_or_missing_channel_adds_nothing() -> None:
    cfg = FusionConfig(mind=1.0, cooccur=0.0, popular=1.0, k0=0.0)
    fused = fuse({"mind": [1], "cooccur": [2]}, cfg, 5)
    assert fused.item_ids == [1] and fused.channels == ["mind"]
