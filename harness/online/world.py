"""`make online-eval`, live side: the local system on its own model dir, the continuous trainer
beside the worker, past histories in Redis, recommendations collected."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Sequence

from tqdm import tqdm

from consumers.kafka import make_consumer, poll_records
from harness.online.data import LoggedClick
from harness.online.served import Served
from harness.stack.launch import System
from harness.stack.servers import StackError
from harness.stack.settings import StackSettings
from producers.kafka import open_sender
from streams.recall.core import history_store
from streams.records import Click, Recommendation
from streams.settings import Settings
from streams.stores.history import ClickAt

TRAINER_MODULE = "streams.training"
PAST_PARTITION = -1  # the made-up Kafka partition of the bulk-loaded past clicks in Redis
WARMUP_USER = 999_999_999  # one click before the replay: the worker has joined its group

Where = tuple[int, int]  # (partition, offset) of a click in the clicks topic


class OnlineSystem(System):
    """`System` without the API on the given settings' model dir (the initial export must be
    there), plus the continuous trainer (`python -m streams.training`) on the same environment.
    `prepare(settings)` runs once the servers are up, before the worker starts (the past
    histories, the watermark's first value); `trainer_env` is what the trainer gets besides
    the worker's RECALL_* environment."""

    def __init__(self, base: Settings, trainer_env: dict[str, str],
                 prepare: Callable[[Settings], None] | None = None,
                 stack: StackSettings | None = None) -> None:
        super().__init__(base, data=None, api=False, stack=stack)
        self.trainer_env = trainer_env
        self.prepare = prepare

    def __enter__(self) -> OnlineSystem:
        self.start()
        return self

    def start(self) -> None:
        try:
            self.stack.start()
            print(f"stack: kafka {self.settings.kafka_bootstrap}, {self.settings.redis_url}, "
                  f"milvus {self.settings.milvus_uri} (logs in {self.stack.dir})", flush=True)
            if self.prepare is not None:
                self.prepare(self.settings)
            self.spawn("worker", "streams.worker")
            self.stream_items()
        except BaseException:
            self.stop()
            raise

    def start_trainer(self) -> None:
        """Start the continuous trainer; fail at once if it is missing or exits."""
        check_trainer()
        self.spawn("trainer", TRAINER_MODULE, self.trainer_env)
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


def trainer_env(export_s: float, export_every: int) -> dict[str, str]:
    """The trainer's export cadence: every `export_every` learned clicks (0: every `export_s`
    seconds), and every version kept (the report reads them all)."""
    env = {"RECALL_ONLINE_EXPORT_S": f"{export_s:g}", "RECALL_ONLINE_KEEP_VERSIONS": "100000"}
    if export_every > 0:
        env["RECALL_ONLINE_EXPORT_EVERY"] = str(export_every)
    return env


def check_trainer() -> None:
    """Raise StackError when the continuous trainer's module cannot be found."""
    if importlib.util.find_spec(TRAINER_MODULE) is None:
        raise StackError(f"{TRAINER_MODULE} not found: the continuous trainer is not there yet "
                         "(run with --no-trainer, or ONLINE_NO_TRAINER=1)")


def load_histories(settings: Settings, past: Sequence[LoggedClick], batch: int = 2000) -> int:
    """Append the past clicks to Redis as the worker would (partition PAST_PARTITION, offsets
    in data order), so each user starts the replay with their real last clicks, and the
    co-occurrence counts and live popularity hold the past (counted at once, watermark or
    not)."""
    store = history_store(settings.model_copy(update={"eval_watermark_key": None,
                                                      "cooccur_defer": False}))
    store.start()
    try:
        for start in tqdm(range(0, len(past), batch), desc="past histories -> redis",
                          unit="batch", disable=None):
            store.append([ClickAt(c.user, c.item, c.ts, PAST_PARTITION, start + k)
                          for k, c in enumerate(past[start:start + batch])])
    finally:
        store.close()
    return len(past)


class Collector(threading.Thread):
    """Reads the recommendations topic in the background: per click, named by where it is in
    the clicks topic (partition, offset), its record; `arrived` lists the clicks in arrival
    order with the time each came, `news` is set on each; later copies of a click's record are
    counted, the warm-up user's set `warm`."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.consumer = make_consumer(settings.kafka_bootstrap, settings.recs_topic,
                                      fetch_max_wait_ms=settings.fetch_max_wait_ms,
                                      settings=settings)
        self.recs: dict[Where, Served] = {}
        self.arrived: list[tuple[Where, float]] = []  # (click, time.monotonic() it came)
        self.news = threading.Event()  # set on each arrival (the replay waits on it)
        self.duplicates = 0
        self.warm = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                for _, rec in poll_records(self.consumer, Recommendation, idle_timeout_s=0.5):
                    if rec.user_id == WARMUP_USER:
                        self.warm.set()
                        continue
                    key = (rec.click_partition, rec.click_offset)
                    if key in self.recs:
                        self.duplicates += 1
                        continue
                    self.recs[key] = Served.of(rec)
                    self.arrived.append((key, time.monotonic()))
                    self.news.set()
                    if self.done.is_set():
                        return
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def warm_up(collector: Collector, settings: Settings, click: LoggedClick,
            alive: Callable[[], None], timeout_s: float = 180.0) -> None:
    """One click of WARMUP_USER (`click`'s item and time: the last past click, learned at
    once); wait for its recommendation (the worker is in its group)."""
    with open_sender(settings.kafka_bootstrap, settings.clicks_topic, settings=settings) as s:
        s.send_valid(WARMUP_USER, Click(user_id=WARMUP_USER, item_id=click.item,
                                              ts=click.ts), "warm-up click")
    deadline = time.monotonic() + timeout_s
    while not collector.warm.wait(0.2):
        alive()
        if time.monotonic() > deadline:
            raise StackError(f"no recommendation for the warm-up click after {timeout_s:.0f}s")
