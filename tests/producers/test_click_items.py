"""Click JSON-line parsing, the item table reader and publisher, Sender stats, CLI errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from producers import click, items, replay
from producers.kafka import EXIT_UNAVAILABLE, EXIT_USAGE, Sender, SendStats, run_cli
from streams.errors import BadRequest, ServiceUnavailable
from streams.records import ItemEmbedding


def test_read_clicks_reports_bad_lines_with_numbers() -> None:
    lines = io.StringIO(
        '{"user_id": 1, "item_id": 42, "ts": 5.5}\n'
        "not json\n"
        "\n"
        '{"user_id": 0, "item_id": 1, "ts": 1}\n'
        '{"user_id": 2, "item_id": 3}\n'
        '{"user_id": 2, "item_id": 3, "ts": 1, "extra": true}\n'
        "[1, 2]\n"
    )
    errors: list[tuple[int, str]] = []
    clicks = list(click.read_clicks(lines, lambda n, r: errors.append((n, r)), now=lambda: 9.0))
    assert [(c.user_id, c.item_id, c.ts) for c in clicks] == [(1, 42, 5.5), (2, 3, 9.0)]
    assert [n for n, _ in errors] == [2, 4, 6, 7]
    assert "user_id must be positive" in errors[1][1]


def test_send_clicks_keys_by_user(sender: Sender, fake_producer) -> None:
    clicks = click.read_clicks(['{"user_id": 7, "item_id": 8, "ts": 1}'], lambda *_: None)
    click.send_clicks(clicks, sender)
    assert sender.flush().sent == 1
    topic, key, value = fake_producer.sent[0]
    assert (topic, key, json.loads(value)) == ("clicks", b"7",
                                                {"user_id": 7, "item_id": 8, "ts": 1})


def test_click_cli_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--user", "1"], [], ["--user", "1", "--item", "2", "-"]):
        with pytest.raises(SystemExit) as exc:
            click.main(argv)
        assert exc.value.code == EXIT_USAGE
    assert click.main(["--user", "-1", "--item", "2"]) == EXIT_USAGE
    assert "user_id must be positive" in capsys.readouterr().err


def write_model(root: Path, version: str = "v7", n: int = 4, dim: int = 64) -> None:
    (root / version).mkdir(parents=True)
    (root / "LATEST").write_text(version + "\n")
    np.save(root / version / "item_ids.npy", np.arange(1, n + 1, dtype=np.int64) * 10)
    np.save(root / version / "item_vectors.npy", np.ones((n, dim), dtype=np.float32) / 8)


def test_read_item_table_follows_latest(tmp_path: Path) -> None:
    write_model(tmp_path)
    version, ids, vectors = items.read_item_table(tmp_path)
    assert version == "v7" and ids.tolist() == [10, 20, 30, 40] and vectors.shape == (4, 64)
    assert items.read_item_ids(tmp_path / "v7" / "item_ids.npy").tolist() == ids.tolist()
    with pytest.raises(BadRequest):
        items.read_item_table(tmp_path / "missing")
    with pytest.raises(BadRequest):
        items.read_item_table(tmp_path, "v8")


def test_publish_items_and_deletions(sender: Sender, fake_producer) -> None:
    vectors = np.full((3, 4), 0.5, dtype=np.float32)
    vectors[1, 2] = np.nan
    items.publish(items.embedding_records(np.array([5, 6, 7]), vectors), sender)
    items.publish(items.deletion_records([9]), sender)
    stats = sender.flush()
    assert (stats.sent, stats.invalid) == (3, 1)
    keys = [key for _, key, _ in fake_producer.sent]
    assert keys == [b"5", b"7", b"9"]
    first, deleted = (ItemEmbedding.parse(fake_producer.sent[i][2]) for i in (0, 2))
    assert first.vector == [0.5] * 4 and not first.deleted
    assert deleted.deleted and deleted.vector is None


def test_items_cli_rejects_wrong_dimension(tmp_path: Path, capsys) -> None:
    write_model(tmp_path, dim=8)
    assert items.main(["--model-dir", str(tmp_path)]) == EXIT_USAGE
    assert "dim 8" in capsys.readouterr().err


def test_sender_stats_summary() -> None:
    stats = SendStats(sent=10, failed=1, elapsed_s=2.0, errors=["KafkaTimeoutError: x"])
    assert stats.rate == 5.0
    assert "sent 10, failed 1" in stats.summary() and "KafkaTimeoutError" in stats.summary()
    assert SendStats().rate == 0.0


def test_run_cli_maps_errors_to_exit_codes(capsys) -> None:
    def unavailable() -> int:
        raise ServiceUnavailable("no Kafka broker reachable at x:1")

    assert run_cli(unavailable) == EXIT_UNAVAILABLE
    assert capsys.readouterr().err.strip() == "error: no Kafka broker reachable at x:1"


def test_unreachable_broker_is_one_line_error(capsys) -> None:
    code = replay.main(["--num-items", "5", "--limit", "1", "--bootstrap", "127.0.0.1:9",
                        "--no-progress"])
    assert code == EXIT_UNAVAILABLE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no Kafka broker reachable")
