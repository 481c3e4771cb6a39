"""`make online-eval`, live side: the local system on its own model dir, the continuous trainer
beside the worker, past histories in Redis, the future replayed, recommendations collected."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from consumers.kafka import make_consumer, poll_records
from harness.launch import System
from harness.online_data import Click
from harness.online_variants import Key, Served
from harness.stack import StackError
from producers.kafka import SendStats, open_sender
from producers.replay import Pacer
from streams.core import history_store
from streams.history import ClickAt
from streams.records import Click as ClickRecord
from streams.records import Recommendation
from streams.settings import Settings

TRAINER_MODULE = "streams.trainer"
PAST_PARTITION = -1  # the made-up Kafka partition of the bulk-loaded past clicks in Redis
WARMUP_USER = 999_999_999  # one click before the replay: the worker has joined its group


class OnlineSystem(System):
    """`System` without the API on the given settings' model dir (the initial export must be
    there), plus the continuous trainer (`python -m streams.trainer`) on the same environment and
    `RECALL_ONLINE_EXPORT_S`."""

    def __init__(self, base: Settings, export_s: float) -> None:
        super().__init__(base, data=None, api=False)
        self.export_s = export_s

    def __enter__(self) -> OnlineSystem:
        self.start()
        return self

    def trainer_env(self) -> dict[str, str]:
        """What the trainer gets besides the worker's RECALL_* environment."""
        return {"RECALL_ONLINE_EXPORT_S": f"{self.export_s:g}",
                "RECALL_ONLINE_KEEP_VERSIONS": "100000"}  # every version, for the report

    def start_trainer(self) -> None:
        """Start the continuous trainer; fail at once if it is missing or exits."""
        check_trainer()
        self.spawn("trainer", TRAINER_MODULE, self.trainer_env())
        path = self.log_path("trainer")
        deadline = time.monotonic() + 120
        while "trainer ready" not in path.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise StackError(f"trainer not ready after 120 s; see {path}")
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Like System.check_alive, with the last lines of the dead process's log."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                path = self.log_path(name)
                tail = path.read_text(errors="replace").splitlines()[-15:] if path.exists() else []
                raise StackError(f"{name} exited with {proc.returncode}; see {path}:\n  "
                                 + "\n  ".join(tail))


def check_trainer() -> None:
    """Raise StackError when the continuous trainer's module cannot be found."""
    if importlib.util.find_spec(TRAINER_MODULE) is None:
        raise StackError(f"{TRAINER_MODULE} not found: the continuous trainer is not there yet "
                         "(run with --no-trainer, or ONLINE_NO_TRAINER=1)")


def load_histories(settings: Settings, past: Sequence[Click], batch: int = 2000) -> int:
    """Append the past clicks to Redis as the worker would (partition PAST_PARTITION, offsets
    in data order), so each user starts the replay with their real last clicks."""
    store = history_store(settings)  # the worker's: same history length and seen items
    store.start()
    try:
        for start in tqdm(range(0, len(past), batch), desc="past histories -> redis",
                          unit="batch"):
            store.append([ClickAt(c.user, c.item, c.ts, PAST_PARTITION, start + k)
                          for k, c in enumerate(past[start:start + batch])])
    finally:
        store.close()
    return len(past)


class Collector(threading.Thread):
    """Reads the recommendations topic in the background: per click (user, item, ts) its
    micro-batch, model version and items; later copies of a click's record are counted."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.consumer = make_consumer(settings.kafka_bootstrap, settings.recs_topic,
                                      fetch_max_wait_ms=settings.fetch_max_wait_ms,
                                      settings=settings)
        self.recs: dict[Key, Served] = {}
        self.duplicates = 0
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                for _, rec in poll_records(self.consumer, Recommendation, idle_timeout_s=0.5):
                    key = (rec.user_id, rec.click_item, rec.click_ts)
                    if key in self.recs:
                        self.duplicates += 1
                        continue
                    self.recs[key] = Served(rec.emit_ts, rec.model_version,
                                            np.asarray(rec.item_ids, dtype=np.int64),
                                            tuple(rec.history))
                    if self.done.is_set():
                        return
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


class UserLoops:
    """The replay's order: the data's, except that with `answered` (is there a
    recommendation for this click yet?) each user is a closed loop, as a real user is: their
    next click waits until the previous one was answered, or `give_up_s` passed. Other users'
    clicks, up to `window` clicks ahead in data order, go on meanwhile."""

    def __init__(self, clicks: Sequence[Click], answered: Callable[[Key], bool] | None,
                 window: int = 2000, give_up_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clicks, self.answered, self.window = clicks, answered, window
        self.give_up_s, self.clock = give_up_s, clock
        self.pending = deque(range(len(clicks)))
        self.waiting: dict[int, tuple[Key, float]] = {}  # user -> (their last click, sent at)

    def __bool__(self) -> bool:
        return bool(self.pending)

    def _waits(self, user: int) -> bool:
        last = self.waiting.get(user)
        return (self.answered is not None and last is not None and not self.answered(last[0])
                and self.clock() - last[1] < self.give_up_s)

    def due(self) -> Iterator[int]:
        """One pass over the window: the indices of the clicks to send now, in order."""
        blocked: set[int] = set()
        kept: list[int] = []
        try:
            for _ in range(min(self.window, len(self.pending))):
                index = self.pending.popleft()
                c = self.clicks[index]
                if c.user in blocked or self._waits(c.user):
                    blocked.add(c.user)
                    kept.append(index)
                    continue
                yield index
                if self.answered is not None:
                    self.waiting[c.user] = ((c.user, c.item, c.ts), self.clock())
                    blocked.add(c.user)
        finally:
            self.pending.extendleft(reversed(kept))


def send_clicks(clicks: Sequence[Click], settings: Settings, rate: float,
                alive: Callable[[], None] = lambda: None, progress: bool = True,
                check_every: int = 500, answered: Callable[[Key], bool] | None = None
                ) -> SendStats:
    """Replay at most at `rate` clicks/s (producers.replay's Pacer) in `UserLoops` order
    (closed loops per user with `answered`, else open loop in data order), keyed by user,
    each click stamped with its data timestamp; `alive` is checked as it goes."""
    pacer = Pacer(rate)
    loops = UserLoops(clicks, answered)
    sent = 0
    with open_sender(settings.kafka_bootstrap, settings.clicks_topic, settings=settings
                     ) as sender, tqdm(total=len(clicks), desc="replay", unit="click",
                                       disable=not progress, mininterval=2.0) as bar:
        while loops:
            before = sent
            for index in loops.due():
                pacer.wait(sent)
                if sent % check_every == 0:
                    alive()
                c = clicks[index]
                sender.send_valid(c.user, ClickRecord(user_id=c.user, item_id=c.item, ts=c.ts),
                                  f"click {index}")
                sent += 1
                bar.update(1)
            if sent == before:  # every user in the window waits: rescan in 20 ms, not at once
                time.sleep(0.02)
        return sender.flush()


def wait_for_recommendations(collector: Collector, wanted: int, idle_s: float,
                             alive: Callable[[], None]) -> float:
    """Wait until `wanted` records arrived, or none for `idle_s` seconds; returns seconds."""
    started = time.monotonic()
    count, changed = len(collector.recs), started
    with tqdm(total=wanted, initial=count, desc="recommendations", unit="rec",
              mininterval=2.0) as bar:
        while count < wanted:
            alive()
            time.sleep(0.5)
            now_count = len(collector.recs)
            if now_count != count:
                bar.update(now_count - count)
                count, changed = now_count, time.monotonic()
            elif time.monotonic() - changed > idle_s:
                print(f"recommendations: {wanted - count} missing after {idle_s:.0f}s without "
                      "a new one", file=sys.stderr)
                break
    return time.monotonic() - started


def warm_up(collector: Collector, settings: Settings, item: int, ts: float,
            alive: Callable[[], None], timeout_s: float = 180.0) -> None:
    """One click of WARMUP_USER; wait for its recommendation (the worker is in its group)."""
    send_clicks([Click(WARMUP_USER, item, ts)], settings, 0.0, progress=False)
    deadline = time.monotonic() + timeout_s
    while not any(key[0] == WARMUP_USER for key in list(collector.recs)):
        alive()
        if time.monotonic() > deadline:
            raise StackError(f"no recommendation for the warm-up click after {timeout_s:.0f}s")
        time.sleep(0.2)
    for key in [k for k in list(collector.recs) if k[0] == WARMUP_USER]:
        del collector.recs[key]
