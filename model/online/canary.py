"""The canary gate of the continuous learner: never serve a version worse than what serves.

Prequential: every batch of new samples is scored BEFORE the learner trains on it, by the
learner as it is and by the serving snapshot (the last exported version, or the offline model
at start): HitRate@50 of the clicked item against the exact top 50 of max-over-interests inner
products over the scorer's whole item table, the sample's history items excluded. The hits
add up until the next export, which goes out only if the learner's hits are at least the
serving snapshot's over that window (`Gate.decide`).

A label or history row the serving table does not hold yet (an item first seen since the last
export) is unknown to it: a label it cannot recall is a miss, a history item it does not know
is left out of the history (as a worker leaves out an item its model lacks). A history of
which a scorer knows no item counts as a miss for that scorer (it would serve popular items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

K = 50
CHUNK = 256  # samples scored per matrix product (memory: CHUNK x interests x items floats)


class Scorer(Protocol):
    """A model as the gate scores it: the learner (model.online.learner.OnlineLearner) or a frozen
    serving copy of it (model.online.learner.Snapshot), both indexed by the learner's rows."""

    @property
    def table(self) -> np.ndarray: ...  # [n + 1, D], row 0 = padding

    def interests_of_rows(self, rows: np.ndarray) -> np.ndarray: ...  # [B, L] -> [B, K, D]


def known_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """`rows` (any shape) with every row a table of `n` items lacks (> n) set to 0 (padding)."""
    return np.where(rows <= n, rows, 0)


def hits_at_k(interests: np.ndarray, table: np.ndarray, labels: np.ndarray,
              exclude: np.ndarray, k: int = K) -> np.ndarray:
    """Whether each label is in its sample's exact top `k` -> [B] bool.

    interests [B, K, D] (a row of zeros: no usable history, a miss); table [n + 1, D] with
    row 0 the padding; labels [B] rows of `table` (0 or > n: unknown, a miss); exclude [B, L]
    rows never recalled for that sample (0 and rows > n are ignored). The score of an item is
    its largest inner product with the sample's interests; the label is in the top `k` when
    fewer than `k` recallable items score strictly higher (ties go to the label).
    """
    n = len(table) - 1
    table_t = np.ascontiguousarray(table.T)  # [D, n + 1]: 3x faster products than table.T
    out = np.zeros(len(labels), dtype=bool)
    for lo in range(0, len(labels), CHUNK):
        vecs, y = interests[lo:lo + CHUNK], labels[lo:lo + CHUNK]  # [b, K, D], [b]
        b = len(y)
        scores = (vecs.reshape(-1, vecs.shape[-1]) @ table_t).reshape(b, -1, n + 1).max(axis=1)
        scores[:, 0] = -np.inf  # [b, n + 1] the padding row is never recalled
        drop = known_rows(exclude[lo:lo + CHUNK], n)  # [b, L]
        scores[np.arange(b)[:, None], drop] = -np.inf
        known = (y >= 1) & (y <= n) & np.abs(vecs).sum(axis=(1, 2)).astype(bool)  # [b]
        own = scores[np.arange(b), np.where(known, y, 0)]  # [b] -inf where unknown
        above = (scores > own[:, None]).sum(axis=1)  # [b]
        out[lo:lo + b] = known & np.isfinite(own) & (above < k)
    return out


@dataclass
class Gate:
    """Hits of the learner and of the serving snapshot since the last export."""

    samples: int = 0
    learner: int = 0
    serving: int = 0

    def add(self, learner_hits: np.ndarray, serving_hits: np.ndarray) -> None:
        self.samples += len(learner_hits)
        self.learner += int(np.count_nonzero(learner_hits))
        self.serving += int(np.count_nonzero(serving_hits))

    def score(self, learner: Scorer, serving: Scorer, hist: np.ndarray,
              label: np.ndarray) -> None:
        """Add the hits of both models on new samples hist [B, L], label [B] (learner rows);
        call it before the learner trains on them."""
        self.add(hits_at_k(learner.interests_of_rows(hist), learner.table, label, hist),
                 hits_at_k(serving.interests_of_rows(hist), serving.table, label, hist))

    def decide(self, min_samples: int = 0) -> Literal["export", "skip", "wait"]:
        """"export": the learner scored at least as well as the serving snapshot; "skip": it
        scored worse (do not serve it; the window restarts); "wait": fewer than `min_samples`
        samples scored (too little evidence yet; the window goes on)."""
        if self.samples < max(min_samples, 1):
            return "wait"
        return "export" if self.learner >= self.serving else "skip"

    def meta(self) -> dict[str, float | int]:
        """What the exported version records of the gate."""
        n = max(self.samples, 1)
        return {"samples": self.samples, "learner_hr50": self.learner / n,
                "serving_hr50": self.serving / n}
