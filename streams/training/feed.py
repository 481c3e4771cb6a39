"""What feeds the online trainer its clicks: the buffer of consumed clicks not learned yet and
the evaluation's watermark that releases them.

Without a watermark every consumed click is learned at once, in the order consumed. With one
(RECALL_EVAL_WATERMARK_KEY, a data time W in Redis written by the evaluation's replay) a click
is learned only once its ts <= W; the clicks W releases are learned in ts order (stable: in
the order consumed among equal ts), so what the trainer has learned never runs ahead of the
click being scored.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import redis

from streams.settings import Settings
from streams.stores.history import redis_client

log = logging.getLogger("streams.training")

Pending = tuple[int, int, float]  # (user id, item id, ts) of a consumed click


class ClickBuffer:
    """Consumed clicks not learned yet. `ordered`: released in (ts, arrival) order up to a
    watermark; otherwise all of them in arrival order (the watermark is ignored)."""

    def __init__(self, ordered: bool, clicks: Iterable[Pending] = ()) -> None:
        self.ordered = ordered
        self._fifo: deque[Pending] = deque()
        self._heap: list[tuple[float, int, int, int]] = []  # (ts, arrival, user, item)
        self._arrival = 0
        self.extend(clicks)

    def __len__(self) -> int:
        return len(self._heap) if self.ordered else len(self._fifo)

    def extend(self, clicks: Iterable[Pending]) -> None:
        for user, item, ts in clicks:
            if self.ordered:
                heapq.heappush(self._heap, (float(ts), self._arrival, int(user), int(item)))
                self._arrival += 1
            else:
                self._fifo.append((int(user), int(item), float(ts)))

    def release(self, upto: float = math.inf, limit: int | None = None) -> list[Pending]:
        """Remove and return the clicks to learn now (at most `limit`): those with ts <= `upto`
        in ts order when ordered, else the oldest consumed."""
        n = len(self) if limit is None else min(limit, len(self))
        out: list[Pending] = []
        if not self.ordered:
            out = [self._fifo.popleft() for _ in range(n)]
        while self.ordered and len(out) < n and self._heap and self._heap[0][0] <= upto:
            ts, _, user, item = heapq.heappop(self._heap)
            out.append((user, item, ts))
        return out

    def held(self) -> list[Pending]:
        """Every click still held, in the order it would be released (for the saved state)."""
        if not self.ordered:
            return list(self._fifo)
        return [(user, item, ts) for ts, _, user, item in sorted(self._heap)]


class Watermark(Protocol):
    """Where the trainer reads the data time up to which it may learn."""

    def read(self) -> float: ...

    def close(self) -> None: ...


class RedisWatermark:
    """Reads the evaluation's watermark W (unix seconds) from a Redis key, one GET a call."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.client = redis_client(settings.redis_url, settings.redis_username,
                                   settings.redis_password, settings.redis_cluster)
        self.key = key
        self.last = -math.inf  # absent: learn nothing yet
        self._failing = False

    def read(self) -> float:
        """W now; -inf while the key is absent; the last W read when Redis fails or the value
        is not a number (logged once per failure spell)."""
        try:
            raw = self.client.get(self.key)
            value = -math.inf if raw is None else float(raw)
        except (redis.RedisError, ValueError, TypeError) as exc:
            if not self._failing:
                log.warning("watermark %r unreadable, keeping %s: %r", self.key, self.last, exc)
            self._failing = True
            return self.last
        if self._failing:
            log.info("watermark %r readable again: %s", self.key, value)
        self._failing, self.last = False, value
        return value

    def close(self) -> None:
        self.client.close()
