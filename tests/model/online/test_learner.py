"""Unit tests of the online learner, its saved state and the prequential scoring pieces."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import paddle

from model.config import MindConfig
from model.export import write_latest
from model.network import MindUserTower
from model.online.learner import OnlineConfig, OnlineLearner, ReplayBuffer
from model.online.score import ServedLists, Tally, chunks, most_popular
from model.online.state import StreamState, after_publish, changed_rows, prune_versions

CFG = MindConfig(dim=8, num_interests=2, maxlen=4, negatives=16, seed=1)


def learner(n_items: int = 20, **online: object) -> OnlineLearner:
    paddle.seed(1)
    vectors = np.random.default_rng(0).normal(0, 0.3, (n_items, CFG.dim)).astype(np.float32)
    ids = np.arange(101, 101 + n_items)
    return OnlineLearner(CFG, OnlineConfig(seed=3, **online),  # type: ignore[arg-type]
                         MindUserTower(CFG).state_dict(), ids, vectors)


def test_new_items_get_rows_past_the_capacity_and_old_vectors_stay() -> None:
    model = learner()
    before = model.vectors().copy()
    capacity = model.capacity
    new = [(10_000 + n, [101, 102]) for n in range(capacity)]  # more than the spare rows
    assert model.add_items(new) == capacity
    assert model.add_items(new[:3]) == 0  # known now
    assert model.capacity > capacity and model.num_items == 20 + capacity
    np.testing.assert_array_equal(model.vectors()[:20], before)
    assert model.row[10_000] == 21 and model.ids[20] == 10_000


def test_history_init_starts_a_new_item_near_its_clickers_items() -> None:
    model = learner(init_noise=0.0)
    model.add_items([(555, [101, 103])])
    vectors = model.vectors()
    np.testing.assert_allclose(vectors[-1], vectors[[0, 2]].mean(axis=0), rtol=1e-6)
    rand = learner(new_item_init="random")
    rand.add_items([(555, [101, 103])])
    assert not np.allclose(rand.vectors()[-1], vectors[-1])


def test_history_init_within_one_call_uses_the_rows_that_call_made() -> None:
    """A new item whose clicker clicked another new item of the same call starts near that
    item's new row too; the mean is over the last maxlen known items, earlier rows untouched."""
    model = learner(init_noise=0.0)
    before = model.vectors().copy()
    model.add_items([(555, [101, 103]), (556, [555, 104]), (557, [999, 556, 101, 102, 103])])
    vectors = model.vectors()  # rows: 101..120 -> 0..19, 555 -> 20, 556 -> 21, 557 -> 22
    np.testing.assert_array_equal(vectors[:20], before)
    np.testing.assert_allclose(vectors[20], before[[0, 2]].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(vectors[21], np.stack([vectors[20], before[3]]).mean(axis=0),
                               rtol=1e-6)
    # maxlen 4: the last four known items of the history (999 is unknown)
    np.testing.assert_allclose(vectors[22], np.stack([vectors[21], *before[[0, 1, 2]]]).mean(
        axis=0), rtol=1e-6)


def test_sparse_learner_moves_only_the_rows_a_step_used() -> None:
    """Dense Adam keeps moving the rows of an earlier step (momentum); the sparse table gradient
    with lazy Adam moves only the rows the step used (its batch and sampled negatives)."""
    changed_in_second = {}
    for sparse in (False, True):
        model = learner(n_items=2000, lr=0.01, replay=0, passes=1, sparse=sparse)
        model.step(np.array([[1, 2, 0, 0]] * 4), np.array([7] * 4))
        before = model.vectors().copy()
        model.step(np.array([[3, 4, 0, 0]] * 4), np.array([9] * 4))
        moved = np.nonzero(np.abs(model.vectors() - before).sum(axis=1) > 0)[0] + 1  # rows
        assert {3, 4, 9} <= set(moved.tolist())
        changed_in_second[sparse] = set(moved.tolist())
    assert {1, 2, 7} <= changed_in_second[False]
    assert not {1, 2, 7} & changed_in_second[True]
    assert len(changed_in_second[True]) <= 3 + CFG.negatives


def test_training_on_a_repeated_pattern_lowers_the_loss_and_fills_the_buffer() -> None:
    model = learner(lr=0.01, replay=8, passes=2)
    hist = np.array([[1, 2, 0, 0], [3, 4, 5, 0]] * 8)  # rows of the table
    label = np.array([7, 9] * 8)
    first = model.step(hist, label)
    for _ in range(30):
        last = model.step(hist, label)
    assert last < first * 0.7
    assert model.buffer.filled == 16 * 31 and model.steps == 62


def test_replay_buffer_keeps_the_newest_samples() -> None:
    buf = ReplayBuffer(3, 2)
    buf.add(np.arange(10).reshape(5, 2), np.arange(5))
    assert buf.filled == 3 and sorted(buf.label.tolist()) == [2, 3, 4]
    hist, label = buf.sample(10, np.random.default_rng(0))
    assert set(label.tolist()) <= {2, 3, 4} and (hist[:, 0] == 2 * label).all()


def test_snapshot_serves_the_weights_of_its_time() -> None:
    model = learner(lr=0.05)
    snap = model.snapshot([101, 102])
    vecs, usable = snap.interests([[101, 102], [999]])
    assert vecs.shape == (2, 2, 8) and usable.tolist() == [True, False]
    model.step(np.array([[1, 2, 0, 0]]), np.array([5]))
    again, _ = snap.interests([[101, 102]])
    np.testing.assert_array_equal(again[0], vecs[0])
    assert not np.allclose(model.snapshot([]).interests([[101, 102]])[0][0], vecs[0])


def test_changed_rows_are_new_rows_and_rows_that_moved_enough() -> None:
    published = np.ones((3, 2), dtype=np.float32)
    now = np.array([[1, 1], [1.001, 1], [2, 1], [5, 5]], dtype=np.float32)
    assert changed_rows(now, published, 0.01).tolist() == [2, 3]
    assert changed_rows(now, published, 0.0).tolist() == [1, 2, 3]


def test_small_drifts_add_up_until_the_row_is_sent_again() -> None:
    published = np.ones((2, 2), dtype=np.float32)
    now = published.copy()
    sent_at = []
    for step in range(1, 6):  # row 0 moves 0.4% of its length each export
        now[0] += 0.004 * np.sqrt(2) / np.sqrt(2)
        rows = changed_rows(now, published, 0.01)
        published = after_publish(published, now, rows)
        sent_at += [step] if 0 in rows.tolist() else []
    assert sent_at == [3]  # 3 x 0.4% > 1%: sent once, then measured from there
    grown = after_publish(published, np.vstack([now, [[5.0, 5.0]]]), np.array([2]))
    assert grown.shape == (3, 2) and grown[2].tolist() == [5.0, 5.0]


def test_stream_state_round_trips_through_its_file(tmp_path: Path) -> None:
    state = StreamState({7: [1, 2]}, Counter({1: 3}), {0: 12, 3: 4}, 9, 11, 1)
    (tmp_path / "online_state.json").write_text(state.to_json())
    assert StreamState.load(tmp_path) == state
    assert StreamState.load(tmp_path / "none") == StreamState()


def test_served_lists_leave_out_seen_items_and_tally_counts_hits() -> None:
    model = learner()
    served = ServedLists(k=5)
    seen = {1: {101, 102}, 2: set()}
    served.recall(model.snapshot([103, 104]), [1, 2], [[101, 102], []], seen)
    assert len(served.get(1)) == 5 and not {101, 102} & set(served.get(1))
    assert served.get(2) == [103, 104]  # no history: the snapshot's popular items
    served.popular([1], Counter({101: 5, 105: 3, 106: 3}), seen)
    assert served.get(1) == [105, 106]
    tally = Tally()
    tally.add([105, 106], 106, is_new=True)
    tally.add([105], 999, is_new=False)
    assert tally.result() == {"hitrate@20": 0.5, "hitrate@50": 0.5, "new_item_hitrate@50": 1.0,
                              "evaluated_clicks": 2, "new_item_clicks": 1}
    assert most_popular(Counter({4: 1, 2: 1, 9: 5}), 2) == [9, 2]
    assert list(chunks(10, 3, 3, progress=False)) == [(3, 6), (6, 9), (9, 10)]


def test_prune_keeps_the_newest_versions_and_the_one_latest_names(tmp_path: Path) -> None:
    for name in ("v1", "v2", "v3", "v4", ".tmp-v5"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text("{}")
    write_latest(tmp_path, "v1")  # a pinned older version stays
    assert prune_versions(tmp_path, 2) == ["v2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-v5", "LATEST", "v1", "v3", "v4"]
