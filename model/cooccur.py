"""Item-to-item co-occurrence (live ItemCF): the counting rule, an in-memory reference store and
the scoring shared by every copy of the counts (this one, and
Redis in streams/recall/cooccur_reader.py).

Counting. Each click of item j by a user pairs j with the distinct items among the user's
previous `window` clicks (i != j): co(i, j) and co(j, i) grow by the click's weight, and so does
n(j), j's own count. Weights decay with data time: a click at ts weighs 2^((ts - base) / H)
against a base, so older counts lose half their weight every half-life H (`half_life_s`; None:
no decay, every weight 1). Stored values are kept relative to a base: one per item for its
neighbour set, one for all counts n; a base is moved forward (the stored values scaled down)
once a weight would pass 2^REBASE_LOG2, so no value overflows however long the stream runs.

Bounded memory. An item keeps its `cap` strongest neighbours: after each increment its set is
cut back to `cap` members, the weakest first (ties: the smaller member as text, Redis' order).

Scoring (ItemCF): candidate j of a user with history items i (newest first, position p) scores
sum_i w_p * co(i, j) / sqrt(n(i) * n(j)), w_p = 1 / (1 + pos_decay * p), over the first `read`
neighbours of each history item; the decays cancel in the cosine except for the bases.

`normalize` says where n(j) divides: "read" (the cosine above, from raw pair counts: the
neighbour sets keep and return the most co-clicked items, which are mostly the popular ones),
or "write": each increment of co(i, j) is divided by sqrt(n(j)) as n(j) stands at that click,
so a set ranks, keeps and returns its neighbours by their (time-weighted) cosine, and reading
needs no n(j).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from model.ranking import Excluded, Ranked, top_per_row_flat

REBASE_LOG2 = 30.0  # a stored weight never exceeds 2^30 times the base's


@dataclass(frozen=True)
class CooccurConfig:
    """The co-occurrence channel's settings (RECALL_COOCCUR_* in streams.settings)."""

    window: int = 10  # previous clicks paired with each click
    cap: int = 500  # neighbours kept per item
    half_life_s: float | None = None  # decay in data time; None: none
    read: int = 100  # neighbours read per history item when scoring
    pos_decay: float = 0.1  # weight of the p-th newest history item: 1 / (1 + pos_decay * p)
    normalize: str = "read"  # where n(j) divides: "read" or "write" (see the module doc)
    # transitions (model/transitions.py): each click of j follows the distinct items among the
    # user's previous `next_window` (0: none counted) ...
    next_window: int = 3
    next_cap: int = 500  # ... an item keeps its `next_cap` strongest followers ...
    next_read: int = 200  # ... of which scoring reads the first `next_read` ...
    next_history: int = 3  # ... of each of the user's `next_history` newest distinct items ...
    next_pos_decay: float = 0.5  # ... weighted 1 / (1 + next_pos_decay * p)

    def __post_init__(self) -> None:
        if self.normalize not in ("read", "write"):
            raise ValueError(f"normalize must be 'read' or 'write', got {self.normalize!r}")

    def weight_log2(self, ts: float, base: float) -> float:
        """log2 of a click's weight at `ts` against `base` (0 without decay)."""
        return 0.0 if not self.half_life_s else (ts - base) / self.half_life_s


def fmt(x: float) -> str:
    """A float as Redis and Lua exchange it: 17 significant digits, read back exactly."""
    return f"{x:.17g}"


@dataclass
class Neighbours:
    """What scoring needs of one history item: its neighbour list (strongest first, at most
    `read`), stored values against `base`, and its own count n (against the counts' base)."""

    base: float
    n: float
    items: list[tuple[int, float]]


@dataclass
class CountsView:
    """The counts a batch of users is scored with: per history item its Neighbours, the
    stored n of every neighbour, and the counts' common base."""

    near: dict[int, Neighbours] = field(default_factory=dict)
    n: dict[int, float] = field(default_factory=dict)
    n_base: float = 0.0


def filled(first: Sequence[int] | np.ndarray, then: Sequence[int] | np.ndarray,
           k: int) -> np.ndarray:
    """`first`, then the items of `then` not in it, cut at `k`: the ItemCF a team deploys
    first is the co-occurrence list filled with popular items (the `itemcf` variant)."""
    head = np.asarray(first, dtype=np.int64)
    rest = np.asarray(then, dtype=np.int64)
    if len(head):
        rest = rest[~np.isin(rest, head)]
    return np.concatenate([head, rest])[:k]


def recent_distinct(history: Sequence[int], window: int) -> list[int]:
    """The distinct items of the last `window` clicks of `history` (oldest first), newest
    first."""
    out: list[int] = []
    for item in reversed(list(history)[-window:] if window else []):
        if item not in out:
            out.append(item)
    return out


def history_weight(cfg: CooccurConfig, pos: int, base: float, n: float, n_base: float) -> float:
    """What the history item at position `pos` (0: newest) multiplies its neighbours' values by:
    w_p / sqrt(n(i)), its set's base shifted onto the counts' base when counts decay."""
    shift = 2.0 ** ((base - n_base) / cfg.half_life_s) if cfg.half_life_s else 1.0
    return shift / (1.0 + cfg.pos_decay * pos) / math.sqrt(n)


def score_users(histories: Sequence[Sequence[int]], view: CountsView, cfg: CooccurConfig,
                exclude: Sequence[Iterable[int]], top_k: int
                ) -> list[tuple[list[int], list[float]]]:
    """Each user's ItemCF candidates (items, scores), best first (ties: smaller id), at most
    `top_k`, none of the user's `exclude` row."""
    out = []
    for history, drop in zip(histories, exclude, strict=True):
        scores: dict[int, float] = {}
        for pos, i in enumerate(recent_distinct(history, cfg.window)):
            near = view.near.get(i)
            if near is None or near.n <= 0:
                continue
            w = history_weight(cfg, pos, near.base, near.n, view.n_base)
            for j, co in near.items[: cfg.read]:
                if cfg.normalize == "write":
                    scores[j] = scores.get(j, 0.0) + w * co
                elif (nj := view.n.get(j, 0.0)) > 0:
                    scores[j] = scores.get(j, 0.0) + w * (co / math.sqrt(nj))
        gone = set(drop)
        ranked = sorted(((-s, j) for j, s in scores.items() if j not in gone))[:top_k]
        out.append(([j for _, j in ranked], [-s for s, _ in ranked]))
    return out


@dataclass(frozen=True)
class NearArrays:
    """One history item's counts as arrays (what streams/stores/lua/near.lua returns): its
    count n and base, its first `read` neighbours (strongest first) and their values, each
    co(i, j) / sqrt(n(j)) ("read") or the stored co(i, j) ("write")."""

    n: float
    base: float
    ids: np.ndarray
    vals: np.ndarray


def score_batch(histories: Sequence[Sequence[int]], near: Mapping[int, NearArrays],
                n_base: float, cfg: CooccurConfig,
                exclude: Sequence[Iterable[int]] | Excluded, top_k: int
                ) -> list[tuple[list[int], list[float]]]:
    """score_users over the whole batch at once (model.ranking): the same products summed
    in the same order, so the same floats and the same ranking."""
    return rank_batch(histories, near, n_base, cfg, exclude, top_k).pairs()


def rank_batch(histories: Sequence[Sequence[int]], near: Mapping[int, NearArrays],
               n_base: float, cfg: CooccurConfig,
               exclude: Sequence[Iterable[int]] | Excluded, top_k: int) -> Ranked:
    """score_batch's ranking, left as flat arrays."""
    rows, weights, cands, vals = [], [], [], []
    for row, history in enumerate(histories):
        for pos, i in enumerate(recent_distinct(history, cfg.window)):
            e = near.get(i)
            if e is None or e.n <= 0 or not len(e.ids):
                continue
            rows.append(row)
            weights.append(history_weight(cfg, pos, e.base, e.n, n_base))
            cands.append(e.ids)
            vals.append(e.vals)
    return top_per_row_flat(len(histories), rows, weights, cands, vals, exclude, top_k)


class CooccurCounts:
    """The counts in memory, applied click by click exactly as the Redis script applies them
    (the brute-force reference of the tests, and the offline simulation's channel)."""

    def __init__(self, cfg: CooccurConfig) -> None:
        self.cfg = cfg
        self.co: dict[int, dict[int, float]] = {}
        self.base: dict[int, float] = {}  # per item: base of its neighbour set
        self.n: dict[int, float] = {}
        self.n_base: float | None = None
        self.histories: dict[int, list[int]] = {}
        self.nx: dict[int, dict[int, float]] = {}  # transitions i -> j (against i's base)
        self.out: dict[int, float] = {}  # i's transitions out, evicted ones included

    def _weight(self, item: int, ts: float) -> float:
        """The click's weight in `item`'s neighbour set, moving its base forward if needed."""
        base = self.base.setdefault(item, ts)
        lg = self.cfg.weight_log2(ts, base)
        if lg > REBASE_LOG2:
            factor = 2.0 ** -lg
            self.co[item] = {j: v * factor for j, v in self.co.get(item, {}).items()}
            self.nx[item] = {j: v * factor for j, v in self.nx.get(item, {}).items()}
            if item in self.out:
                self.out[item] *= factor
            self.base[item], lg = ts, 0.0
        return 2.0 ** lg

    def _count(self, item: int, ts: float) -> None:
        if self.n_base is None:
            self.n_base = ts
        lg = self.cfg.weight_log2(ts, self.n_base)
        if lg > REBASE_LOG2:
            factor = 2.0 ** -lg
            self.n = {j: v * factor for j, v in self.n.items()}
            self.n_base, lg = ts, 0.0
        self.n[item] = self.n.get(item, 0.0) + 2.0 ** lg

    def _bump(self, item: int, other: int, ts: float) -> None:
        w = self._weight(item, ts)  # may move the base: rescales the set first
        if self.cfg.normalize == "write":  # n(other) as it stands, in units of this click
            n = self.n.get(other, 0.0)
            if n > 0 and self.cfg.half_life_s:
                n = n * 2.0 ** (((self.n_base or ts) - ts) / self.cfg.half_life_s)
            w = w / math.sqrt(n) if n > 0 else w
        _add(self.co.setdefault(item, {}), other, w, self.cfg.cap)

    def click(self, previous: Sequence[int], item: int, ts: float) -> None:
        """One applied click of `item` at `ts` by a user whose clicks before it were
        `previous` (oldest first)."""
        self._weight(item, ts)  # the base first, as the script does
        self._count(item, ts)
        prev = recent_distinct(previous, self.cfg.window)
        for i in prev:
            if i != item:
                self._bump(i, item, ts)
                self._bump(item, i, ts)
        for i in prev[: self.cfg.next_window]:
            if i != item:
                w = self._weight(i, ts)
                _add(self.nx.setdefault(i, {}), item, w, self.cfg.next_cap)
                self.out[i] = self.out.get(i, 0.0) + w

    def add(self, user: int, item: int, ts: float) -> None:
        """A click of a user whose history this store keeps itself (time order assumed)."""
        hist = self.histories.setdefault(user, [])
        self.click(hist, item, ts)
        hist.append(item)
        del hist[: -self.cfg.window]

    def view(self, histories: Iterable[Sequence[int]]) -> CountsView:
        """The counts that scoring these histories reads."""
        view = CountsView(n_base=self.n_base or 0.0)
        for history in histories:
            for i in recent_distinct(history, self.cfg.window):
                if i in view.near or i not in self.n:
                    continue
                row = self.co.get(i, {})
                top = sorted(row.items(), key=lambda kv: (kv[1], str(kv[0])),
                             reverse=True)[: self.cfg.read]  # Redis' ZREVRANGE order
                view.near[i] = Neighbours(self.base.get(i, 0.0), self.n[i], top)
                for j, _ in top:
                    view.n[j] = self.n.get(j, 0.0)
        return view

    def recall(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
               top_k: int) -> list[tuple[list[int], list[float]]]:
        return score_users(histories, self.view(histories), self.cfg, exclude, top_k)

    def followers(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """`item`'s first `next_read` followers (Redis' order) and their shares of its
        transitions out, as streams/stores/lua/near.lua reads them."""
        row = sorted(self.nx.get(item, {}).items(), key=lambda kv: (kv[1], str(kv[0])),
                     reverse=True)[: self.cfg.next_read]
        out = self.out.get(item, 0.0)
        if out <= 0:  # never followed, or decayed to nothing: none, as near.lua reads it
            row = []
        return (np.array([j for j, _ in row], dtype=np.int64),
                np.array([v / out for _, v in row], dtype=np.float64))


def _add(row: dict[int, float], member: int, w: float, cap: int) -> None:
    """ZINCRBY, then cut the set back to `cap`: the weakest goes (ties: the smaller member as
    text, Redis' order)."""
    row[member] = row.get(member, 0.0) + w
    if len(row) > cap:
        del row[min(row.items(), key=lambda kv: (kv[1], str(kv[0])))[0]]
