"""Producers and the recommendations consumer against the real local broker of the stack fixture."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from consumers.kafka import make_consumer, poll_records
from consumers.recommendations import LatencyStats, follow
from consumers.recommendations import main as follow_main
from producers import click, items
from producers.kafka import EXIT_OK, EXIT_PARTIAL, open_sender
from producers.replay import replay_to_kafka
from producers.sources import iter_clicks
from streams.records import Click, ItemEmbedding, Recommendation
from streams.settings import Settings

pytestmark = pytest.mark.integration


def read_back(settings: Settings, consumer: Any, record_type: type, want: int,
              keep: Any) -> list[tuple[Any, Any]]:
    """Poll until `want` messages whose record passes `keep` arrived (or 30 s passed)."""
    got: list[tuple[Any, Any]] = []
    deadline = time.monotonic() + 30
    while len(got) < want and time.monotonic() < deadline:
        pairs: Any = poll_records(consumer, record_type, idle_timeout_s=1.0)
        for message, record in pairs:
            if keep(record):
                got.append((message, record))
            if len(got) >= want:
                break
    return got


def test_replay_sequences_file_round_trip(stack: Any, tmp_path: Path) -> None:
    s: Settings = stack.settings
    users = {910_000 + u: [u * 100 + k for k in range(1, 6)] for u in range(1, 21)}
    path = tmp_path / "seq.txt"
    path.write_text("".join(f"{u} {' '.join(map(str, its))}\n" for u, its in users.items()))
    consumer = make_consumer(s.kafka_bootstrap, s.clicks_topic, fetch_max_wait_ms=10)
    try:
        t0 = time.time()
        stats = replay_to_kafka(iter_clicks(path, active=8, seed=2), s, rate=500)
        t1 = time.time()
        got = read_back(s, consumer, Click, 100, lambda c: c.user_id in users)
    finally:
        consumer.close()
    assert (stats.sent, stats.failed, stats.invalid) == (100, 0, 0)
    assert stats.elapsed_s >= 99 / 500 * 0.9  # paced, not a burst
    assert len(got) == 100
    seen: dict[int, list[int]] = {}
    for message, rec in got:
        assert message.key == str(rec.user_id).encode()
        assert t0 <= rec.ts <= t1
        seen.setdefault(rec.user_id, []).append(rec.item_id)
    assert seen == users  # one partition per user keeps each user's order


def test_click_cli_skips_bad_lines(stack: Any, tmp_path: Path, capsys) -> None:
    s: Settings = stack.settings
    path = tmp_path / "clicks.jsonl"
    path.write_text('{"user_id": 920001, "item_id": 5, "ts": 1.5}\n{"user_id": "x"}\n'
                    '{"user_id": 920001, "item_id": 6}\n')
    consumer = make_consumer(s.kafka_bootstrap, s.clicks_topic)
    try:
        code = click.main([str(path), "--bootstrap", s.kafka_bootstrap, "--topic", s.clicks_topic])
        got = read_back(s, consumer, Click, 2, lambda c: c.user_id == 920001)
    finally:
        consumer.close()
    assert code == EXIT_PARTIAL
    assert f"{path}:2: skipped" in capsys.readouterr().err
    assert [rec.item_id for _, rec in got] == [5, 6] and got[0][1].ts == 1.5


def test_publish_item_table_and_deletions(stack: Any, tmp_path: Path) -> None:
    s: Settings = stack.settings
    rng = np.random.default_rng(0)
    ids = np.arange(8_000_001, 8_000_031, dtype=np.int64)
    vectors = rng.normal(size=(30, s.embedding_dim)).astype(np.float32)
    (tmp_path / "v1").mkdir()
    (tmp_path / "LATEST").write_text("v1")
    np.save(tmp_path / "v1" / "item_ids.npy", ids)
    np.save(tmp_path / "v1" / "item_vectors.npy", vectors)
    common = ["--bootstrap", s.kafka_bootstrap, "--topic", s.items_topic, "--no-progress"]
    consumer = make_consumer(s.kafka_bootstrap, s.items_topic)
    try:
        assert items.main(["--model-dir", str(tmp_path), *common]) == EXIT_OK
        assert items.main(["--delete", "8000001", "8000002", *common]) == EXIT_OK
        got = read_back(s, consumer, ItemEmbedding, 32, lambda r: r.item_id >= 8_000_001)
    finally:
        consumer.close()
    table = [rec for _, rec in got if not rec.deleted]
    assert [r.item_id for r in table] == ids.tolist()
    assert np.array_equal(np.array([r.vector for r in table], dtype=np.float32), vectors)
    assert [(r.item_id, r.vector) for _, r in got if r.deleted] == [(8000001, None),
                                                                      (8000002, None)]
    assert all(m.key == str(r.item_id).encode() for m, r in got)


def make_recs(user: int, n: int) -> list[Recommendation]:
    now = time.time()
    return [Recommendation(user_id=user, item_ids=[7, 8, 9], scores=[0.9, 0.8, 0.7],
                           model_version="it", click_item=k + 1, click_ts=now - 0.05,
                           emit_ts=now, history=[k + 1]) for k in range(n)]


def test_follow_recommendations_with_latency(stack: Any, capsys) -> None:
    s: Settings = stack.settings
    user = 930_000 + int(time.time()) % 1000
    with open_sender(s.kafka_bootstrap, s.recs_topic) as sender:
        sender.send(str(user).encode(), b"{broken json")
        for rec in make_recs(user, 3):
            sender.send(str(user).encode(), rec.to_bytes())
        assert sender.flush().sent == 4
    stats = LatencyStats()
    out = list(follow(s, user=user, from_beginning=True, max_records=3, idle_timeout_s=15))
    for _, ms in out:
        stats.add(ms)
    assert [r.click_item for r, _ in out] == [1, 2, 3]
    assert stats.percentiles()["count"] == 3 and stats.percentile(50) >= 50.0
    assert "skipped" in capsys.readouterr().err  # the broken message, reported not raised

    code = follow_main(["--from-beginning", "--user", str(user), "--max", "3", "--json",
                        "--timeout", "15", "--bootstrap", s.kafka_bootstrap])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 0 and [d["click_item"] for d in lines] == [1, 2, 3]
    assert all(d["latency_ms"] >= 50 for d in lines)
    assert "latency ms over 3" in captured.err
