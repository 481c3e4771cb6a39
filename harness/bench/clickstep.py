"""Click-step benchmark on the real stack: stage times per batch size (1 = one at a time)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np

from harness.stack.servers import LocalStack, free_ports
from streams.recall.core import Core, open_core
from streams.settings import Settings
from streams.worker.pipeline import ClickAt


def one_batch(core: Core, clicks: list[ClickAt]) -> dict[str, float]:
    """Seconds spent in each stage for one micro-batch (the worker's step without Kafka)."""
    assert core.history is not None
    t0 = time.perf_counter()
    histories = core.history.append(clicks)
    t1 = time.perf_counter()
    users = list(histories.values())
    vectors, _ = core.model.interests(users)  # [B, K, D]
    t2 = time.perf_counter()
    core.recaller.recall(users)  # model again + one Milvus search + merge
    t3 = time.perf_counter()
    return {"redis": t1 - t0, "model": t2 - t1, "recall": t3 - t2, "total": t3 - t0}


def run(core: Core, batch_sizes: Sequence[int], clicks: int, seed: int = 0) -> None:
    ids, _ = core.model.item_table()
    rng = np.random.default_rng(seed)
    pool = np.arange(1, 4 * max(batch_sizes) + 1)  # users; each gets several clicks over time
    offset = 0
    print(f"{'batch':>6} {'redis ms':>9} {'model ms':>9} {'recall ms':>10} {'total ms':>9} "
          f"{'clicks/s':>9}")
    for size in batch_sizes:
        rounds = max(5, clicks // size)
        times: list[dict[str, float]] = []
        for _ in range(rounds):
            users = rng.choice(pool, size, replace=False)  # histories grow and differ
            batch = [ClickAt(int(u), int(rng.choice(ids)), time.time(), 0, offset + i)
                     for i, u in enumerate(users)]
            offset += size
            times.append(one_batch(core, batch))
        med = {k: statistics.median(t[k] for t in times) * 1000 for k in times[0]}
        print(f"{size:>6} {med['redis']:>9.1f} {med['model']:>9.1f} {med['recall']:>10.1f} "
              f"{med['total']:>9.1f} {size / med['total'] * 1000:>9.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench.clickstep", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-dir", default=defaults.model_dir, help="env RECALL_MODEL_DIR")
    parser.add_argument("--batch-sizes", default="1,16,64,256",
                        help="micro-batch sizes; 1 is the one-click-at-a-time baseline")
    parser.add_argument("--clicks", type=int, default=1024, help="clicks per batch size")
    args = parser.parse_args(argv)
    kafka, redis, milvus = free_ports(3)
    base = defaults.model_copy(update={"model_dir": args.model_dir})
    stack = LocalStack(base, stack_dir=".stack/bench", kafka_port=kafka, redis_port=redis,
                       milvus_port=milvus)
    with stack, open_core(stack.settings) as core:
        print(f"model {core.model.version} on {core.model.device}, "
              f"{core.load_items()} items in Milvus ({core.index.index_type}), "
              f"top_k {core.settings.top_k}")
        run(core, [int(b) for b in args.batch_sizes.split(",")], args.clicks)
        core.index.drop()


if __name__ == "__main__":
    main()
