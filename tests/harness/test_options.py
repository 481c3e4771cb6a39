"""harness.options: env-backed harness options become argparse options that show their env."""

from __future__ import annotations

import argparse

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from harness.options import EnvOptions, add_options


class DemoEnv(EnvOptions):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    quick: bool = Field(False, description="short run")
    rate: float = Field(100.0, description="clicks per second")
    limit: int | None = Field(None, description="first N clicks")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_options(p, DemoEnv())
    return p


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_QUICK", "1")
    monkeypatch.setenv("DEMO_RATE", "250")
    monkeypatch.setenv("DEMO_LIMIT", "")  # empty: as if unset (make passes VAR= through)
    args = parser().parse_args([])
    assert args.quick is True and args.rate == 250.0 and args.limit is None


def test_the_command_line_wins_and_converts_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_RATE", "250")
    args = parser().parse_args(["--rate", "7", "--limit", "3"])
    assert args.rate == 7.0 and args.limit == 3 and args.quick is False


def test_help_names_each_env_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(env DEMO_QUICK=1)" in out and "(env DEMO_RATE, now 100.0)" in out
