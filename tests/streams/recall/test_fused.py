"""FusedRecaller (streams.recall.fused) over an in-memory MIND and the in-memory co-occurrence
counts:
each channel's list, one fused list with its attribution, exclusions, fallbacks."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.cooccur import CooccurConfig, CooccurCounts, score_users
from model.fusion import FusionConfig, fuse
from model.ranking import Excluded, Ranked
from streams.recall.cooccur_reader import CooccurLists
from streams.recall.fused import FusedRecaller, parse_channels, unseen
from streams.recall.recaller import Recaller
from tests.streams.recall.test_recaller import ExactIndex, TableModel


class MemoryReader:
    """CooccurReader's interface over model.cooccur's in-memory counts; counts calls."""

    def __init__(self, counts: CooccurCounts) -> None:
        self.counts, self.cfg, self.calls = counts, counts.cfg, 0

    def read(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
             top_k: int, popular: int = 0) -> CooccurLists:
        self.calls += 1
        top = sorted(self.counts.n, key=lambda i: (-self.counts.n[i], i))[:popular]
        return CooccurLists(Ranked.of_pairs(self.counts.recall(histories, exclude, top_k)), top,
                            123.0)


def world() -> tuple[Recaller, MemoryReader]:
    rng = np.random.default_rng(0)
    table = {i: rng.normal(size=8).astype(np.float32) for i in range(1, 41)}
    ids = np.array(sorted(table))
    mind = Recaller(TableModel(table), ExactIndex(ids, np.stack([table[i] for i in ids])), 10)
    counts = CooccurCounts(CooccurConfig())
    for user in range(30):
        for item in rng.integers(1, 41, size=8).tolist():
            counts.add(user, item, 0.0)
    return mind, MemoryReader(counts)


def test_the_fused_list_is_the_fusion_of_each_channels_own_list() -> None:
    mind, reader = world()
    cfg = FusionConfig(1.0, 1.5, 0.3, 10.0)
    fused = FusedRecaller(mind, parse_channels("popular,mind,cooccur"), cfg, reader)
    histories, exclude = [[1, 2, 3], [4, 5]], [[1, 2, 3, 9], [4, 5]]
    got = fused.recall(histories, exclude=exclude)
    assert reader.calls == 1  # one read for the batch
    alone = mind.recall(histories, exclude=exclude)
    co = score_users(histories, reader.counts.view(histories), reader.cfg, exclude, 10)
    for row, found in enumerate(got):
        assert found.source == "fused" and found.counts_ts == 123.0
        assert found.channel_lists["mind"] == alone[row].item_ids
        assert found.channel_lists["cooccur"] == co[row][0]
        assert not set(found.channel_lists["popular"]) & set(exclude[row])
        want = fuse(found.channel_lists, cfg, 10)
        assert (found.item_ids, found.channels) == (want.item_ids, want.channels)
        assert not set(found.item_ids) & set(exclude[row])
        by_mind = dict(zip(alone[row].item_ids, alone[row].interests, strict=True))
        for item, channel, interest in zip(found.item_ids, found.channels, found.interests,
                                           strict=True):
            assert interest == (by_mind[item] if channel == "mind" else -1)


def test_without_the_popular_channel_mind_brings_its_own_fallback() -> None:
    mind, reader = world()
    cfg = FusionConfig()
    fused = FusedRecaller(mind, ("mind", "cooccur"), cfg, reader)
    histories = [[1, 2, 3], [999], [4]]  # the middle user has no known item: no query
    got = fused.recall(histories)
    alone = mind.recall(histories)
    assert [c.source for c in got] == ["fused", "popular", "fused"]
    assert alone[1].source == "popular" and alone[1].item_ids
    for row, found in enumerate(got):
        assert found.channel_lists["mind"] == alone[row].item_ids
        want = fuse(found.channel_lists, cfg, 10)
        assert (found.item_ids, found.channels, found.interests) == \
            (want.item_ids, want.channels, want.notes)


def test_without_channel_lists_the_fused_lists_are_the_same() -> None:
    mind, reader = world()
    histories, exclude = [[1, 2, 3], [4, 5], [999]], [[1, 2, 3, 9], [4, 5], [999]]
    channels = parse_channels("mind,cooccur,popular")
    full = FusedRecaller(mind, channels, FusionConfig(), reader).recall(histories,
                                                                        exclude=exclude)
    lean = FusedRecaller(mind, channels, FusionConfig(), reader, channel_lists=False).recall(
        histories, exclude=exclude)
    for a, b in zip(full, lean, strict=True):
        assert (b.item_ids, b.scores, b.channels, b.interests, b.source) == \
            (a.item_ids, a.scores, a.channels, a.interests, a.source)
        assert a.channel_lists and b.channel_lists == {}


def test_a_user_without_known_items_gets_popularity_and_co_occurrence_only() -> None:
    mind, reader = world()
    fused = FusedRecaller(mind, ("mind", "cooccur", "popular"), FusionConfig(), reader)
    [found] = fused.recall([[999]])
    assert "mind" not in found.channel_lists  # MIND's popular fallback is not a second vote
    assert set(found.channels) == {"popular"} and found.source == "popular"  # a fallback
    assert len(found.item_ids) == 10


def test_deferred_counts_are_counted_before_each_read_in_the_reader_thread() -> None:
    mind, reader = world()
    order: list[tuple[str, str]] = []
    read = reader.read

    def counting() -> None:
        order.append(("count", threading.current_thread().name))

    def reading(*args: object, **kwargs: object) -> CooccurLists:
        order.append(("read", threading.current_thread().name))
        return read(*args, **kwargs)  # type: ignore[arg-type]

    reader.read = reading  # type: ignore[method-assign]
    fused = FusedRecaller(mind, ("mind", "cooccur"), FusionConfig(), reader, count=counting)
    fused.recall([[1, 2]])
    fused.recall([[3]])
    assert [kind for kind, _ in order] == ["count", "read", "count", "read"]
    assert {name for _, name in order} != {threading.current_thread().name}
    fused.close()


def test_without_counts_popularity_comes_from_the_model() -> None:
    mind, _ = world()
    fused = FusedRecaller(mind, ("mind", "popular"), FusionConfig(), None)
    [found] = fused.recall([[1, 2]])
    assert found.channel_lists["popular"] == [i for i in mind.model.popular(60)
                                              if i not in (1, 2)][:10]
    assert found.counts_ts is None


def test_channel_names_are_checked() -> None:
    assert parse_channels(" cooccur ,mind") == ("mind", "cooccur")
    with pytest.raises(ValueError, match="channels"):
        parse_channels("mind,bogus")


@settings(max_examples=200, deadline=None)
@given(popular=st.lists(st.integers(0, 2**40), max_size=15),
       drops=st.lists(st.lists(st.integers(0, 2**40), max_size=8), min_size=1, max_size=4),
       n=st.integers(0, 12), data=st.data())
def test_unseen_keeps_each_rows_first_n_popular_items_it_has_not_seen(
        popular: list[int], drops: list[list[int]], n: int, data: st.DataObject) -> None:
    if popular:  # some dropped items are popular ones, as a user's seen items would be
        drops = [d + data.draw(st.lists(st.sampled_from(popular), max_size=5)) for d in drops]
    got = unseen(popular, Excluded(drops), n).split()
    assert got == [[i for i in popular if i not in set(d)][:n] for d in drops]
