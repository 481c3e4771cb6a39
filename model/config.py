"""Frozen MIND hyperparameter dataclass, YAML / `--set key=value` overrides, device choice."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """Raised for unknown keys or values that cannot be parsed."""


@dataclass(frozen=True)
class MindConfig:
    """All hyperparameters of MIND training, evaluation and serving."""

    dim: int = 64  # item / interest embedding size D
    num_interests: int = 4  # K interest capsules
    routing_iters: int = 3  # B2I dynamic routing iterations
    maxlen: int = 10  # history length L seen by the user tower (20 to compare with papers)
    negatives: int = 1280  # shared sampled negatives per batch; >= num items: full softmax
    neg_alpha: float = 0.0  # negative sampling q(i) ~ (count_i + 1) ** alpha; 0 = uniform
    logq_correction: bool = True  # subtract log(S * q(i)) from sampled logits
    pow_p: float = math.inf  # label-aware attention power; inf = hard (argmax) readout
    routing_init_std: float = 0.3  # std of the fixed (seeded, non-trainable) routing logits
    dynamic_k: bool = False  # paper's K_u = max(1, min(K, log2 |history|)); extras copy capsule 0
    interest_layer: str = "none"  # dense layer on the capsules: "none" | "linear" | "relu"
    lr: float = 0.003  # Adam
    batch_size: int = 256
    epochs: int = 30
    patience: int = 3  # epochs without valid Recall@50 improvement before stopping
    max_minutes: float = 9.0  # wall-clock training budget per model (0 = unlimited)
    weight_decay: float = 0.0
    seed: int = 2024
    device: str = "auto"  # "auto" | "cpu" | "gpu"
    threads: int = 1  # CPU threads for Paddle math

    def __post_init__(self) -> None:
        if self.interest_layer not in ("linear", "relu", "none"):
            raise ConfigError(f"interest_layer must be linear|relu|none: {self.interest_layer!r}")
        if self.device not in ("auto", "cpu", "gpu"):
            raise ConfigError(f"device must be auto|cpu|gpu, got {self.device!r}")
        for name in ("dim", "num_interests", "routing_iters", "maxlen", "negatives", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def replace(self, **changes: Any) -> MindConfig:
        """Return a copy with `changes` applied (validated like overrides)."""
        return apply_overrides(self, changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (inf written as the string "inf")."""
        out = dataclasses.asdict(self)
        return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in out.items()}


_FIELDS = {f.name: f for f in dataclasses.fields(MindConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Convert `value` (possibly a string) to the declared type of field `name`."""
    kind = type(getattr(MindConfig(), name))
    try:
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return low in ("1", "true", "yes")
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value for {name} ({kind.__name__}): {value!r}") from exc


def apply_overrides(base: MindConfig, overrides: Mapping[str, Any]) -> MindConfig:
    """Apply `overrides`; an unknown key raises ConfigError listing the valid keys."""
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; valid keys: {sorted(_FIELDS)}")
    changes = {k: _coerce(k, v) for k, v in overrides.items()}
    return dataclasses.replace(base, **changes)


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """Parse `key=value` strings from `--set`."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_config(
    yaml_path: str | Path | None = None,
    sets: Iterable[str] = (),
    base: MindConfig | None = None,
) -> MindConfig:
    """Build a config: defaults, then the YAML file, then `--set` overrides."""
    cfg = base or MindConfig()
    if yaml_path:
        data = yaml.safe_load(Path(yaml_path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{yaml_path}: expected a mapping of config keys")
        cfg = apply_overrides(cfg, data)
    return apply_overrides(cfg, parse_sets(sets))


def config_from_dict(data: Mapping[str, Any]) -> MindConfig:
    """Inverse of MindConfig.to_dict (used when loading an export)."""
    return apply_overrides(MindConfig(), data)


def resolve_device(device: str = "auto") -> str:
    """Return "gpu" when Paddle sees a CUDA device (or when asked), else "cpu"."""
    import paddle

    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "gpu" and not has_gpu:
        raise ConfigError("device=gpu requested but Paddle sees no CUDA device")
    if device == "auto":
        return "gpu" if has_gpu else "cpu"
    if device not in ("cpu", "gpu"):
        raise ConfigError(f"device must be auto|cpu|gpu, got {device!r}")
    return device


def setup_paddle(cfg: MindConfig) -> str:
    """Select the device, thread count and seeds; return the device name used."""
    import numpy as np
    import paddle

    device = resolve_device(cfg.device)
    paddle.set_device("gpu:0" if device == "gpu" else "cpu")
    paddle.base.core.set_num_threads(max(1, cfg.threads))
    paddle.seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    return device
