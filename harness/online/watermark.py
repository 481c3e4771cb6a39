"""`make online-eval`, the learning watermark W: learners (the worker's co-occurrence counts, the
continuous trainer) learn a click only once its data time is <= W, a float the replay keeps in
Redis (RECALL_EVAL_WATERMARK_KEY).

A future click is *scored* once the list it is scored on is fixed: once the recommendation of
its user's previous click has arrived (see online_served.worker_ranks). A click whose user's
previous click is before the cut is scored on the list at the cut, fixed from the start, and a
user's very first click is not scored at all: neither ever holds W back. W is the smallest data
time among the clicks not yet scored, so a click is learned only once every click with an
earlier timestamp has been scored, and no served list can come from counts or a model holding
a later click. A click sent before it was scored (open loop, or a user's loop that gave up
waiting) would be learnable at W == its own ts: W then stays strictly below it until it is
scored. W never decreases; it is +inf once every click is scored.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from harness.online.data import LoggedClick


class Watermark:
    """W over the future clicks (data order), updated with `answered` and `sent`."""

    def __init__(self, future: Sequence[LoggedClick]) -> None:
        n = len(future)
        self.ts = np.fromiter((c.ts for c in future), dtype=np.float64, count=n)  # [F]
        self.next = np.full(n, -1, dtype=np.int64)  # [F] the user's next future click, or -1
        self.scored = np.ones(n, dtype=bool)  # [F]
        last: dict[int, int] = {}
        for i, c in enumerate(future):
            j = last.get(c.user)
            if j is not None:  # previous click in the future: scored once that one is answered
                self.next[j] = i
                self.scored[i] = False
            last[c.user] = i
        self.low = 0  # every click before it is scored
        self.early: list[tuple[float, int]] = []  # (ts, index) of clicks sent before scored

    def answered(self, index: int) -> None:
        """The recommendation of future click `index` arrived: the user's next click is scored."""
        j = int(self.next[index])
        if j >= 0:
            self.scored[j] = True

    def sent(self, index: int) -> None:
        """Future click `index` was sent (it can be learned from once W reaches its ts)."""
        if not self.scored[index]:
            heapq.heappush(self.early, (float(self.ts[index]), index))

    def unscored(self) -> int:
        """How many clicks are not scored yet."""
        return int((~self.scored).sum())

    def value(self) -> float:
        """W now: the smallest ts of the clicks not yet scored (+inf: none), strictly below the
        ts of any such click that was already sent."""
        n = len(self.scored)
        while self.low < n and self.scored[self.low]:
            self.low += 1
        w = float(self.ts[self.low]) if self.low < n else math.inf
        while self.early and self.scored[self.early[0][1]]:
            heapq.heappop(self.early)
        if self.early:
            w = min(w, math.nextafter(self.early[0][0], -math.inf))
        return w


class WatermarkWriter:
    """Writes W to the Redis key (SET, repr(float)) whenever it moved, at most every
    `every_s` seconds; `put` is the SET itself (None: keep nothing, --no-watermark)."""

    def __init__(self, mark: Watermark, put: Callable[[str], None] | None,
                 every_s: float = 0.02, clock: Callable[[], float] = time.monotonic) -> None:
        self.mark, self.put, self.every_s, self.clock = mark, put, every_s, clock
        self.written: float | None = None
        self.at = -math.inf
        self.writes = 0

    def update(self, force: bool = False) -> float:
        """Write W if it moved and the last write is `every_s` old (or `force`); returns W."""
        w = self.mark.value()
        if self.put is not None and w != self.written and (
                force or self.clock() - self.at >= self.every_s):
            self.put(repr(w))
            self.written, self.at = w, self.clock()
            self.writes += 1
        return w

    def finish(self) -> None:
        """+inf: everything left gets learned (the run is over)."""
        if self.put is not None:
            self.put(repr(math.inf))
            self.written = math.inf
            self.writes += 1


class Ahead:
    """How far (data time) after W the replay may send: `floor_s`, doubled each `every_s`
    while the replay sends slower than it must to send the rest in what is left of
    `budget_s` (its rate over the last `span_s`), halved back towards `floor_s` while it sends
    faster; at most `cap_s` (more: no bound). Under the watermark the learners stay behind the
    slowest user's next click: the further others may run ahead of it, the staler their lists
    (in data time); the closer they stay, the more the replay waits for the slowest users'
    closed loops. `budget_s` None: always `floor_s`."""

    def __init__(self, total: int, floor_s: float, budget_s: float | None,
                 cap_s: float = math.inf, every_s: float = 1.0, span_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.floor_s, self.budget_s, self.cap_s = total, floor_s, budget_s, cap_s
        self.every_s, self.span_s, self.clock = every_s, span_s, clock
        self.start = self.at = clock()
        self.delta_s = floor_s
        self.marks: list[tuple[float, int]] = [(self.start, 0)]  # (time, sent) each update
        self.seen: list[float] = []  # the bound at each update

    def update(self, sent: int) -> float:
        """The bound now, given how many clicks were sent."""
        now = self.clock()
        if self.budget_s is None or now - self.at < self.every_s:
            return self.delta_s
        self.at = now
        self.marks.append((now, sent))
        back = next(m for m in self.marks if m[0] >= now - self.span_s - 1e-9)
        if back[0] == now:
            back = self.marks[-2]
        rate = (sent - back[1]) / (now - back[0])
        left = self.budget_s - (now - self.start)
        need = (self.total - sent) / left if left > 0 else math.inf
        if rate < need:
            self.delta_s = self.delta_s * 2 if self.delta_s > 0 else 1.0
            if self.delta_s > self.cap_s:
                self.delta_s = math.inf
        else:
            self.delta_s = max(self.floor_s, min(self.delta_s, self.cap_s) / 2)
        self.seen.append(self.delta_s)
        return self.delta_s

    def summary(self) -> dict[str, float | None]:
        """The floor, the median and the widest bound over the replay (seconds of data time);
        None stands for no bound."""
        seen = self.seen or [self.delta_s]

        def show(x: float) -> float | None:
            return None if math.isinf(x) else round(x, 1)

        return {"floor": show(self.floor_s), "median": show(float(np.median(seen))),
                "widest": show(max(seen)), "budget_s": self.budget_s}


def redis_put(url: str, key: str, username: str | None = None,
              password: str | None = None) -> Callable[[str], None]:
    """A SET of `key` on the Redis at `url`, for WatermarkWriter."""
    import redis

    client = redis.Redis.from_url(url, username=username, password=password)

    def put(value: str) -> None:
        client.set(key, value)

    return put
