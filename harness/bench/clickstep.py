"""Click-step benchmark on the real stack: the worker's batch step (`ClickPipeline.process`:
parse, Redis append, model, Milvus search, channels, merge, records) without Kafka, with the
median milliseconds of each stage per batch size (1 = one click at a time), and this process's
CPU milliseconds per batch (`cpu`: all its threads, the co-occurrence reader's included; Redis
and Milvus run in processes of their own).

Clicks follow a skewed popularity over the model's items, from a pool of users, so histories
grow and the co-occurrence sets fill as they would under a stream; the first `--warm`
batches of each size fill them and are not timed. To compare two trees, run this file in each
(it needs only the worker's pipeline and `open_core`)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence

import numpy as np

from harness.stack.servers import LocalStack, free_ports
from streams.recall.core import Core, open_core
from streams.records import Click
from streams.settings import Settings
from streams.worker.main import freeze_startup_heap
from streams.worker.pipeline import ClickPipeline, RawMessage

STAGES = ("parse", "redis", "model", "search", "cooccur", "merge", "records", "total")


class Clicks:
    """Click messages: users from a pool, items by a Zipf-like popularity (exponent 0.8)."""

    def __init__(self, items: np.ndarray, users: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.items = items
        weights = 1.0 / np.arange(1, len(items) + 1) ** 0.8
        self.p = weights / weights.sum()
        self.users = np.arange(1, users + 1)
        self.offset = 0

    def batch(self, size: int) -> list[RawMessage]:
        users = self.rng.choice(self.users, size, replace=False)
        items = self.rng.choice(self.items, size, p=self.p)
        out = []
        for user, item in zip(users.tolist(), items.tolist(), strict=True):
            value = Click(user_id=user, item_id=item, ts=time.time()).to_bytes()
            out.append(RawMessage("clicks", 0, self.offset, str(user).encode(), value))
            self.offset += 1
        return out


def one_batch(pipeline: ClickPipeline, messages: list[RawMessage]) -> dict[str, float]:
    """Seconds per stage of one step; "records" is what the step spent after the merge."""
    started = time.perf_counter()
    out = pipeline.process(messages)
    total = time.perf_counter() - started
    stages = {s: out.timings.get(s, 0.0) for s in STAGES[:-2]}
    return {**stages, "records": total - sum(stages.values()), "total": total}


def run(core: Core, batch_sizes: Sequence[int], clicks: int, warm: int, users: int,
        seed: int = 0) -> list[dict[str, float]]:
    """Median ms per stage for each batch size, printed as a table and returned."""
    assert core.history is not None
    ids, _ = core.model.item_table()
    source = Clicks(ids, max(users, max(batch_sizes)), seed)
    pipeline = ClickPipeline(core.history, core.recaller)
    freeze_startup_heap()  # the collector as the worker sets it once started
    print(f"{'batch':>6} " + " ".join(f"{s:>8}" for s in STAGES) + f" {'clicks/s':>9}"
          f" {'cpu':>8}")
    rows = []
    for size in batch_sizes:
        for _ in range(warm):
            pipeline.process(source.batch(size))
        batches = [source.batch(size) for _ in range(max(5, clicks // size))]
        cpu = time.process_time()
        times = [one_batch(pipeline, messages) for messages in batches]
        cpu_ms = (time.process_time() - cpu) / len(batches) * 1000  # every thread's
        med = {s: statistics.median(t[s] for t in times) * 1000 for s in STAGES}
        rows.append({"batch": size, **med, "clicks_per_s": size / med["total"] * 1000,
                     "cpu_ms": cpu_ms})
        print(f"{size:>6} " + " ".join(f"{med[s]:>8.2f}" for s in STAGES)
              + f" {rows[-1]['clicks_per_s']:>9.0f} {cpu_ms:>8.2f}")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench.clickstep", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-dir", default=defaults.model_dir, help="env RECALL_MODEL_DIR")
    parser.add_argument("--channels", default=defaults.channels, help="env RECALL_CHANNELS")
    parser.add_argument("--batch-sizes", default="1,16,64,256",
                        help="micro-batch sizes; 1 is the one-click-at-a-time baseline")
    parser.add_argument("--clicks", type=int, default=1024, help="timed clicks per batch size")
    parser.add_argument("--warm", type=int, default=50,
                        help="untimed batches first, per batch size (histories and counts fill)")
    parser.add_argument("--users", type=int, default=3000, help="users clicking")
    parser.add_argument("--out", help="also write the medians as JSON here")
    args = parser.parse_args(argv)
    kafka, redis, milvus = free_ports(3)
    base = defaults.model_copy(update={"model_dir": args.model_dir, "channels": args.channels})
    stack = LocalStack(base, stack_dir=".stack/bench", kafka_port=kafka, redis_port=redis,
                       milvus_port=milvus, fresh=True)  # no histories or counts of earlier runs
    with stack, open_core(stack.settings) as core:
        print(f"model {core.model.version} on {core.model.device}, "
              f"{core.load_items()} items in Milvus ({core.index.index_type}), "
              f"top_k {core.settings.top_k}, channels {args.channels}")
        rows = run(core, [int(b) for b in args.batch_sizes.split(",")], args.clicks,
                   args.warm, args.users)
        core.index.drop()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"channels": args.channels, "model": core.model.version, "rows": rows},
                      f, indent=1)


if __name__ == "__main__":
    main()
