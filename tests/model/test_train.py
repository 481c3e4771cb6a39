"""Tests for model.train CLI: export contract (version dir, files, LATEST) and --split reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.config import ConfigError
from model.export import read_latest
from model.train import main


def test_train_cli_exports_contract(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "clicks.csv"
    data.write_text("user,item,timestamp\n" + "".join(
        f"{u},{int(rng.integers(1, 40))},{t}\n" for u in range(1, 81) for t in range(6)))
    out = tmp_path / "model"
    assert main(["--data", str(data), "--epochs", "1", "--no-progress", "--out", str(out),
                 "--set", "negatives=16"]) == 0
    version = read_latest(out)
    assert version is not None
    vdir = out / version
    ids, vecs = np.load(vdir / "item_ids.npy"), np.load(vdir / "item_vectors.npy")
    assert ids.dtype == np.int64 and vecs.dtype == np.float32 and vecs.shape == (len(ids), 64)
    assert set(np.load(vdir / "popular.npy").tolist()) <= set(ids.tolist())
    meta = json.loads((vdir / "meta.json").read_text())
    assert meta["version"] == version and meta["num_items"] == len(ids)
    assert {"valid", "test"} <= set(meta["metrics"]) and meta["config"]["dim"] == 64
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]
    capsys.readouterr()
    split = vdir / "split.json"
    assert main(["--data", str(data), "--epochs", "1", "--no-progress", "--out", str(out),
                 "--split", str(split), "--set", "negatives=16"]) == 0
    newer = read_latest(out)
    assert newer is not None and newer > version
    assert json.loads((out / newer / "split.json").read_text()) == json.loads(split.read_text())


def test_unknown_set_key_fails() -> None:
    with pytest.raises(ConfigError, match="unknown config key"):
        main(["--synthetic", "--set", "bogus=1"])
