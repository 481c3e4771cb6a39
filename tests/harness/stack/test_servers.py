"""Unit tests of the stack launcher that start no server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.stack.servers import (
    LocalStack,
    _parser,
    broker_bin,
    free_ports,
    milvus_lib_dir,
    redis_bin,
)
from streams.settings import Settings


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5 and all(1024 <= p < 65536 for p in ports)


def test_bundled_binaries_exist() -> None:
    for path in (broker_bin(), redis_bin(), str(Path(milvus_lib_dir()) / "milvus")):
        assert os.access(path, os.X_OK), path


def test_settings_point_at_the_stack(tmp_path: Path) -> None:
    base = Settings(partitions=3)
    stack = LocalStack(base, stack_dir=tmp_path, kafka_port=1111, redis_port=2222,
                       milvus_port=3333)
    s = stack.settings
    assert s.kafka_bootstrap == "127.0.0.1:1111"
    assert s.redis_url == "redis://127.0.0.1:2222/0"
    assert s.milvus_uri == "http://127.0.0.1:3333"
    assert s.partitions == 3 and s.worker_data_dir == str(tmp_path)
    assert stack.log_path("redis") == tmp_path / "redis.log"
    stack.stop()  # stopping a stack that never started is harmless


def test_cli_help_shows_env_fallbacks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for name in ("RECALL_KAFKA_PORT", "RECALL_REDIS_PORT", "RECALL_MILVUS_PORT", "--fresh"):
        assert name in out


def test_cli_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_REDIS_PORT", "6390")
    assert _parser().parse_args([]).redis_port == 6390
