"""Tests for model.config: defaults, YAML and --set overrides, errors, device choice."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from model.config import (
    ConfigError,
    MindConfig,
    config_from_dict,
    load_config,
    parse_sets,
    resolve_device,
)


def test_defaults_match_the_paper_setup() -> None:
    cfg = MindConfig()
    assert (cfg.dim, cfg.num_interests, cfg.routing_iters, cfg.maxlen) == (64, 4, 3, 10)
    assert cfg.device == "auto"


def test_yaml_then_sets_override(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("maxlen: 20\nlr: 0.005\npow_p: 2\n")
    cfg = load_config(path, ["lr=0.01", "logq_correction=false"])
    assert cfg.maxlen == 20 and cfg.lr == 0.01 and cfg.pow_p == 2.0
    assert cfg.logq_correction is False


def test_unknown_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key.*nope"):
        load_config(None, ["nope=1"])
    path = tmp_path / "c.yaml"
    path.write_text("dimm: 3\n")
    with pytest.raises(ConfigError, match="dimm"):
        load_config(path)


def test_bad_values_are_errors() -> None:
    with pytest.raises(ConfigError, match="maxlen"):
        load_config(None, ["maxlen=abc"])
    with pytest.raises(ConfigError):
        parse_sets(["novalue"])
    with pytest.raises(ConfigError, match="device"):
        MindConfig(device="tpu")


def test_frozen_and_roundtrip() -> None:
    cfg = MindConfig()
    with pytest.raises(AttributeError):
        cfg.dim = 3  # type: ignore[misc]
    back = config_from_dict(cfg.to_dict())
    assert back == cfg and math.isinf(back.pow_p)


def test_device_resolution() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "gpu")
