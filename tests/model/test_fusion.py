"""Weighted reciprocal-rank fusion and its attribution (model.fusion)."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.fusion import CHANNELS, FusionConfig, Ragged, fuse, fuse_batch, fuse_ragged
from model.ranking import Ranked


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


def brute_fuse(lists: dict[str, list[int]], cfg: FusionConfig, top_k: int) -> tuple:
    """The rule as the module doc states it, one item at a time."""
    score: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}  # item -> (largest share, -channel index)
    for c, channel in enumerate(CHANNELS):
        w = cfg.weight(channel)
        for rank, item in enumerate(lists.get(channel, []) if w > 0 else []):
            part = w / (cfg.k0 + rank + 1)
            score[item] = score[item] + part if item in score else part
            best[item] = max(best.get(item, (part, -c)), (part, -c))
    ranked = sorted(score, key=lambda i: (-score[i], i))[:top_k]
    return (ranked, [score[i] for i in ranked], [CHANNELS[-best[i][1]] for i in ranked],
            [-1] * len(ranked))


channel_lists = st.dictionaries(st.sampled_from(CHANNELS),
                                st.lists(st.integers(0, 30), max_size=12, unique=True))


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(channel_lists, min_size=1, max_size=5),
       weights=st.tuples(*[st.sampled_from([0.0, 0.25, 1.0, 2.0])] * 4),
       k0=st.sampled_from([0.0, 1.0, 60.0]), top_k=st.integers(0, 10))
def test_fuse_batch_equals_the_rule_row_by_row(batch: list[dict[str, list[int]]],
                                               weights: tuple[float, ...], k0: float,
                                               top_k: int) -> None:
    mind, cooccur, nxt, popular = weights
    cfg = FusionConfig(mind, cooccur, nxt, popular, k0)
    got = fuse_batch(batch, cfg, top_k)
    assert [astuple(f) for f in got] == [brute_fuse(lists, cfg, top_k) for lists in batch]


def test_an_item_keeps_the_note_of_its_largest_share() -> None:
    cfg = FusionConfig(mind=1.0, cooccur=1.0, k0=0.0)
    mind = Ragged.of([[5, 6, 7], [8]], [[2, 0, 3], [1]])  # notes: the interest of each item
    co = Ragged.of([[7, 9], []])
    fused = fuse_ragged(2, {"mind": mind, "cooccur": co}, cfg, 10)
    # row 0: 5 (mind 1/1), 7 (mind 1/3 + cooccur 1/1: cooccur's share is larger), 6, 9
    assert fused[0].item_ids == [7, 5, 6, 9]
    assert fused[0].channels == ["cooccur", "mind", "mind", "cooccur"]
    assert fused[0].notes == [-1, 2, 0, -1]
    assert (fused[1].item_ids, fused[1].notes) == ([8], [1])


def test_ragged_splits_back_into_its_rows() -> None:
    rows = [[3, 1], [], [2]]
    got = Ragged.of(rows)
    assert got.split() == rows and got.sizes.tolist() == [2, 0, 1]
    assert got.ids.dtype == np.int64


def test_ragged_of_a_flat_ranking_holds_its_rows() -> None:
    ranked = Ranked.of_pairs([([4, 2], [2.0, 1.0]), ([], []), ([7], [0.5])])
    got = Ragged.of_ranked(ranked)
    assert got.split() == [[4, 2], [], [7]] and got.sizes.tolist() == [2, 0, 1]
    assert Ragged.of_ranked(Ranked.empty(2, 5)).split() == [[], []]
