"""`python -m harness.bench.exclusion`: what excluding each user's seen items costs the MIND
search and merge, with one deep search against a capped first search (RECALL_SEARCH_EXTRA_CAP).

With RECALL_EXCLUDE_SEEN a query must ask for top_k + the user's seen count for top_k to remain,
and one search per batch asks every query for as many as the batch's heaviest user needs. The
capped recaller asks for top_k + the cap first and searches again, deeper, only the queries left
short (`Recaller.deepen`). This tool replays a stream's future after its cut, keeps each user's
last 10 clicks and last 1,000 distinct items as the worker does, forms batches of 64 distinct
users, and recalls each batch through Milvus Lite (FLAT, exact) with each cap: medians of the
search and merge stages, and the share of lists equal to the uncapped ones. The model is MIND
trained on the stream's past (`harness.online.data.train_initial`), cached under --work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.faults.checks import seen_after
from harness.online.data import Timeline, cut, read_clicks, train_initial
from harness.stack.servers import LocalStack, free_ports
from harness.stack.standalone import connect
from model.serving import InterestModel
from streams.recall.recaller import Recaller
from streams.stores.index import ItemIndex

Batch = tuple[list[list[int]], list[list[int]]]  # histories, seen items; one row per user


def batches(path: str, count: int, users: int = 64, seen_max: int = 1000
            ) -> tuple[list[Batch], Timeline]:
    """The first `count` batches of `users` distinct users of the future (each user's last 10
    clicks and seen items, as the fault oracle computes them, at its last click in the
    batch), and the timeline."""
    timeline = cut(read_clicks(path))
    clicked: dict[int, list[int]] = defaultdict(list)
    for c in timeline.past:
        clicked[c.user].append(c.item)
    out: list[Batch] = []
    future = iter(timeline.future)
    for _ in range(count):
        members: set[int] = set()
        for c in future:
            clicked[c.user].append(c.item)
            members.add(c.user)
            if len(members) == users:
                break
        if not members:
            break
        rows = sorted(members)
        out.append(([clicked[u][-10:] for u in rows],
                    [seen_after(clicked[u], seen_max) for u in rows]))
    return out, timeline


def measure(recaller: Recaller, work: Sequence[Batch]) -> tuple[dict[str, float], list[Any]]:
    search, merge, lists = [], [], []
    for histories, seen in work:
        spent: dict[str, float] = {}
        lists.append([c.item_ids for c in recaller.recall(histories, timings=spent, exclude=seen)])
        search.append(1000 * spent["search"])
        merge.append(1000 * spent["merge"])
    return {"search_ms": round(statistics.median(search), 2),
            "merge_ms": round(statistics.median(merge), 2)}, lists


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.exclusion", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="../shared/data/movielens-small/clicks.csv")
    p.add_argument("--batches", type=int, default=40, help="batches of 64 distinct users")
    p.add_argument("--caps", default="50,100,200", help="RECALL_SEARCH_EXTRA_CAP values")
    p.add_argument("--work", default="artifacts/exclusion", help="the trained models' cache")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    work, timeline = batches(args.data, args.batches)
    root = Path(args.work) / Path(args.data).parent.name
    if not (root / "LATEST").is_file():
        train_initial(timeline.past, root, seed=1, max_minutes=5.0, label="exclusion",
                      progress=False)
    model = InterestModel.load(str(root), device="cpu")
    ids, vectors = model.item_table()
    result: dict[str, Any] = {"data": args.data, "batches": len(work), "model": model.version,
                              "longest_seen_median": statistics.median(
                                  max(len(s) for s in seen) for _, seen in work), "runs": {}}
    caps: list[int | None] = [None, *(int(c) for c in args.caps.split(",") if c), None]
    with tempfile.TemporaryDirectory() as stack_dir:
        stack = LocalStack(stack_dir=stack_dir, milvus_port=free_ports(1)[0])
        stack.start_server("milvus")
        try:
            index = ItemIndex(stack.settings.milvus_uri, "exclusion", model.dim, "FLAT")
            connect(index)
            index.destroy()
            index.start()
            index.upsert(ids, vectors)
            reference: list[Any] | None = None
            for n, cap in enumerate(caps):  # the uncapped run first and last: its spread
                recaller = Recaller(model, index, 50, None, "dedup", 0.8, None, cap)
                row, lists = measure(recaller, work)
                reference = reference or lists
                pairs = [(a, b) for x, y in zip(lists, reference, strict=True)
                         for a, b in zip(x, y, strict=True)]
                row["lists_equal_to_uncapped"] = sum(a == b for a, b in pairs) / len(pairs)
                result["runs"][f"{n}: cap {cap}"] = row
                print(f"cap {cap}: {row}", flush=True)
            index.close()
        finally:
            stack.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
