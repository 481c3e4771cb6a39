"""What the online trainer carries from one export to the next, and how it exports.

An online version is a normal export (the workers hot-reload it) plus `online_state.json`:
the trainer's per-user histories, click counts, the next Kafka offset of every partition and
the clicks consumed but not learned yet (held back by an evaluation's watermark), so a
restarted trainer resumes exactly where the version it loads left off. Its meta records the
newest click time learned into it (`trained_ts_max`, cumulative since the offline model),
the clicks learned (`clicks_learned`) and the canary gate's numbers (`gate`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.export import META_FILE, read_latest, write_version
from model.online.learner import OnlineConfig, OnlineLearner

STATE_FILE = "online_state.json"


@dataclass
class StreamState:
    """The trainer's view of the stream since it started from an offline model."""

    histories: dict[int, list[int]] = field(default_factory=dict)  # last maxlen clicks
    counts: Counter[int] = field(default_factory=Counter)  # clicks per item
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> next offset
    samples_seen: int = 0  # training samples since the offline model
    clicks_seen: int = 0  # clicks learned from (each counted once)
    dead_letters: int = 0
    trained_ts_max: float | None = None  # the largest click ts learned
    exports_skipped: int = 0  # exports the canary gate refused
    buffered: list[tuple[int, int, float]] = field(default_factory=list)  # consumed, unlearned

    def to_json(self) -> str:
        return json.dumps({
            "histories": {str(u): h for u, h in self.histories.items()},
            "counts": {str(i): n for i, n in self.counts.items()},
            "offsets": {str(p): o for p, o in self.offsets.items()},
            "samples_seen": self.samples_seen, "clicks_seen": self.clicks_seen,
            "dead_letters": self.dead_letters, "trained_ts_max": self.trained_ts_max,
            "exports_skipped": self.exports_skipped, "buffered": self.buffered})

    @classmethod
    def load(cls, vdir: Path) -> StreamState:
        """The state saved with an online version; a fresh one for an offline export."""
        path = vdir / STATE_FILE
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls({int(u): h for u, h in raw["histories"].items()},
                   Counter({int(i): n for i, n in raw["counts"].items()}),
                   {int(p): o for p, o in raw["offsets"].items()},
                   raw["samples_seen"], raw["clicks_seen"], raw["dead_letters"],
                   raw.get("trained_ts_max"), raw.get("exports_skipped", 0),
                   [(int(u), int(i), float(t)) for u, i, t in raw.get("buffered", [])])

    def learned(self, ts: Sequence[float]) -> None:
        """Count clicks learned at these times."""
        if ts:
            top = max(ts)
            self.clicks_seen += len(ts)
            self.trained_ts_max = top if self.trained_ts_max is None else max(
                self.trained_ts_max, top)


@dataclass
class Window:
    """The data trained on since the last export: for the version's meta."""

    samples: int = 0
    ts_min: float = float("inf")
    ts_max: float = float("-inf")
    first_consumed: float | None = None  # wall time the window's first click was consumed
    started: float = field(default_factory=time.time)
    train_s: float = 0.0  # seconds spent training (samples / train_s = trainer speed)

    def add(self, ts: Sequence[float], samples: int) -> None:
        if ts:
            self.ts_min, self.ts_max = min(self.ts_min, *ts), max(self.ts_max, *ts)
            if self.first_consumed is None:
                self.first_consumed = time.time()
        self.samples += samples


def changed_rows(vectors: np.ndarray, published: np.ndarray, min_change: float) -> np.ndarray:
    """Rows of `vectors` [N, D] that are new (beyond `published` [M, D]) or moved by more
    than `min_change` of their published length -> row indices."""
    old = len(published)
    moved = np.linalg.norm(vectors[:old] - published, axis=1)  # [M]
    far = moved > min_change * np.maximum(np.linalg.norm(published, axis=1), 1e-12)
    return np.concatenate([np.nonzero(far)[0], np.arange(old, len(vectors))])


def after_publish(published: np.ndarray, vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """What the items topic holds once `rows` of `vectors` [N, D] were sent: those rows new,
    every other row as last sent (a row that drifts by small steps is sent once the sum of
    them passes the threshold, not never)."""
    held = np.concatenate([published, vectors[len(published):]])  # [N, D]
    held[rows] = vectors[rows]
    return held


def export_online(root: Path, learner: OnlineLearner, state: StreamState, window: Window,
                  parent: str, ocfg: OnlineConfig, published: int,
                  gate: dict[str, Any] | None = None) -> Path:
    """Write a new version of `learner` under `root` (LATEST last) with its state and meta
    (`gate`: the canary gate's numbers of this export; None: no gate)."""
    cfg = learner.cfg
    now = time.time()
    online: dict[str, Any] = {
        "parent": parent, "samples_seen": state.samples_seen, "window_samples": window.samples,
        "clicks_seen": state.clicks_seen, "dead_letters": state.dead_letters,
        "samples_per_s": window.samples / window.train_s if window.train_s else 0.0,
        "data_ts": [window.ts_min, window.ts_max] if window.samples else None,
        "exported_at": now,
        "lag_s": now - window.first_consumed if window.first_consumed else 0.0,
        "items_published": published, "exports_skipped": state.exports_skipped,
        "clicks_buffered": len(state.buffered), "config": ocfg.__dict__}
    popular = [i for i, _ in state.counts.most_common()]  # every clicked item, most first
    meta = {"data": "stream", "config": cfg.to_dict(), "num_items": learner.num_items,
            "dim": cfg.dim, "num_interests": cfg.num_interests, "maxlen": cfg.maxlen,
            "items_streamed": True, "trained_ts_max": state.trained_ts_max,
            "clicks_learned": state.clicks_seen, "gate": gate, "online": online}
    ids = np.array(learner.ids, dtype=np.int64)
    rest = np.setdiff1d(ids, np.array(popular, dtype=np.int64), assume_unique=True)
    return write_version(root, learner.tower_state(), ids, learner.vectors(),
                         np.concatenate([np.array(popular, dtype=np.int64), rest]), meta,
                         {STATE_FILE: state.to_json()})


def prune_versions(root: Path, keep: int) -> list[str]:
    """Delete the version dirs under `root` older than the newest `keep` (never the one LATEST
    names, nor temp dirs); returns the names deleted."""
    latest = read_latest(root)
    versions = sorted(p.name for p in root.iterdir() if p.is_dir() and not
                      p.name.startswith(".") and (p / META_FILE).exists())
    old = [v for v in versions[:-keep] if v != latest] if keep > 0 else []
    for name in old:
        shutil.rmtree(root / name, ignore_errors=True)
    return old
