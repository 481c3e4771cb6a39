"""`python -m harness.bench.cooccur`: what the co-occurrence and next channels cost Redis per
micro-batch.

Starts a private redis-server (the local stack's, with its append-only file, as it runs),
replays a user,item,ts stream through `HistoryStore.append` in micro-batches (the worker's
step), with the counts off, queued (RECALL_COOCCUR_DEFER: the append queues, a second call per
batch counts) and on (counted inside the append), then reads and scores batches of users with
`CooccurReader.read` (one script call per batch, scored with numpy), without the worker's cache
and with it (co-occurrence and transitions both, as the worker reads them). Prints the median
milliseconds per batch of each, side by side in one run, the rate one core would sustain at that
cost, and Redis' bytes per counted item of each channel.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence

from harness.online.data import read_clicks
from harness.stack.servers import LocalStack, free_ports
from model.cooccur import CooccurConfig
from streams.recall.cooccur_reader import CooccurReader
from streams.stores.history import ClickAt, HistoryStore

DEFAULT_DATA = "../shared/data/movielens-small/clicks.csv"


def append_ms(url: str, clicks: Sequence[ClickAt], batch: int, counts: CooccurConfig | None,
              seen_max: int, defer: bool = False
              ) -> tuple[list[float], list[float], HistoryStore]:
    """Milliseconds of each append call over the stream, into an emptied store, and with
    `defer` (RECALL_COOCCUR_DEFER) of each `count_due` call that counts the batch after it."""
    store = HistoryStore(url, history_len=10, seen_max=seen_max, cooccur=counts,
                         defer_counts=defer)
    store.start()
    store.flush()
    times, counted = [], []
    for start in range(0, len(clicks), batch):
        t0 = time.perf_counter()
        store.append(clicks[start:start + batch])
        t1 = time.perf_counter()
        times.append(1000 * (t1 - t0))
        if defer:
            store.count_due()
            counted.append(1000 * (time.perf_counter() - t1))
    return times, counted, store


def memory(store: HistoryStore) -> dict[str, tuple[float, float]]:
    """Redis bytes per counted item (MEMORY USAGE), mean and for the largest set: "cooccur"
    (its neighbour set, base and count) and "next" (its follower set and out count)."""
    r, p = store.client, store.co_prefix
    items = [m.decode() for m in r.zrange(f"{p}n", 0, -1)]
    out = {}
    for name, prefix, shared in (("cooccur", p, ("b", "n")), ("next", f"{p}x", ("xo",))):
        sets = [r.memory_usage(f"{prefix}{i}") or 0 for i in items]
        extra = sum(r.memory_usage(f"{p}{k}") or 0 for k in shared) / max(len(items), 1)
        out[name] = (sum(sets) / max(len(items), 1) + extra, max(sets, default=0) + extra)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.cooccur", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="user,item,ts CSV")
    p.add_argument("--limit", type=int, default=30_000, help="clicks replayed")
    p.add_argument("--batch", type=int, default=64, help="clicks (and users) per batch")
    p.add_argument("--reads", type=int, default=200, help="score calls timed")
    p.add_argument("--cache-s", type=float, default=1.0,
                   help="RECALL_COOCCUR_CACHE_S of the second scoring run")
    p.add_argument("--seen-max", type=int, default=1000, help="RECALL_SEEN_MAX")
    p.add_argument("--cap", type=int, default=CooccurConfig.cap, help="RECALL_COOCCUR_CAP")
    p.add_argument("--read", type=int, default=CooccurConfig.read, help="RECALL_COOCCUR_READ")
    args = p.parse_args(argv)
    logged = read_clicks(args.data, args.limit)
    clicks = [ClickAt(c.user, c.item, c.ts, 0, n) for n, c in enumerate(logged)]
    cfg = CooccurConfig(cap=args.cap, read=args.read)
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as workdir:
        stack = LocalStack(stack_dir=workdir, redis_port=port)  # its Redis only, AOF as run
        stack.start_server("redis")
        try:
            url = stack.settings.redis_url
            off, _, store = append_ms(url, clicks, args.batch, None, args.seen_max)
            store.close()
            queued, counting, store = append_ms(url, clicks, args.batch, cfg, args.seen_max,
                                                defer=True)
            store.close()
            on, _, store = append_ms(url, clicks, args.batch, cfg, args.seen_max)
            users = sorted({c.user_id for c in clicks})
            histories, seen = store.get(users), store.seen(users)
            reads: dict[float, list[float]] = {}
            for cache_s in (0.0, args.cache_s):
                reader = CooccurReader(store.client, cfg, cache_s=cache_s)
                reader.start()
                reads[cache_s] = read = []
                for n in range(args.reads):
                    rows = [users[(n * args.batch + k) % len(users)] for k in range(args.batch)]
                    t0 = time.perf_counter()
                    reader.read([histories[u] for u in rows], [seen[u] for u in rows], 100,
                                popular=100)
                    read.append(1000 * (time.perf_counter() - t0))
            bytes_per_item = memory(store)
            store.close()
        finally:
            stack.stop()
    print(f"{len(clicks)} clicks of {args.data}, cap {cfg.cap}, read {cfg.read}, batches of "
          f"{args.batch} (median ms per batch)")
    for name, (per_item, full) in bytes_per_item.items():
        print(f"  Redis bytes per counted item, {name}: {per_item:,.0f} mean, {full:,.0f} for "
              f"the largest set")
    rows = [("append, counts off", off), ("append, counts on", on),
            ("append, counts queued", queued), ("count the queued batch", counting),
            ("score a batch, no cache", reads[0.0]),
            (f"score a batch, cache {args.cache_s:g} s", reads[args.cache_s])]
    for name, times in rows:
        ms = statistics.median(times)
        print(f"  {name:28s} {ms:8.2f} ms   ({args.batch / ms * 1000:8.0f} per s on one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
