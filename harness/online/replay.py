"""`make online-eval`, the replay: the future sent to the clicks topic in closed loops per user,
each click's place in the topic (partition, offset) noted, its recommendation matched by that
place (so duplicate clicks in the data, same user, item and second, stay apart), and the
learning watermark kept moving (online_watermark)."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from kafka.errors import KafkaError
from tqdm import tqdm

from harness.online.data import LoggedClick
from harness.online.served import Served
from harness.online.watermark import Ahead, WatermarkWriter
from harness.online.world import Collector, Where
from producers.kafka import Sender, SendStats, open_sender
from producers.replay import Pacer
from streams.errors import BadEvent
from streams.records import Click
from streams.settings import Settings


class UserLoops:
    """The replay's order: the data's, except that with `answered` (is there a
    recommendation for click i yet?) each user is a closed loop, as a real user is: their
    next click waits until the previous one was answered, or `give_up_s` passed (that click
    goes to `given_up`). Other users' clicks, up to `window` clicks ahead in data order (and
    no later in data time than `due`'s `until_ts`), go on meanwhile."""

    def __init__(self, clicks: Sequence[LoggedClick], answered: Callable[[int], bool] | None,
                 window: int = 2000, give_up_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clicks, self.answered, self.window = clicks, answered, window
        self.give_up_s, self.clock = give_up_s, clock
        self.pending = deque(range(len(clicks)))
        self.waiting: dict[int, tuple[int, float]] = {}  # user -> (their last click, sent at)
        self.given_up: list[int] = []

    def __bool__(self) -> bool:
        return bool(self.pending)

    def _waits(self, user: int) -> bool:
        last = self.waiting.get(user)
        if self.answered is None or last is None or self.answered(last[0]):
            return False
        if self.clock() - last[1] < self.give_up_s:
            return True
        self.given_up.append(last[0])
        del self.waiting[user]
        return False

    def due(self, until_ts: float = math.inf) -> Iterator[int]:
        """One pass over the window: the indices of the clicks to send now, in order; none
        with a data time after `until_ts` (nor after it in the data: they are in time order)."""
        blocked: set[int] = set()
        kept: list[int] = []
        try:
            for _ in range(min(self.window, len(self.pending))):
                if self.clicks[self.pending[0]].ts > until_ts:
                    break
                index = self.pending.popleft()
                c = self.clicks[index]
                if c.user in blocked or self._waits(c.user):
                    blocked.add(c.user)
                    kept.append(index)
                    continue
                yield index
                if self.answered is not None:
                    self.waiting[c.user] = (index, self.clock())
                    blocked.add(c.user)
        finally:
            self.pending.extendleft(reversed(kept))


class Ledger:
    """Where each future click landed in the clicks topic (from the producer's acks) and
    whether its recommendation arrived."""

    def __init__(self, n: int) -> None:
        self.where: dict[Where, int] = {}
        self.answered = np.zeros(n, dtype=bool)  # [F]
        self.sent_at = np.full(n, np.nan)  # [F] time.monotonic() of the send
        self.answered_at = np.full(n, np.nan)  # [F] ... of the record's arrival
        self.cursor = 0
        self.unmatched: list[tuple[Where, float]] = []  # came before their click's ack

    def landed(self, index: int, partition: int, offset: int) -> None:
        self.where[(partition, offset)] = index

    def sync(self, arrived: Sequence[tuple[Where, float]]) -> list[int]:
        """The future indices newly answered by the records `arrived` ((click, arrival time)
        in arrival order)."""
        end = len(arrived)
        got, self.unmatched = [*self.unmatched, *arrived[self.cursor:end]], []
        self.cursor = end
        out = []
        for key, at in got:
            index = self.where.get(key)
            if index is None:
                self.unmatched.append((key, at))
            elif not self.answered[index]:
                self.answered[index] = True
                self.answered_at[index] = at
                out.append(index)
        return out

    def round_trips(self) -> dict[str, float | None]:
        """Send to record arrival, seconds: median, p90, p99."""
        rtt = (self.answered_at - self.sent_at)[self.answered & ~np.isnan(self.sent_at)]
        if not len(rtt):
            return {"p50": None, "p90": None, "p99": None}
        p50, p90, p99 = np.percentile(rtt, [50, 90, 99]).tolist()
        return {"p50": round(p50, 4), "p90": round(p90, 4), "p99": round(p99, 4)}

    def records(self, recs: dict[Where, Served]) -> dict[int, Served]:
        """Future index -> its record."""
        return {i: recs[key] for key, i in self.where.items() if key in recs}


def send_click(sender: Sender, index: int, c: LoggedClick,
               landed: Callable[[int, int, int], None]) -> None:
    """Send one click keyed by its user with its data time; `landed(index, partition, offset)`
    once the broker acknowledged it. Invalid or failed sends are counted by `sender`."""
    record = Click(user_id=c.user, item_id=c.item, ts=c.ts)
    try:
        record.check()
        future = sender.producer.send(sender.topic, key=str(c.user).encode(),
                                      value=record.to_bytes())
    except BadEvent as exc:
        sender.skip(f"click {index}: {exc}")
        return
    except KafkaError as exc:
        sender._fail(exc)
        return

    def ok(meta: Any) -> None:
        landed(index, meta.partition, meta.offset)
        sender._ok(meta)

    future.add_callback(ok)
    future.add_errback(sender._fail)


class Replay:
    """The future's clicks sent at most at `rate`/s in UserLoops order (closed loops unless
    `open_loop`), none more than `ahead` (data time) after W, each answer matched to its
    click, W written as it moves (kept here either way: only the writer knows whether it goes
    to Redis, so a run without the watermark replays in the same order)."""

    def __init__(self, clicks: Sequence[LoggedClick], collector: Collector, writer: WatermarkWriter,
                 open_loop: bool = False, window: int = 2000, give_up_s: float = 30.0,
                 ahead: Ahead | None = None) -> None:
        self.clicks, self.collector, self.writer = clicks, collector, writer
        self.ahead = ahead or Ahead(len(clicks), math.inf, None)
        self.ledger = Ledger(len(clicks))
        self.loops = UserLoops(clicks, None if open_loop else self.is_answered, window,
                               give_up_s)
        self.given_up = 0

    def is_answered(self, index: int) -> bool:
        return bool(self.ledger.answered[index])

    def tick(self) -> None:
        """Newly arrived answers and given-up waits move W (both fix the next click's list)."""
        for index in self.ledger.sync(self.collector.arrived):
            self.writer.mark.answered(index)
        for index in self.loops.given_up:
            self.writer.mark.answered(index)
        self.given_up += len(self.loops.given_up)
        self.loops.given_up.clear()
        self.writer.update()

    def send(self, settings: Settings, rate: float, alive: Callable[[], None] = lambda: None,
             progress: bool = True, check_every: int = 500, tick_s: float = 0.02
             ) -> SendStats:
        """Replay every click; `alive` is checked as it goes."""
        pacer, sent, ticked = Pacer(rate), 0, time.monotonic()
        news = self.collector.news
        with open_sender(settings.kafka_bootstrap, settings.clicks_topic, settings=settings,
                         linger_ms=0) as sender, \
                tqdm(total=len(self.clicks), desc="replay", unit="click",
                     disable=None if progress else True, mininterval=2.0) as bar:
            while self.loops:
                before = sent
                news.clear()
                self.tick()
                ticked = time.monotonic()
                until = self.writer.mark.value() + self.ahead.update(sent)
                for index in self.loops.due(until):
                    pacer.wait(sent)
                    if sent % check_every == 0:
                        alive()
                    self.writer.mark.sent(index)
                    self.ledger.sent_at[index] = time.monotonic()
                    send_click(sender, index, self.clicks[index], self.ledger.landed)
                    sent += 1
                    bar.update(1)
                    if time.monotonic() - ticked >= tick_s:
                        self.tick()
                        ticked = time.monotonic()
                if sent == before:  # everyone in the window waits: until an answer comes
                    news.wait(tick_s)
            return sender.flush()

    def drain(self, idle_s: float, alive: Callable[[], None]) -> int:
        """Wait until every click was answered, or none for `idle_s` seconds, moving W; then W
        goes to +inf. Returns how many clicks stay unanswered."""
        wanted = len(self.clicks)
        count = int(self.ledger.answered.sum())
        changed = time.monotonic()
        with tqdm(total=wanted, initial=count, desc="recommendations", unit="rec",
                  mininterval=2.0, disable=None) as bar:
            while count < wanted:
                alive()
                time.sleep(0.1)
                self.tick()
                now_count = int(self.ledger.answered.sum())
                if now_count != count:
                    bar.update(now_count - count)
                    count, changed = now_count, time.monotonic()
                elif time.monotonic() - changed > idle_s:
                    print(f"recommendations: {wanted - count} missing after {idle_s:.0f}s "
                          "without a new one", file=sys.stderr)
                    break
        self.writer.finish()
        return wanted - count
