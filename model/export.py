"""Atomic export of a trained MIND model: version dir (tower, item table, meta), LATEST last."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from model.config import MindConfig
from model.network import RecallModel
from model.split import Split, Vocab

TOWER_FILE = "user_tower.pdparams"
META_FILE = "meta.json"
LATEST_FILE = "LATEST"


def new_version(after: str | None = None) -> str:
    """Sortable, unique version name, e.g. 20261123-141500-1f3a (UTC time, ms in hex, random).

    The result always sorts after `after` (the newest existing version), even within one ms.
    """
    now = time.time()
    ms = int(now * 1000) % 1000
    name = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{ms:03x}{secrets.token_hex(1)[0]}"
    if after and name <= after:
        try:
            name = f"{after[:-4]}{int(after[-4:], 16) + 1:04x}"
        except ValueError:
            name = after + "-1"
    return name


def write_latest(root: Path, version: str) -> None:
    """Atomically point `root/LATEST` at `version` (write temp file, fsync, os.replace)."""
    tmp = root / f".{LATEST_FILE}.{secrets.token_hex(4)}"
    with tmp.open("w") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / LATEST_FILE)


def read_latest(root: str | Path) -> str | None:
    """Version named by `root/LATEST`, or None if there is none."""
    path = Path(root) / LATEST_FILE
    if not path.exists():
        return None
    name = path.read_text().strip()
    return name or None


def write_version(root: str | Path, tower_state: dict, item_ids: np.ndarray,
                  item_vectors: np.ndarray, popular: np.ndarray, meta: dict[str, Any],
                  extra: dict[str, str] | None = None) -> Path:
    """Write `root/<version>/` via a temp dir + rename, then replace `root/LATEST` last.

    Contents: user_tower.pdparams (state dict of the user tower, whose input is history item
    embeddings [B, L, D] + mask [B, L] and output [B, K, D]), item_ids.npy [N] int64,
    item_vectors.npy [N, D] float32 (row aligned), popular.npy (raw ids, most clicked first),
    meta.json (`meta` plus version and created) and the `extra` text files.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    version = new_version(max([*existing, read_latest(root) or ""]))
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    try:
        paddle.save(tower_state, str(tmp / TOWER_FILE))
        np.save(tmp / "item_ids.npy", np.asarray(item_ids, dtype=np.int64))  # [N]
        np.save(tmp / "item_vectors.npy", np.asarray(item_vectors, dtype=np.float32))  # [N, D]
        np.save(tmp / "popular.npy", np.asarray(popular, dtype=np.int64))
        meta = {"version": version,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta,
                "tower": TOWER_FILE,
                "input": "history item embeddings [B, L, D] float32 + mask [B, L] float32",
                "output": "interest vectors [B, K, D] float32"}
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        os.rename(tmp, root / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_latest(root, version)
    return root / version


def export_model(
    out_dir: str | Path,
    model: RecallModel,
    vocab: Vocab,
    cfg: MindConfig,
    *,
    data_path: str,
    split: Split,
    metrics: dict[str, Any],
    min_popular: int = 1000,
) -> Path:
    """Export a trained model with `write_version`; also split.json, and meta.json holding
    the data path, split, config, metrics and sizes."""
    n_pop = max(min_popular, int((vocab.counts > 0).sum()))  # vocab is sorted by count
    meta = {"data": data_path, "split": split.to_json(), "config": cfg.to_dict(),
            "metrics": metrics, "num_items": vocab.size, "dim": cfg.dim,
            "num_interests": cfg.num_interests, "maxlen": cfg.maxlen}
    return write_version(out_dir, model.tower.state_dict(), vocab.item_ids, model.item_matrix(),
                         vocab.item_ids[:n_pop], meta,
                         {"split.json": json.dumps(split.to_json())})
