"""Batched, thread-safe serving of an exported MIND user tower (GPU or CPU) with hot reload."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import paddle

from model.config import MindConfig, config_from_dict, resolve_device
from model.export import META_FILE, TOWER_FILE, read_latest
from model.network import MindUserTower
from model.streamed import MIN_ROWS, StreamedVectors


class ModelNotFoundError(FileNotFoundError):
    """No exported model at the given path."""


class Interests(tuple):
    """(vectors [B, K, D] float32, n_skipped [B] int); also `.n_used` [B] (0 -> zero row)."""

    n_used: np.ndarray

    def __new__(cls, vectors: np.ndarray, n_skipped: np.ndarray, n_used: np.ndarray) -> Interests:
        obj = super().__new__(cls, (vectors, n_skipped))
        obj.n_used = n_used
        return obj

    @property
    def vectors(self) -> np.ndarray:
        return self[0]

    @property
    def n_skipped(self) -> np.ndarray:
        return self[1]


class _Table:
    """Immutable id -> vector lookup, vectorised with a sorted copy of the ids."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids, self.vectors = ids, vectors  # [N] int64, [N, D] float32
        self._order = np.argsort(ids, kind="stable")  # [N]
        self._sorted = ids[self._order]  # [N]
        self.index = set(ids.tolist())

    @classmethod
    def build(cls, ids: Sequence[int], vectors: Sequence[np.ndarray], dim: int) -> _Table:
        vecs = np.array(vectors, dtype=np.float32).reshape(len(ids), dim)  # [M, D]
        return cls(np.array(ids, dtype=np.int64), vecs)

    def find(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found [T] bool, row [T] int) for raw ids `query` [T]."""
        if len(self._sorted) == 0:
            return np.zeros(len(query), bool), np.zeros(len(query), np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, query), len(self._sorted) - 1)  # [T]
        return self._sorted[pos] == query, self._order[pos]


@dataclass(frozen=True)
class _Snapshot:
    """One loaded version; never mutated after construction."""

    version: str
    cfg: MindConfig
    tower: MindUserTower
    table: _Table  # trained items
    popular: np.ndarray  # [P] int64
    lock: threading.Lock  # serialises forward passes on this tower
    items_streamed: bool = False  # its changed vectors went to the items topic (online)


def _resolve(model_dir: str | Path) -> tuple[Path | None, Path]:
    """(root with LATEST or None, version dir)."""
    path = Path(model_dir)
    latest = read_latest(path)
    if latest is not None:
        vdir = path / latest
        if not (vdir / META_FILE).exists():
            raise ModelNotFoundError(f"{path}/LATEST names {latest!r}; {vdir} has no {META_FILE}")
        return path, vdir
    if (path / META_FILE).exists():
        return (path.parent if read_latest(path.parent) else None), path
    raise ModelNotFoundError(f"no exported model at {path} (expected LATEST or {META_FILE})")


def version_dir(model_dir: str | Path) -> Path:
    """The version dir `model_dir` stands for: the one its LATEST names, or itself."""
    return _resolve(model_dir)[1]


def _load_snapshot(vdir: Path, place: paddle.CPUPlace | paddle.CUDAPlace) -> _Snapshot:
    meta = json.loads((vdir / META_FILE).read_text())
    cfg = config_from_dict(meta["config"])
    with paddle.base.dygraph.guard(place):
        tower = MindUserTower(cfg)
        tower.set_state_dict(paddle.load(str(vdir / TOWER_FILE)))
        tower.eval()
    ids = np.load(vdir / "item_ids.npy").astype(np.int64)  # [N]
    vecs = np.load(vdir / "item_vectors.npy").astype(np.float32)  # [N, D]
    return _Snapshot(meta["version"], cfg, tower, _Table(ids, vecs),
                     np.load(vdir / "popular.npy"), threading.Lock(),
                     bool(meta.get("items_streamed", False)))


class InterestModel:
    """Loads `model_dir` (root with LATEST, or a version dir) and computes interest vectors."""

    def __init__(self, root: Path | None, snap: _Snapshot, device: str) -> None:
        self._root, self._snap, self.device = root, snap, device
        self._place = paddle.CUDAPlace(0) if device == "gpu" else paddle.CPUPlace()
        self._extra = StreamedVectors(snap.cfg.dim)  # streamed items not in the table
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto") -> InterestModel:
        """Load the newest export under `model_dir`; raises ModelNotFoundError if missing."""
        root, vdir = _resolve(model_dir)
        dev = resolve_device(device)
        place = paddle.CUDAPlace(0) if dev == "gpu" else paddle.CPUPlace()
        return cls(root, _load_snapshot(vdir, place), dev)

    version = property(lambda self: self._snap.version)
    dim = property(lambda self: self._snap.cfg.dim)
    num_interests = property(lambda self: self._snap.cfg.num_interests)
    maxlen = property(lambda self: self._snap.cfg.maxlen)
    items_streamed = property(lambda self: self._snap.items_streamed)

    def item_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Trained (ids [N] int64, vectors [N, D] float32), row aligned."""
        table = self._snap.table
        return table.ids, table.vectors

    def popular(self, n: int) -> list[int]:
        """The `n` most clicked training items, most popular first."""
        return [int(i) for i in self._snap.popular[:n]]

    def add_items(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Make streamed items usable as history; items of the trained table are ignored."""
        vecs = np.asarray(vectors, dtype=np.float32)  # [M, D]
        if vecs.ndim != 2 or vecs.shape != (len(ids), self.dim):
            raise ValueError(f"vectors must be [{len(ids)}, {self.dim}], got {vecs.shape}")
        with self._lock:
            trained = self._snap.table.index
            keep = [r for r, i in enumerate(ids) if int(i) not in trained]
            extra = self._extra
            if extra.dead > max(extra.used // 2, MIN_ROWS):  # replaced rows pile up: copy
                extra = self._extra = extra.compacted()
            extra.add([int(ids[r]) for r in keep], vecs[keep])

    def remove_items(self, ids: Sequence[int]) -> None:
        """Forget streamed vectors (an item deleted from the catalogue); trained items stay."""
        with self._lock:
            self._extra.remove(ids)

    def is_trained(self, item_id: int) -> bool:
        """Whether the loaded model was trained on `item_id` (streamed vectors of it are unused)."""
        return item_id in self._snap.table.index

    @property
    def streamed_items(self) -> int:
        """How many streamed vectors of items outside the trained table are held."""
        return len(self._extra)

    def interests(self, histories: Sequence[Sequence[int]]) -> Interests:
        """Interest vectors for raw-id histories (oldest first), one batched forward pass.

        Uses each row's last `maxlen` known items; `n_skipped` counts the row's unknown ids
        (no trained or streamed vector). Rows with no usable item get zeros and n_used 0.
        """
        with self._lock:
            snap, extra = self._snap, self._extra
        cfg, b, length = snap.cfg, len(histories), snap.cfg.maxlen
        lens = np.fromiter((len(h) for h in histories), dtype=np.int64, count=b)  # [B]
        flat = np.fromiter(chain.from_iterable(histories), dtype=np.int64,
                           count=int(lens.sum()))  # [T] all clicks
        row_of = np.repeat(np.arange(b), lens)  # [T]
        in_table, t_rows = snap.table.find(flat)  # [T], [T]
        in_extra, e_rows = extra.find(flat)  # [T], [T]
        in_extra &= ~in_table
        known = in_table | in_extra  # [T]
        skipped = np.bincount(row_of[~known], minlength=b)  # [B]
        k_row = row_of[known]  # [T']
        used_all = np.bincount(k_row, minlength=b)  # [B] known clicks per row
        first = np.cumsum(used_all) - used_all  # [B] offset of each row in k_row
        slot = np.arange(len(k_row)) - first[k_row] - np.maximum(used_all - length, 0)[k_row]
        keep = slot >= 0  # [T'] only the last `maxlen` known clicks
        emb = np.zeros((b, length, cfg.dim), dtype=np.float32)  # [B, L, D]
        mask = np.zeros((b, length), dtype=np.float32)  # [B, L]
        src_t, src_e = in_table[known][keep], in_extra[known][keep]
        rr, ss = k_row[keep], slot[keep]
        emb[rr[src_t], ss[src_t]] = snap.table.vectors[t_rows[known][keep][src_t]]
        emb[rr[src_e], ss[src_e]] = extra.vectors[e_rows[known][keep][src_e]]
        mask[rr, ss] = 1.0
        used = np.minimum(used_all, length)  # [B]
        out = np.zeros((b, cfg.num_interests, cfg.dim), dtype=np.float32)  # [B, K, D]
        if used.any():
            with snap.lock, paddle.no_grad():
                res = snap.tower(paddle.to_tensor(emb, place=self._place),
                                 paddle.to_tensor(mask, place=self._place))  # [B, K, D]
                out = res.numpy().astype(np.float32)
            out[used == 0] = 0.0
        return Interests(out, skipped, used)

    def reload_if_newer(self) -> bool:
        """Swap in the version named by root/LATEST if it is newer; True if swapped."""
        if self._root is None:
            return False
        latest = read_latest(self._root)
        if latest is None or latest <= self._snap.version:
            return False
        snap = _load_snapshot(self._root / latest, self._place)
        with self._lock:
            self._snap = snap
            self._extra = self._extra.compacted(drop=snap.table.index)
        return True
