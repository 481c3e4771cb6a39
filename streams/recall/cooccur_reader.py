"""Reading the co-occurrence channel from Redis: one script call per batch scores every row
inside Redis (the rule of model/cooccur.py, the same float operations in the same order) and
returns each row's top candidates, the live popular items and the newest counted data time.
The counts are written by the history append script (streams/stores/lua/append.lua), in the same
call that appends the clicks. Scoring next to the counts keeps the reply small: a batch of 64 users
reads up to 64 x 10 x `read` neighbours but returns 64 short lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from model.cooccur import CooccurConfig, fmt, recent_distinct
from streams.stores.history import unavailable
from streams.stores.scripts import lua_script

SCORE_LUA = lua_script("score.lua")


@dataclass(frozen=True)
class CooccurLists:
    """One read: each row's candidates (items, scores), best first; the live popular items
    (most clicked first, counts decayed like the pairs); the newest counted data time."""

    lists: list[tuple[list[int], list[float]]]
    popular: list[int]
    counts_ts: float | None


class CooccurReader:
    """Scores rows against the counts through the history store's Redis client, one script
    call per batch."""

    def __init__(self, client: Any, cfg: CooccurConfig, prefix: str = "co:") -> None:
        self.cfg = cfg
        self.prefix = prefix
        self._client = client
        self._score = client.register_script(SCORE_LUA)

    def start(self) -> None:
        with unavailable("script load"):
            self._client.script_load(SCORE_LUA)

    def read(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
             top_k: int, popular: int = 0) -> CooccurLists:
        """Each history's top_k co-occurrence candidates without its `exclude` row, and the
        `popular` most clicked items."""
        cfg = self.cfg
        rows: list[str] = []
        for history, drop in zip(histories, exclude, strict=True):
            rows += [",".join(map(str, recent_distinct(history, cfg.window))),
                     ",".join(map(str, drop))]
        args = [self.prefix, cfg.read, fmt(cfg.pos_decay), fmt(cfg.half_life_s or 0),
                cfg.normalize, top_k, popular, *rows]
        with unavailable("cooccur read"):
            counts_ts, pop, found = self._score(args=args)
        lists = [([int(row[t]) for t in range(0, len(row), 2)],
                  [float(row[t]) for t in range(1, len(row), 2)]) for row in found]
        return CooccurLists(lists, [int(i) for i in pop],
                            float(counts_ts) if counts_ts not in (b"", "") else None)
