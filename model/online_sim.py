"""Offline prequential simulation of online learning (`python -m model.online_sim`).

The streaming protocol of `make online-eval` without servers, to choose the online learner's
settings fast: the clicks before a time cut train the initial model (cached per data, cut
and seed); the rest are replayed in order. Each click is first scored against the list served
after the user's previous click (top 50, every item the user clicked before excluded), then
learned from. Exports (the served model) happen every `--export-every` clicks. Search here is
exact (numpy), as with the pipeline's FLAT index; interest pruning is off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import paddle

from model.cli import HelpFormatter
from model.data import read_events
from model.learner import OnlineConfig, Snapshot, load_learner
from model.online_score import Served, Tally, chunks, most_popular
from model.pretrain import initial_export

VARIANTS = ("most_popular", "batch", "realtime", "continuous")


def simulate(users: np.ndarray, items: np.ndarray, cut: int, vdir: Path, ocfg: OnlineConfig,
             export_every: int, variants: tuple[str, ...], progress: bool = True,
             batch: int = 64, train_batch: int = 256) -> dict[str, dict[str, float]]:
    """Replay events [cut:] after the past [:cut]; HitRate@20/@50 per variant."""
    frozen, _ = load_learner(vdir, ocfg)
    learner = load_learner(vdir, ocfg)[0] if "continuous" in variants else None
    known = set(items[:cut].tolist())
    hist: dict[int, list[int]] = defaultdict(list)
    seen: dict[int, set[int]] = defaultdict(set)
    counts: Counter[int] = Counter()
    for u, i in zip(users[:cut].tolist(), items[:cut].tolist(), strict=True):
        hist[u].append(i)
        seen[u].add(i)
        counts[i] += 1
    at_cut = {u: list(h) for u, h in hist.items()}
    train_hist: dict[int, list[int]] = defaultdict(list)  # the trainer sees only the stream
    served = {v: Served() for v in variants}
    past_popular = most_popular(counts, 5000)
    serve_model: dict[str, Snapshot] = {v: frozen.snapshot(past_popular)
                                        for v in ("batch", "realtime") if v in variants}
    if learner is not None:
        serve_model["continuous"] = learner.snapshot(past_popular)

    def serve(group: list[int]) -> None:
        """Each variant's list for these users, as of now (after their latest clicks)."""
        for v in variants:
            if v == "most_popular":
                served[v].popular(group, counts, seen)
            else:
                rows = [at_cut.get(u, []) if v == "batch" else hist[u][-10:] for u in group]
                served[v].recall(serve_model[v], group, rows, seen)

    past_users = sorted(at_cut)
    for lo in range(0, len(past_users), 256):  # what each past user was served at the cut
        serve(past_users[lo:lo + 256])
    tally = {v: Tally() for v in variants}
    since_export, started, samples = 0, time.monotonic(), 0
    pending: list[tuple[np.ndarray, int]] = []
    for lo, hi in chunks(len(users), cut, batch, progress):
        batch_u, batch_i = users[lo:hi].tolist(), items[lo:hi].tolist()
        for v in variants:
            for u, i in zip(batch_u, batch_i, strict=True):
                if hist[u]:
                    tally[v].add(served[v].get(u), i, i not in known)
        for u, i in zip(batch_u, batch_i, strict=True):
            if learner is not None:  # what streams.trainer does with each click
                learner.add_items([(i, train_hist[u])])
                if train_hist[u]:
                    pending.append((learner.rows(train_hist[u]), learner.row[i]))
                train_hist[u] = (train_hist[u] + [i])[-learner.cfg.maxlen:]
                if len(pending) >= train_batch:
                    learner.step(np.stack([r for r, _ in pending]),
                                 np.array([y for _, y in pending]))
                    samples, pending = samples + len(pending), []
            hist[u].append(i)
            seen[u].add(i)
            counts[i] += 1
        since_export += hi - lo
        if learner is not None and since_export >= export_every:
            serve_model["continuous"] = learner.snapshot(most_popular(counts, 5000))
            since_export = 0
        serve(list(dict.fromkeys(batch_u)))
    out = {v: tally[v].result() for v in variants}
    if learner is not None:
        out["continuous"]["samples_per_s"] = samples / max(time.monotonic() - started, 1e-9)
        out["continuous"]["items_after"] = learner.num_items
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.online_sim", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--data", required=True, help="user,item,timestamp CSV")
    p.add_argument("--cut", type=float, default=0.5, help="share of clicks before the cut")
    p.add_argument("--seed", type=int, default=2024, help="initial training seed")
    p.add_argument("--work", default=".online-sim", help="cache of initial models")
    p.add_argument("--export-every", type=int, default=2000, help="clicks between exports")
    p.add_argument("--batch", type=int, default=64,
                   help="clicks per micro-batch (the worker's RECALL_BATCH_SIZE)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " +
                   ", ".join(VARIANTS))
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="OnlineConfig override, e.g. lr=0.003 (repeatable); default: none")
    p.add_argument("--no-progress", action="store_true", help="disable progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paddle.set_device("cpu")
    users, items, _ = read_events(args.data)
    cut = int(len(users) * args.cut)
    vdir = initial_export(users[:cut], items[:cut], args.seed, Path(args.work),
                          f"{Path(args.data).stem}-{cut}", progress=not args.no_progress)
    ocfg = OnlineConfig()
    for item in args.sets:
        key, _, value = item.partition("=")
        kind = type(getattr(ocfg, key))
        ocfg = replace(ocfg, **{key: kind(value)})
    variants = tuple(v for v in args.variants.split(",") if v)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        print(f"unknown variants {sorted(unknown)}", file=sys.stderr)
        return 2
    out = simulate(users, items, cut, vdir, ocfg, args.export_every, variants,
                   progress=not args.no_progress, batch=args.batch)
    print("SIM " + json.dumps({"online": ocfg.__dict__, "export_every": args.export_every,
                               **out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
