"""Unit tests of the online trainer's feed and exports, with fake Kafka and Redis: exports
after every N clicks learned, the watermark's buffer, and the canary gate at export time."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import pytest
from kafka import TopicPartition

from model.config import MindConfig
from model.export import META_FILE, read_latest, write_version
from model.network import MindUserTower
from model.online.canary import Gate
from model.online.learner import OnlineConfig
from streams.records import Click
from streams.settings import Settings
from streams.training.feed import ClickBuffer
from streams.training.main import OnlineTrainer, build_parser

CFG = MindConfig(dim=8, num_interests=2, maxlen=4, negatives=16, seed=1)
ITEMS = np.arange(1, 41)


class Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.key, self.value = offset, None, value


class FakeConsumer:
    """Hands out the clicks queued with `add`, one poll per `add` call."""

    def __init__(self) -> None:
        self.polls: list[dict[TopicPartition, list[Record]]] = []
        self.offsets: dict[int, int] = {}

    def add(self, clicks: Sequence[tuple[int, int, float]], partition: int = 0) -> None:
        tp = TopicPartition("clicks", partition)
        records = []
        for user, item, ts in clicks:
            offset = self.offsets.get(partition, 0)
            self.offsets[partition] = offset + 1
            records.append(Record(offset, Click(user_id=user, item_id=item, ts=ts).to_bytes()))
        self.polls.append({tp: records})

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        return self.polls.pop(0) if self.polls else {}

    def commit(self, offsets: Any) -> None:
        pass

    def close(self) -> None:
        pass


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, value))

    def flush(self) -> None:
        pass

    def close(self, timeout: float = 0) -> None:
        pass


class FakeWatermark:
    def __init__(self) -> None:
        self.value = -math.inf

    def read(self) -> float:
        return self.value

    def close(self) -> None:
        pass


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """An offline-like export of a tiny random MIND model with items 1..40."""
    paddle.seed(1)
    vectors = np.random.default_rng(0).normal(0, 0.3, (len(ITEMS), CFG.dim)).astype(np.float32)
    meta = {"config": CFG.to_dict(), "num_items": len(ITEMS), "dim": CFG.dim}
    write_version(tmp_path, MindUserTower(CFG).state_dict(), ITEMS, vectors, ITEMS, meta)
    return tmp_path


def trainer(root: Path, watermark: FakeWatermark | None = None, **options: Any
            ) -> tuple[OnlineTrainer, FakeConsumer]:
    settings = Settings(**{"model_dir": str(root), "online_batch": 4, "online_gate": False,
                           "eval_watermark_key": "wm" if watermark else None, **options})
    consumer = FakeConsumer()
    run = OnlineTrainer(settings, OnlineConfig(replay=4, passes=1), root,
                        consumer=consumer, producer=FakeProducer(),  # type: ignore[arg-type]
                        watermark=watermark)
    return run, consumer


def step(run: OnlineTrainer) -> int:
    """One iteration of the trainer's loop, without the wall-clock export."""
    run.consume()
    return run.release()


def metas(root: Path) -> list[dict[str, Any]]:
    dirs = sorted(p for p in root.iterdir() if (p / META_FILE).exists())
    return [json.loads((p / META_FILE).read_text()) for p in dirs]


def clicks(n: int, start: int = 0) -> list[tuple[int, int, float]]:
    """Two users clicking items in turn, ts 1000 + k."""
    return [(1 + k % 2, 1 + k % 40, 1000.0 + k) for k in range(start, start + n)]


def test_exports_after_exactly_every_n_clicks_learned(root: Path) -> None:
    run, consumer = trainer(root, online_export_every=10)
    consumer.add(clicks(7))
    consumer.add(clicks(16, start=7))
    step(run)
    assert len(metas(root)) == 1  # the offline export only
    step(run)  # 23 clicks: versions after the 10th and the 20th
    online = [m for m in metas(root) if "online" in m]
    assert [m["clicks_learned"] for m in online] == [10, 20]
    assert [m["trained_ts_max"] for m in online] == [1009.0, 1019.0]
    assert online[1]["online"]["samples_seen"] == 18  # each user's first click: no sample
    assert online[0]["gate"] is None and run.state.clicks_seen == 23
    state = json.loads((root / online[1]["version"] / "online_state.json").read_text())
    assert state["offsets"] == {"0": 23} and len(state["buffered"]) == 3  # held, not lost


def test_a_watermark_holds_clicks_until_it_passes_them_then_learns_in_ts_order(
        root: Path) -> None:
    mark = FakeWatermark()
    run, consumer = trainer(root, mark, online_export_every=4)
    consumer.add([(1, 5, 1003.0), (1, 6, 1001.0)], partition=0)
    consumer.add([(1, 7, 1002.0), (1, 8, 1005.0), (1, 9, 1004.0)], partition=1)
    assert step(run) == 0 and step(run) == 0  # key absent: nothing learned
    assert run.state.clicks_seen == 0 and len(run.buffer) == 5
    mark.value = 1003.5
    assert step(run) == 3
    assert run.state.histories[1] == [6, 7, 5] and run.state.trained_ts_max == 1003.0
    mark.value = 1004.0
    assert step(run) == 1  # the 4th click learned: a version, 1005 still held
    (meta,) = [m for m in metas(root) if "online" in m]
    assert meta["trained_ts_max"] == 1004.0 and meta["clicks_learned"] == 4
    state = json.loads((root / meta["version"] / "online_state.json").read_text())
    assert state["buffered"] == [[1, 8, 1005.0]] and state["offsets"] == {"0": 2, "1": 3}

    again, _ = trainer(root, FakeWatermark())  # a restart holds the click it had held
    assert again.buffer.held() == [(1, 8, 1005.0)] and again.state.histories[1] == [6, 7, 5, 9]


def test_without_a_watermark_clicks_are_learned_at_once_in_the_order_consumed() -> None:
    buf = ClickBuffer(ordered=False, clicks=[(1, 2, 5.0), (1, 3, 1.0)])
    buf.extend([(2, 4, 0.0)])
    assert buf.release(-math.inf, limit=2) == [(1, 2, 5.0), (1, 3, 1.0)]
    assert buf.held() == [(2, 4, 0.0)]
    ordered = ClickBuffer(ordered=True, clicks=[(1, 2, 5.0), (1, 3, 1.0), (2, 4, 1.0)])
    assert ordered.release(4.0) == [(1, 3, 1.0), (2, 4, 1.0)]  # stable among equal ts
    assert ordered.release(4.0) == [] and len(ordered) == 1


def test_the_gate_skips_an_export_of_a_worse_learner_and_records_its_numbers(
        root: Path) -> None:
    run, consumer = trainer(root, online_gate=True, online_gate_min_samples=5)
    consumer.add(clicks(12))
    step(run)
    assert run.gate.samples == 8  # scored before training: 2 batches of 4 samples
    run.train_step()  # the last 2
    first, gate = read_latest(root), Gate(**run.gate.__dict__)
    assert gate.samples == 10 and gate.decide(5) != "wait"
    run.export()
    assert run.gate.samples == 0
    if gate.decide(5) == "skip":  # a random learner may lose: nothing served, a skip counted
        assert read_latest(root) == first and run.state.exports_skipped == 1
    else:
        assert metas(root)[-1]["gate"] == gate.meta() and run.state.exports_skipped == 0

    consumer.add(clicks(4, start=12))
    step(run)
    run.gate = Gate(samples=run.gate.samples + 100, learner=1, serving=5)
    before = read_latest(root)
    skipped = run.state.exports_skipped
    run.export()
    assert read_latest(root) == before and run.state.exports_skipped == skipped + 1
    run.gate = Gate(samples=3)
    run.export()  # too few samples: waits, the window goes on
    assert read_latest(root) == before and run.gate.samples == 3
    run.gate = Gate(samples=200, learner=30, serving=30)
    run.export()
    meta = metas(root)[-1]
    assert read_latest(root) == meta["version"] != before
    assert meta["gate"] == {"samples": 200, "learner_hr50": 0.15, "serving_hr50": 0.15}
    assert meta["online"]["exports_skipped"] == skipped + 1


def test_the_trainers_defaults_are_the_simulations() -> None:
    """The trainer's settings that feed OnlineConfig keep OnlineConfig's defaults, so the
    offline simulation (model.online.sim, OnlineConfig()) learns as the trainer does."""
    args = build_parser(Settings()).parse_args([])
    ocfg = OnlineConfig()
    assert (args.warmup_steps, args.sparse) == (ocfg.warmup_steps, ocfg.sparse) == (60, False)
    assert (args.lr, args.replay, args.passes) == (ocfg.lr, ocfg.replay, ocfg.passes)
