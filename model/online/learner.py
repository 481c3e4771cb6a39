"""Online MIND learner: an item table that grows on first sight, fine-tuned in mini-batches.

The table is keyed by raw item id (row 0 = padding, rows 1..n in order of first sight), held
in an embedding with spare capacity so a new item costs no copy; when the capacity runs out,
the table is rebuilt twice as large (Adam's moments of the table restart, the tower's stay).
Each step trains on the newest samples plus a replay buffer of earlier ones, with the offline
loss (sampled softmax over shared uniform negatives) and gradient clipping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from model.config import MindConfig, config_from_dict
from model.export import META_FILE, TOWER_FILE
from model.network import MindUserTower, RecallModel
from model.online.canary import known_rows
from model.split import encode

NEW_ITEM_INITS = ("history", "random")


@dataclass(frozen=True)
class OnlineConfig:
    """What the online learner was tuned on (`python -m model.online.sim` measures them)."""

    lr: float = 0.01  # Adam, on top of the offline model
    replay: int = 256  # buffer samples mixed into each step
    passes: int = 3  # steps per batch of new samples (each with its own replayed samples)
    buffer: int = 20_000  # most recent samples kept for replay
    clip_norm: float = 1.0  # global gradient norm clip
    new_item_init: str = "history"  # "history": mean of the clicker's history, or "random"
    init_noise: float = 0.1  # relative noise added to a "history" initialisation
    warmup_steps: int = 60  # the lr ramps linearly from warmup_start * lr to lr over these steps
    warmup_start: float = 0.1
    sparse: bool = False  # sparse table gradient + lazy Adam: a step touches its rows only
    seed: int = 7

    def __post_init__(self) -> None:
        if self.new_item_init not in NEW_ITEM_INITS:
            raise ValueError(f"new_item_init must be one of {NEW_ITEM_INITS}")


class ReplayBuffer:
    """Ring buffer of (history rows [L], label row) samples."""

    def __init__(self, size: int, maxlen: int) -> None:
        self.hist = np.zeros((max(size, 1), maxlen), dtype=np.int64)  # [S, L]
        self.label = np.zeros(max(size, 1), dtype=np.int64)  # [S]
        self.filled = 0
        self._next = 0

    def add(self, hist: np.ndarray, label: np.ndarray) -> None:
        for h, y in zip(hist, label, strict=True):
            self.hist[self._next], self.label[self._next] = h, y
            self._next = (self._next + 1) % len(self.label)
            self.filled = min(self.filled + 1, len(self.label))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.filled == 0 or n == 0:
            return self.hist[:0], self.label[:0]
        pick = rng.integers(0, self.filled, n)
        return self.hist[pick], self.label[pick]


class OnlineLearner:
    """A RecallModel whose item table grows, trained one mini-batch at a time."""

    def __init__(self, cfg: MindConfig, ocfg: OnlineConfig, tower_state: dict,
                 item_ids: np.ndarray, item_vectors: np.ndarray) -> None:
        self.cfg, self.ocfg = cfg, ocfg
        self.rng = np.random.default_rng(ocfg.seed)
        self.ids: list[int] = [int(i) for i in item_ids]  # row r + 1 holds ids[r]
        self.row = {i: r + 1 for r, i in enumerate(self.ids)}
        self.buffer = ReplayBuffer(ocfg.buffer, cfg.maxlen)
        self.steps = 0
        self._build(max(2 * len(self.ids), 1024), np.asarray(item_vectors, np.float32),
                    tower_state)

    def _build(self, capacity: int, vectors: np.ndarray, tower_state: dict) -> None:
        """A model with `capacity` item rows, rows 1..len(vectors) set, and a fresh Adam."""
        self.model = RecallModel(self.cfg, capacity, "mind", sparse=self.ocfg.sparse)
        self.model.tower.set_state_dict(tower_state)
        table = np.zeros((capacity + 1, self.cfg.dim), dtype=np.float32)  # [C + 1, D]
        table[1 : 1 + len(vectors)] = vectors
        self.model.items.weight.set_value(table)
        self.opt = paddle.optimizer.Adam(
            learning_rate=self.ocfg.lr, parameters=self.model.parameters(),
            lazy_mode=self.ocfg.sparse,
            grad_clip=paddle.nn.ClipGradByGlobalNorm(self.ocfg.clip_norm))
        self.capacity = capacity
        self.model.train()

    @property
    def num_items(self) -> int:
        return len(self.ids)

    def vectors(self) -> np.ndarray:
        """Item vectors [n, D] float32, row aligned with `self.ids`."""
        return self.model.items.weight.numpy()[1 : 1 + len(self.ids)].astype(np.float32)

    def tower_state(self) -> dict:
        return self.model.tower.state_dict()

    @property
    def table(self) -> np.ndarray:
        """The item table [n + 1, D] float32 (row 0 = padding, row r + 1 = ids[r])."""
        return self.model.items.weight.numpy()[: 1 + len(self.ids)]

    def interests_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Interest vectors [B, K, D] of histories given as table rows [B, L] (0 = padding)."""
        with paddle.no_grad():
            vecs = self.model.user_vectors(paddle.to_tensor(np.asarray(rows, np.int64)))
        return vecs.numpy().astype(np.float32)

    def lr(self) -> float:
        """The learning rate of the next step (after the warm-up: `ocfg.lr`)."""
        ramp = self.ocfg.warmup_steps
        if ramp <= 0 or self.steps >= ramp:
            return self.ocfg.lr
        start = self.ocfg.warmup_start
        return self.ocfg.lr * (start + (1.0 - start) * self.steps / ramp)

    def snapshot(self, popular: Sequence[int]) -> Snapshot:
        """A frozen serving copy of the current tower and table."""
        tower = MindUserTower(self.cfg)
        tower.set_state_dict({k: v.clone() for k, v in self.tower_state().items()})
        tower.eval()
        table = self.model.items.weight.numpy()[: 1 + len(self.ids)].astype(np.float32)
        return Snapshot(tower, dict(self.row), np.array(self.ids, dtype=np.int64), table,
                        list(popular))

    def rows(self, history: Sequence[int]) -> np.ndarray:
        """The last maxlen known items of a raw-id history as rows, 0-padded -> [L]."""
        return encode([list(history)], self.row, self.cfg.maxlen)[0]

    def add_items(self, new: Sequence[tuple[int, Sequence[int]]]) -> int:
        """Give each unseen (item id, its clicker's history) a row; returns how many were new.

        "history": the mean of the history's known vectors plus `init_noise` of its length in
        random direction (a new item starts near what its first clicker likes); "random" (or
        an empty history): the offline initialisation, N(0, 1 / sqrt(D)).
        """
        fresh = [(i, h) for i, h in dict(new).items() if i not in self.row]
        if not fresh:
            return 0
        while len(self.ids) + len(fresh) > self.capacity:
            self._build(2 * self.capacity, self.vectors(), self.tower_state())
        weight, dim, start = self.model.items.weight, self.cfg.dim, len(self.ids) + 1
        # rows known before this call, read once: the new rows are written by one slice
        # (copying the whole table per call cost 0.3 s at 1M items, harness.bench.tables)
        before = np.unique(np.concatenate([self.rows(h) for _, h in fresh]))  # [H]
        before = before[before > 0]
        held = paddle.gather(weight, paddle.to_tensor(before)).numpy() if len(before) else None
        rows = np.empty((len(fresh), dim), dtype=np.float32)  # [M, D] the new rows
        for k, (item_id, history) in enumerate(fresh):
            known = self.rows(history)
            known = known[known > 0]  # the rows of its last maxlen known items
            noise = self.rng.normal(0.0, 1.0 / math.sqrt(dim), dim).astype(np.float32)  # [D]
            if self.ocfg.new_item_init == "history" and len(known):
                mean = self._rows_of(known, start, rows, before, held).mean(axis=0)  # [D]
                unit = noise / max(float(np.linalg.norm(noise)), 1e-9)
                noise = mean + self.ocfg.init_noise * float(np.linalg.norm(mean)) * unit
            self.ids.append(int(item_id))
            self.row[int(item_id)] = len(self.ids)
            rows[k] = noise
        with paddle.no_grad():
            weight[start:start + len(fresh)] = paddle.to_tensor(rows)
        return len(fresh)

    @staticmethod
    def _rows_of(known: np.ndarray, start: int, new: np.ndarray, before: np.ndarray,
                 held: np.ndarray | None) -> np.ndarray:
        """Vectors [n, D] of table rows `known` [n]: rows from `start` on are this call's new
        rows `new`, earlier ones are among `before` [H] (sorted), read as `held` [H, D]."""
        out = np.empty((len(known), new.shape[1]), dtype=np.float32)
        fresh = known >= start
        out[fresh] = new[known[fresh] - start]
        if held is not None and (~fresh).any():
            out[~fresh] = held[np.searchsorted(before, known[~fresh])]
        return out

    def step(self, hist: np.ndarray, label: np.ndarray) -> float:
        """`passes` Adam steps on new samples hist [B, L], label [B] (rows), each with its
        own replayed samples; then the new samples join the buffer. Returns the last loss."""
        loss = 0.0
        for _ in range(self.ocfg.passes):
            old_h, old_y = self.buffer.sample(self.ocfg.replay, self.rng)
            loss = self._step(np.concatenate([hist, old_h]), np.concatenate([label, old_y]))
        self.buffer.add(hist, label)
        return loss

    def _step(self, x: np.ndarray, y: np.ndarray) -> float:
        n = len(self.ids)
        if self.cfg.negatives >= n:
            neg = np.arange(1, n + 1, dtype=np.int64)  # [n] every item: exact softmax
        else:
            neg = self.rng.integers(1, n + 1, self.cfg.negatives).astype(np.int64)  # [S]
        logq = paddle.zeros([self.capacity + 1], dtype="float32")  # uniform q: a constant
        loss = self.model.loss(paddle.to_tensor(x), paddle.to_tensor(y), paddle.to_tensor(neg),
                               logq)
        loss.backward()
        self.opt.set_lr(self.lr())
        self.opt.step()
        self.opt.clear_grad()
        self.steps += 1
        return float(loss)


def load_learner(vdir: str | Path, ocfg: OnlineConfig) -> tuple[OnlineLearner, dict[str, Any]]:
    """A learner continuing the exported version in `vdir`, and that version's meta."""
    vdir = Path(vdir)
    meta = json.loads((vdir / META_FILE).read_text())
    cfg = config_from_dict(meta["config"])
    learner = OnlineLearner(cfg, ocfg, paddle.load(str(vdir / TOWER_FILE)),
                            np.load(vdir / "item_ids.npy"), np.load(vdir / "item_vectors.npy"))
    return learner, meta


@dataclass(frozen=True)
class Snapshot:
    """A frozen copy of the learner for serving between exports: tower and item table."""

    tower: MindUserTower
    row: dict[int, int]  # raw id -> row of `table`
    ids: np.ndarray  # [n] int64, row r + 1 of `table`
    table: np.ndarray  # [n + 1, D] float32, row 0 = padding
    popular: list[int]  # fallback for users with no known history item, most popular first

    def interests(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(interest vectors [B, K, D], usable [B] bool) of raw-id histories."""
        rows = encode([list(h) for h in histories], self.row, self.tower.cfg.maxlen)  # [B, L]
        mask = (rows > 0).astype(np.float32)  # [B, L]
        with paddle.no_grad():
            vecs = self.tower(paddle.to_tensor(self.table[rows]), paddle.to_tensor(mask))
        return vecs.numpy().astype(np.float32), np.asarray(mask.any(axis=1))

    def interests_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Interest vectors [B, K, D] of histories given as rows of the learner's table [B, L]
        (rows beyond this snapshot's table: items it does not know, left out)."""
        rows = known_rows(np.asarray(rows, np.int64), len(self.table) - 1)  # [B, L]
        mask = (rows > 0).astype(np.float32)  # [B, L]
        with paddle.no_grad():
            vecs = self.tower(paddle.to_tensor(self.table[rows]), paddle.to_tensor(mask))
        return vecs.numpy().astype(np.float32)
