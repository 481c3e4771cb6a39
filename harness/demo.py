"""`make demo`: the local system, bounded: replay clicks, consume recommendations, print SUMMARY."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from itertools import islice

from consumers.kafka import make_consumer, poll_records
from consumers.recommendations import LatencyStats, format_line
from harness.stack.launch import System, metrics_urls, wait_until
from harness.stack.servers import StackError, free_ports
from harness.stack.settings import StackSettings
from producers.items import read_item_ids
from producers.replay import replay_to_kafka
from producers.sources import SourceClick, iter_clicks, synthetic_clicks
from streams.records import Recommendation
from streams.settings import Settings

WARMUP_USER = 999_999_999  # one click first, so group join and first-batch costs stay out of p99


class Collector(threading.Thread):
    """Reads the recommendations topic in the background, keyed by the click they answer."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True)
        self.consumer = make_consumer(settings.kafka_bootstrap, settings.recs_topic,
                                      fetch_max_wait_ms=settings.fetch_max_wait_ms,
                                      settings=settings)
        self.received: dict[tuple[int, int, float], tuple[Recommendation, float]] = {}
        self.duplicates = 0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for _, rec in poll_records(self.consumer, Recommendation, idle_timeout_s=None):
                key = (rec.user_id, rec.click_item, rec.click_ts)
                if key in self.received:
                    self.duplicates += 1
                else:
                    self.received[key] = (rec, (time.time() - rec.click_ts) * 1000.0)
                if self.stop.is_set():
                    return
        finally:
            self.consumer.close()

    def count(self, user: int | None = None) -> int:
        return sum(1 for key in list(self.received) if user is None or key[0] == user)


def wait_or_report(system: System, what: str, check: Callable[[], bool],
                   timeout_s: float) -> None:
    """`wait_until`, but a timeout is reported and the demo goes on to its summary."""
    try:
        wait_until(what, check, timeout_s, system.check_alive)
    except StackError as exc:
        print(exc, file=sys.stderr)


def ask_api(settings: Settings, clicks: Sequence[SourceClick], rows: int = 16) -> None:
    """A few /recall calls on the API (so its metrics move too), and its /readyz."""
    base = f"http://{settings.api_host}:{settings.api_port}"
    body = json.dumps({"top_k": 10, "hist_item": [[int(c[1])] for c in clicks[:rows]]})
    request = urllib.request.Request(f"{base}/recall", data=body.encode(),
                                     headers={"content-type": "application/json"})
    try:
        for _ in range(3):
            urllib.request.urlopen(request, timeout=30).read()
        ready = urllib.request.urlopen(f"{base}/readyz", timeout=10).read().decode()
        print(f"api /readyz: {ready}")
    except OSError as exc:
        print(f"api: {exc}", file=sys.stderr)


def print_metrics(system: System) -> None:
    """A few of the worker's and the API's Prometheus metrics, as `curl .../metrics` shows them."""
    wanted = ("recall_clicks_consumed_total", "recall_recommendations_published_total",
              "recall_dead_letters_total", "recall_consumer_lag", "recall_milvus_items",
              "recall_model_info", "recall_stage_seconds_count", "recall_api_requests_total")
    for name, url in metrics_urls(system.settings).items():
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError as exc:
            print(f"metrics: {name} {url}: {exc}", file=sys.stderr)
            continue
        lines = [line for line in text.splitlines() if line.startswith(wanted)]
        print(f"metrics: {name} {url}\n  " + "\n  ".join(lines))


def clicks_for(system: System, data: str | None, n: int, users: int) -> list[SourceClick]:
    """The demo's click stream: a dataset file's first clicks, or the built-in generator."""
    if data:
        return list(islice(iter_clicks(data), n))
    items = read_item_ids(system.settings.model_dir)
    return list(synthetic_clicks(items, users=users, seed=7, limit=n))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.demo", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Bounded end-to-end run on a private local stack; ends with SUMMARY {json}.")
    parser.add_argument("--clicks", type=int, default=2000, help="clicks to send (DEMO_CLICKS)")
    parser.add_argument("--data", default=None, help="dataset file (default: built-in generator)")
    parser.add_argument("--rate", type=float, default=200.0, help="clicks per second (0 = max)")
    parser.add_argument("--users", type=int, default=300, help="users of the built-in generator")
    parser.add_argument("--show", type=int, default=5, help="recommendations to print")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait at the end")
    args = parser.parse_args(argv)
    kafka, redis, milvus, api, web = free_ports(5)
    base = Settings().model_copy(update={
        "api_port": api, "worker_web_port": web, "metrics_interval_s": 1.0})
    stack = StackSettings(stack_dir=".stack/demo", kafka_port=kafka, redis_port=redis,
                          milvus_port=milvus)
    with System(base, data=args.data, stack=stack) as system:
        settings = system.settings
        clicks = clicks_for(system, args.data, args.clicks, args.users)
        collector = Collector(settings)
        collector.start()
        replay_to_kafka([(WARMUP_USER, int(clicks[0][1]))], settings)
        wait_or_report(system, "warm-up recommendation",
                       lambda: collector.count(WARMUP_USER) > 0, 120)
        sent = replay_to_kafka(clicks, settings, rate=args.rate, progress=True)
        wanted = len(clicks) + 1
        wait_or_report(system, "all recommendations",
                       lambda: len(collector.received) >= wanted, args.timeout)
        collector.stop.set()
        ask_api(settings, clicks)
        print_metrics(system)
        got = {k: v for k, v in collector.received.items() if k[0] != WARMUP_USER}
        latency = LatencyStats()
        for _, ms in got.values():
            latency.add(ms)
        for rec, ms in list(got.values())[: args.show]:
            print(format_line(rec, ms))
        print(latency.summary())
        p = latency.percentiles()
        summary = {
            "clicks_sent": sent.sent,
            "send_failures": sent.failed,
            "recommendations_received": len(got),
            "duplicates": collector.duplicates,
            "p50_ms": round(p["p50"], 1), "p90_ms": round(p["p90"], 1),
            "p99_ms": round(p["p99"], 1), "max_ms": round(p["max"], 1),
            "rate_target": args.rate, "rate_sent": round(sent.rate, 1),
            "model_dir": settings.model_dir,
        }
    print("SUMMARY " + json.dumps(summary), flush=True)
    complete = summary["recommendations_received"] == summary["clicks_sent"] == len(clicks)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
