"""Replay a dataset, or seeded synthetic clicks, to the clicks topic at a target rate or speed."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from itertools import islice

from tqdm import tqdm

from producers.items import read_item_ids
from producers.kafka import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    Sender,
    SendStats,
    add_kafka_args,
    open_sender,
    run_cli,
)
from producers.sources import (
    FORMATS,
    LineReporter,
    SourceClick,
    iter_clicks,
    synthetic_clicks,
)
from streams.errors import BadRequest
from streams.records import Click
from streams.settings import Settings


class Pacer:
    """When to send click number i: `rate` per second, `speed` x recorded time, or at once."""

    def __init__(self, rate: float = 0.0, speed: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate < 0 or (speed is not None and speed <= 0):
            raise BadRequest("--rate must be >= 0 and --speed > 0")
        self.rate, self.speed, self.clock, self.sleep = rate, speed, clock, sleep
        self.start: float | None = None
        self.first_ts: float | None = None

    def delay(self, index: int, ts: float | None = None) -> float:
        """Seconds to wait before sending click `index` (0-based) recorded at `ts`; >= 0."""
        now = self.clock()
        if self.start is None:
            self.start, self.first_ts = now, ts
        if self.speed is not None:
            if ts is None or self.first_ts is None:
                raise BadRequest("--speed needs timestamps (a user,item,timestamp CSV)")
            target = self.start + (ts - self.first_ts) / self.speed
        elif self.rate > 0:
            target = self.start + index / self.rate
        else:
            return 0.0
        return max(0.0, target - now)

    def wait(self, index: int, ts: float | None = None) -> None:
        """Sleep until click `index` is due; a sender that fell behind catches up at once."""
        pause = self.delay(index, ts)
        if pause > 0:
            self.sleep(pause)


def replay(clicks: Iterable[SourceClick | tuple[int, int]], sender: Sender, *, rate: float = 0.0,
           speed: float | None = None, limit: int | None = None, progress: bool = False,
           total: int | None = None, clock: Callable[[], float] = time.time,
           pacer: Pacer | None = None) -> SendStats:
    """Send clicks in order, keyed by user id, stamped with the send time; flush and return stats.

    Ctrl-C stops the replay early; what was queued is still flushed and counted.
    """
    pacer = pacer or Pacer(rate, speed)
    stream = islice(clicks, limit) if limit is not None else clicks
    bar = tqdm(stream, total=limit if total is None else total, disable=None if progress else True,
               unit="click")
    try:
        for index, click in enumerate(bar):
            pacer.wait(index, getattr(click, "ts", None))
            record = Click(user_id=click[0], item_id=click[1], ts=clock())
            sender.send_valid(record.user_id, record, f"click {index}")
    finally:
        bar.close()
    return sender.flush()


def replay_to_kafka(clicks: Iterable[SourceClick | tuple[int, int]], settings: Settings, *,
                    rate: float = 0.0, speed: float | None = None, limit: int | None = None,
                    progress: bool = False) -> SendStats:
    """`replay` on a fresh producer for `settings` (bootstrap and clicks topic)."""
    with open_sender(settings.kafka_bootstrap, settings.clicks_topic,
                     settings=settings) as sender:
        return replay(clicks, sender, rate=rate, speed=speed, limit=limit, progress=progress)


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m producers.replay", description=__doc__,
                                     epilog=EXIT_CODES)
    src = parser.add_mutually_exclusive_group()
    src.add_argument("path", nargs="?", help="dataset file (amazon-*.txt, train.txt, or CSV)")
    src.add_argument("--synthetic", action="store_true",
                     help="seeded generated clicks (the default when no path is given)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="dataset format")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=0.0,
                      help="clicks per second, 0 = as fast as possible (default)")
    pace.add_argument("--speed", type=float, help="x recorded speed (CSV with timestamps only)")
    parser.add_argument("--limit", type=int, help="stop after N clicks (synthetic default 1000)")
    parser.add_argument("--users", type=int, help="only the first N users (synthetic: N users, "
                        "default 100)")
    parser.add_argument("--active", type=int, default=64,
                        help="users clicking concurrently when interleaving per-user sequences")
    parser.add_argument("--seed", type=int, default=0, help="seed of interleave and generator")
    items = parser.add_mutually_exclusive_group()
    items.add_argument("--items-from", metavar="DIR",
                       help="synthetic: item ids of an exported model dir (or an item_ids.npy); "
                            "default RECALL_MODEL_DIR if it holds a model")
    items.add_argument("--num-items", type=int, help="synthetic: catalog of item ids 1..N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_kafka_args(parser, settings, "clicks_topic")
    return parser.parse_args(argv)


def source_from_args(args: argparse.Namespace, settings: Settings,
                     report: LineReporter | None = None) -> Iterable[SourceClick]:
    """The click iterator an argument set names; bad dataset lines go to `report`."""
    if args.path:
        return iter_clicks(args.path, args.format, users=args.users, active=args.active,
                           seed=args.seed, report=report)
    if args.num_items:
        catalog = list(range(1, args.num_items + 1))
    else:
        try:
            catalog = read_item_ids(args.items_from or settings.model_dir).tolist()
        except BadRequest as exc:
            raise BadRequest(f"{exc} (give --items-from DIR or --num-items N)") from None
    limit = 1000 if args.limit is None else args.limit
    return synthetic_clicks(catalog, users=args.users or 100, seed=args.seed, limit=limit)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 ok, 1 failures, 2 bad input, 3 broker unreachable, 130 interrupted."""
    settings = Settings()
    args = parse_args(argv, settings)

    def body() -> int:
        report = LineReporter(args.path)
        clicks = source_from_args(args, settings, report)
        limit = args.limit if args.path else None
        with open_sender(args.bootstrap, args.topic, settings=settings) as sender:
            pacer = Pacer(args.rate, args.speed)
            try:
                stats = replay(clicks, sender, limit=limit, progress=not args.no_progress,
                               pacer=pacer, total=None if args.path else args.limit or 1000)
            except KeyboardInterrupt:
                stats = sender.flush()
                print(f"interrupted; {stats.summary()}", file=sys.stderr)
                return EXIT_INTERRUPTED
        stats.invalid += report.count
        print(f"-> {args.topic}: {stats.summary()}", file=sys.stderr)
        return EXIT_OK if stats.failed == stats.invalid == 0 else EXIT_PARTIAL

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
