"""Follow the recommendations topic: readable or JSON lines, and click-to-receive latency stats."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from consumers.kafka import make_consumer, poll_records
from streams.errors import ServiceUnavailable
from streams.records import Recommendation
from streams.settings import Settings


class LatencyStats:
    """Collects latencies in milliseconds and reports nearest-rank percentiles."""

    QUANTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, ms: float) -> None:
        self.values.append(float(ms))

    def __len__(self) -> int:
        return len(self.values)

    def percentile(self, q: float) -> float:
        """Nearest-rank q-th percentile (0 < q <= 100); NaN when empty."""
        if not self.values:
            return math.nan
        ordered = sorted(self.values)
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]

    def percentiles(self) -> dict[str, float]:
        """{"count", "p50", "p90", "p99", "max", "mean"}; NaN values when empty."""
        out = {name: self.percentile(q) for name, q in self.QUANTILES}
        out["max"] = max(self.values) if self.values else math.nan
        out["mean"] = sum(self.values) / len(self.values) if self.values else math.nan
        return {"count": float(len(self.values)), **out}

    def summary(self) -> str:
        p = self.percentiles()
        if not self.values:
            return "latency: no recommendations received"
        return (f"latency ms over {len(self.values)}: p50 {p['p50']:.1f}  p90 {p['p90']:.1f}  "
                f"p99 {p['p99']:.1f}  max {p['max']:.1f}  mean {p['mean']:.1f}")


class Deduplicator:
    """Drops recommendations answering a click already answered (a worker redelivery).

    The key is the click itself: (user_id, click_item, click_ts). The click's position
    (click_partition, click_offset) identifies it only while the broker keeps its log: after a
    broker reset (or a topic recreated) offsets start again at 0, and a different click would
    share a position with an old one and be dropped wrongly. Two recommendations with the same
    user, item and timestamp answer the same click whatever its position (a redelivered
    message, or a producer retry that stored the click twice). The most recent `max_keys`
    clicks are remembered (duplicates come within seconds of the original), so memory stays
    bounded when following forever.
    """

    def __init__(self, max_keys: int = 1_000_000) -> None:
        self.max_keys = max_keys
        self.dropped = 0
        self._seen: OrderedDict[tuple[int, int, float], None] = OrderedDict()

    def fresh(self, rec: Recommendation) -> bool:
        """True the first time a click is seen; False (and counted) for a duplicate."""
        key = (rec.user_id, rec.click_item, rec.click_ts)
        if key in self._seen:
            self._seen.move_to_end(key)
            self.dropped += 1
            return False
        self._seen[key] = None
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True

    def summary(self) -> str:
        return f"duplicates dropped: {self.dropped}"


def follow_records(records: Iterable[Recommendation], user: int | None = None,
                   clock: Callable[[], float] = time.time
                   ) -> Iterator[tuple[Recommendation, float]]:
    """(record, latency ms = receive time - click_ts) for records of `user` (or every user)."""
    for rec in records:
        if user is None or rec.user_id == user:
            yield rec, (clock() - rec.click_ts) * 1000.0


def follow(settings: Settings, *, user: int | None = None, from_beginning: bool = False,
           max_records: int | None = None, idle_timeout_s: float | None = None,
           bootstrap: str | None = None, topic: str | None = None
           ) -> Iterator[tuple[Recommendation, float]]:
    """Follow the recommendations topic of `settings`, yielding (record, latency ms).

    Starts at the end of the topic unless `from_beginning`; stops after `max_records` matching
    records or `idle_timeout_s` seconds without any message. Malformed messages are skipped.
    """
    consumer = make_consumer(bootstrap or settings.kafka_bootstrap, topic or settings.recs_topic,
                             from_beginning=from_beginning,
                             fetch_max_wait_ms=settings.fetch_max_wait_ms)
    try:
        records = (rec for _, rec in poll_records(consumer, Recommendation,
                                                  idle_timeout_s=idle_timeout_s))
        matching = follow_records(records, user)
        yield from (matching if max_records is None else islice(matching, max_records))
    finally:
        consumer.close()


def format_line(rec: Recommendation, latency_ms: float, top: int = 5) -> str:
    """`user 7 <- click 42 | 13:0.912 8:0.871 ... (+45) | model v3 | 12.4 ms`."""
    pairs = " ".join(f"{i}:{s:.3f}" for i, s in zip(rec.item_ids[:top], rec.scores[:top],
                                                  strict=False))
    more = f" (+{len(rec.item_ids) - top})" if len(rec.item_ids) > top else ""
    return (f"user {rec.user_id} <- click {rec.click_item} | {pairs}{more} | "
            f"model {rec.model_version} | {latency_ms:.1f} ms")


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m consumers.recommendations",
                                     description=__doc__,
                                     epilog="exit codes: 0 ok, 3 Kafka or topic unavailable, "
                                            "130 interrupted")
    parser.add_argument("--user", type=int, help="only this user's recommendations")
    parser.add_argument("--json", action="store_true", help="one JSON object per line, "
                        "the record plus latency_ms")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the oldest message instead of new ones")
    parser.add_argument("--max", type=int, help="stop after N recommendations")
    parser.add_argument("--timeout", type=float, help="stop after S seconds without messages")
    parser.add_argument("--top", type=int, default=5, help="items shown per line (default 5)")
    parser.add_argument("--keep-duplicates", action="store_true",
                        help="show every record, also a second one for the same click "
                             "(user, item, ts); by default those are dropped and counted")
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap,
                        help="Kafka bootstrap servers (env RECALL_KAFKA_BOOTSTRAP, "
                             "now %(default)s)")
    parser.add_argument("--topic", default=settings.recs_topic,
                        help="recommendations topic (env RECALL_RECS_TOPIC, now %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 ok, 3 broker or topic unavailable, 130 interrupted."""
    settings = Settings()
    args = parse_args(argv, settings)
    stats = LatencyStats()
    dedup = Deduplicator()
    code = 0
    try:
        for rec, latency_ms in follow(settings, user=args.user, from_beginning=args.from_beginning,
                                      max_records=args.max, idle_timeout_s=args.timeout,
                                      bootstrap=args.bootstrap, topic=args.topic):
            if not args.keep_duplicates and not dedup.fresh(rec):
                continue
            stats.add(latency_ms)
            line = json.dumps({**rec.asdict(), "latency_ms": round(latency_ms, 3)}) \
                if args.json else format_line(rec, latency_ms, args.top)
            print(line, flush=True)
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 3
    except KeyboardInterrupt:
        code = 130
    print(f"{stats.summary()}; {dedup.summary()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
