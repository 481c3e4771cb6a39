"""harness.online.main: options and their ONLINE_* environment fallbacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.online.main import parse_args
from harness.online.run import WATERMARK_KEY, seed_settings
from harness.online.world import trainer_env


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ONLINE_")]:
        monkeypatch.delenv(name)
    args = parse_args(["--data", "x.csv"])
    assert (args.cut, args.rate, args.seed_list, args.out, args.slices, args.export_s) == \
        (0.5, 200.0, [1], "online-results.json", 10, 10.0)
    assert args.no_trainer is False and args.limit is None
    assert (args.export_every, args.no_watermark, args.window) == (1000, False, 2000)
    assert (args.ahead_s, args.replay_minutes) == (3600.0, 15.0)


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ONLINE_DATA": "d.csv", "ONLINE_OUT": "o.json", "ONLINE_SEEDS": "3,4",
                        "ONLINE_RATE": "50", "ONLINE_NO_TRAINER": "1", "ONLINE_LIMIT": "900",
                        "ONLINE_EXPORT_S": "5", "ONLINE_EXPORT_EVERY": "0",
                        "ONLINE_NO_WATERMARK": "1", "ONLINE_WINDOW": "500",
                        "ONLINE_AHEAD_S": "inf", "ONLINE_REPLAY_MINUTES": "0"}.items():
        monkeypatch.setenv(name, value)
    args = parse_args([])
    assert (args.data, args.out, args.seed_list, args.rate, args.no_trainer, args.limit,
            args.export_s) == ("d.csv", "o.json", [3, 4], 50.0, True, 900, 5.0)
    assert (args.export_every, args.no_watermark, args.window) == (0, True, 500)
    assert (args.ahead_s, args.replay_minutes) == (float("inf"), 0.0)
    assert parse_args(["--seeds", "7", "--out", "p.json"]).seed_list == [7]


def test_data_is_required_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONLINE_DATA", raising=False)
    with pytest.raises(SystemExit):
        parse_args([])


def test_trainer_env_exports_by_clicks_or_by_seconds() -> None:
    assert trainer_env(10, 1000) == {"RECALL_ONLINE_EXPORT_S": "10",
                                     "RECALL_ONLINE_KEEP_VERSIONS": "100000",
                                     "RECALL_ONLINE_EXPORT_EVERY": "1000"}
    assert "RECALL_ONLINE_EXPORT_EVERY" not in trainer_env(2.5, 0)


def test_seed_settings_record_channel_lists_and_name_the_watermark_key(tmp_path: Path) -> None:
    stack, on = seed_settings(tmp_path, watermark=True)
    assert stack.stack_dir == str(tmp_path) and len({stack.kafka_port, stack.redis_port}) == 2
    assert on.record_channel_lists and on.eval_watermark_key == WATERMARK_KEY
    assert on.model_dir == str(tmp_path / "model")
    assert seed_settings(tmp_path, watermark=False)[1].eval_watermark_key is None
