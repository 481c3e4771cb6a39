"""harness.online_eval: options and their ONLINE_* environment fallbacks."""

from __future__ import annotations

import os

import pytest

from harness.online_eval import parse_args


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ONLINE_")]:
        monkeypatch.delenv(name)
    args = parse_args(["--data", "x.csv"])
    assert (args.cut, args.rate, args.seed_list, args.out, args.slices, args.export_s) == \
        (0.5, 200.0, [1], "online-results.json", 10, 10.0)
    assert args.no_trainer is False and args.limit is None


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ONLINE_DATA": "d.csv", "ONLINE_OUT": "o.json", "ONLINE_SEEDS": "3,4",
                        "ONLINE_RATE": "50", "ONLINE_NO_TRAINER": "1", "ONLINE_LIMIT": "900",
                        "ONLINE_EXPORT_S": "5"}.items():
        monkeypatch.setenv(name, value)
    args = parse_args([])
    assert (args.data, args.out, args.seed_list, args.rate, args.no_trainer, args.limit,
            args.export_s) == ("d.csv", "o.json", [3, 4], 50.0, True, 900, 5.0)
    assert parse_args(["--seeds", "7", "--out", "p.json"]).seed_list == [7]


def test_data_is_required_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONLINE_DATA", raising=False)
    with pytest.raises(SystemExit):
        parse_args([])
