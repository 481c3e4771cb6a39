"""Offline prequential simulation of online learning (`python -m model.online.sim`).

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
from typing import TypeVar

import numpy as np
import paddle

from model.cli import HelpFormatter
from model.cooccur import CooccurConfig, CooccurCounts, filled
from model.data import read_events
from model.online.canary import Gate
from model.online.dump import ListDump
from model.online.learner import OnlineConfig, Snapshot, load_learner
from model.online.pretrain import initial_export
from model.online.score import ServedLists, Tally, chunks, most_popular
from model.transitions import recall_next

VARIANTS = ("most_popular", "batch", "realtime", "continuous", "itemcf")


def simulate(users: np.ndarray, items: np.ndarray, cut: int, vdir: Path, ocfg: OnlineConfig,
             export_every: int, variants: tuple[str, ...], progress: bool = True,
             batch: int = 64, train_batch: int = 256, ts: np.ndarray | None = None,
             cocfg: CooccurConfig | None = None, dump: ListDump | None = None,
             gate: int | None = None) -> dict[str, dict[str, float]]:
    """Replay events [cut:] after the past [:cut]; HitRate@20/@50 per variant. `itemcf`: the
    co-occurrence channel (model.cooccur, `cocfg`) filled with live popularity. `dump`
    records every variant's list at each scored click (model.online.dump). `gate` (a minimum
    of samples): also the variant `gated`, the continuous learner served through the canary
    gate (model.online.canary) at each export. Each variant also gets its HR@50 in 10 equal-count
    slices of the scored clicks and in the first and second half of them."""
    if gate is not None and "continuous" in variants:
        variants = (*variants, "gated")
    canary, gate_log = Gate(), Counter[str]()
    ts = np.zeros(len(users)) if ts is None else ts
    cooccur = CooccurCounts(cocfg or CooccurConfig()) if "itemcf" in variants else None
    frozen, _ = load_learner(vdir, ocfg)
    learner = load_learner(vdir, ocfg)[0] if "continuous" in variants else None
    known = set(items[:cut].tolist())
    hist: dict[int, list[int]] = defaultdict(list)
    seen: dict[int, set[int]] = defaultdict(set)
    counts: Counter[int] = Counter()
    for u, i, t in zip(users[:cut].tolist(), items[:cut].tolist(), ts[:cut].tolist(),
                       strict=True):
        if cooccur is not None:
            cooccur.click(hist[u], i, t)
        hist[u].append(i)
        seen[u].add(i)
        counts[i] += 1
    at_cut = {u: list(h) for u, h in hist.items()}
    train_hist: dict[int, list[int]] = defaultdict(list)  # the trainer sees only the stream
    served = {v: ServedLists(dump.k if dump else 50) for v in variants}
    raw_cooccur, popular = ServedLists(dump.k if dump else 50), ServedLists(dump.k if dump else 50)
    raw_next = ServedLists(dump.k if dump else 50)  # the `next` channel, for the dump
    past_popular = most_popular(counts, 5000)
    serve_model: dict[str, Snapshot] = {v: frozen.snapshot(past_popular)
                                        for v in ("batch", "realtime") if v in variants}
    if learner is not None:
        serve_model["continuous"] = learner.snapshot(past_popular)
        if "gated" in variants:
            serve_model["gated"] = serve_model["continuous"]

    def serve(group: list[int]) -> None:
        """Each variant's list for these users, as of now (after their latest clicks)."""
        for v in variants:
            if v == "most_popular":
                served[v].popular(group, counts, seen)
            elif v == "itemcf" and cooccur is not None:
                found = cooccur.recall([hist[u][-10:] for u in group],
                                       [seen[u] for u in group], raw_cooccur.k)
                popular.popular(group, counts, seen)
                for u, (ids, _) in zip(group, found, strict=True):
                    raw_cooccur.lists[u] = ids
                    served[v].lists[u] = filled(ids, popular.get(u), served[v].k).tolist()
                if dump is not None and cooccur.cfg.next_window:
                    nexts = recall_next(cooccur, [hist[u][-10:] for u in group],
                                        [seen[u] for u in group], raw_next.k)
                    for u, (ids, _) in zip(group, nexts, strict=True):
                        raw_next.lists[u] = ids
            else:
                rows = [at_cut.get(u, []) if v == "batch" else hist[u][-10:] for u in group]
                served[v].recall(serve_model[v], group, rows, seen)

    past_users = sorted(at_cut)
    for lo in range(0, len(past_users), 256):  # what each past user was served at the cut
        serve(past_users[lo:lo + 256])
    tally = {v: Tally() for v in variants}
    hits50: dict[str, list[bool]] = {v: [] for v in variants}
    since_export, started, samples = 0, time.monotonic(), 0
    pending: list[tuple[np.ndarray, int]] = []
    for lo, hi in chunks(len(users), cut, batch, progress):
        batch_u, batch_i = users[lo:hi].tolist(), items[lo:hi].tolist()
        for v in variants:
            for u, i in zip(batch_u, batch_i, strict=True):
                if hist[u]:
                    tally[v].add(served[v].get(u), i, i not in known)
                    hits50[v].append(i in served[v].get(u)[:50])
        if dump is not None:
            for u, i, t in zip(batch_u, batch_i, ts[lo:hi].tolist(), strict=True):
                if hist[u]:
                    dump.add(u, i, t, i not in known,
                             {**{v: served[v].get(u) for v in variants},
                              "cooccur": raw_cooccur.get(u), "next": raw_next.get(u)})
        for u, i, t in zip(batch_u, batch_i, ts[lo:hi].tolist(), strict=True):
            if cooccur is not None:
                cooccur.click(hist[u][-cooccur.cfg.window:], i, t)
            if learner is not None:  # what streams.training.main does with each click
                learner.add_items([(i, train_hist[u])])
                if train_hist[u]:
                    pending.append((learner.rows(train_hist[u]), learner.row[i]))
                train_hist[u] = (train_hist[u] + [i])[-learner.cfg.maxlen:]
                if len(pending) >= train_batch:
                    if "gated" in variants:  # scored before the learner trains on them
                        canary.score(learner, serve_model["gated"],
                                     np.stack([r for r, _ in pending]),
                                     np.array([y for _, y in pending]))
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
            if "gated" in variants:
                decision = canary.decide(gate or 0)
                gate_log[decision] += 1
                if decision == "export":
                    serve_model["gated"] = serve_model["continuous"]
                if decision != "wait":
                    canary = Gate()
        serve(list(dict.fromkeys(batch_u)))
    out = {v: tally[v].result() for v in variants}
    if learner is not None:
        out["continuous"]["samples_per_s"] = samples / max(time.monotonic() - started, 1e-9)
        out["continuous"]["items_after"] = learner.num_items
    for v in variants:
        out[v].update(hr50_slices(hits50[v]))
    if "gated" in out:
        out["gated"].update({f"gate_{k}": float(n) for k, n in gate_log.items()})
    return out


def hr50_slices(hits: list[bool], n: int = 10) -> dict[str, float]:
    """HR@50 of `hits` (in data order) in `n` equal-count slices and in each half."""
    arr = np.asarray(hits, dtype=np.float64)
    half = len(arr) // 2
    out = {f"slice{k}": float(part.mean()) if len(part) else 0.0
           for k, part in enumerate(np.array_split(arr, n))}
    out["first_half"] = float(arr[:half].mean()) if half else 0.0
    out["second_half"] = float(arr[half:].mean()) if len(arr) > half else 0.0
    return out


T = TypeVar("T")


def overrides(cfg: T, sets: list[str]) -> T:
    """`cfg` with KEY=VALUE overrides (the value cast to the field's type; "none": None)."""
    for item in sets:
        key, _, value = item.partition("=")
        current = getattr(cfg, key)
        cast = float if current is None else type(current)
        if cast is bool:  # bool("false") is True
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{key} takes true or false, got {value!r}")
            cfg = replace(cfg, **{key: value.lower() == "true"})  # type: ignore[type-var]
            continue
        cfg = replace(cfg, **{key: None if value.lower() == "none" else cast(value)})  # type: ignore[type-var]
    return cfg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.online.sim", description=__doc__,
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
    p.add_argument("--cooccur", dest="cosets", action="append", default=[], metavar="KEY=VALUE",
                   help="CooccurConfig override, e.g. cap=50 (repeatable); default: none")
    p.add_argument("--dump", default=None,
                   help="write every variant's list at each scored click to this .npz")
    p.add_argument("--gate", type=int, default=None, const=100, nargs="?", metavar="MIN",
                   help="also serve the continuous learner through the canary gate (variant "
                   "`gated`), deciding with at least MIN scored samples (default 100)")
    p.add_argument("--no-progress", action="store_true", help="disable progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paddle.set_device("cpu")
    users, items, ts = read_events(args.data)
    cut = int(len(users) * args.cut)
    vdir = initial_export(users[:cut], items[:cut], args.seed, Path(args.work),
                          f"{Path(args.data).stem}-{cut}", progress=not args.no_progress)
    ocfg = overrides(OnlineConfig(), args.sets)
    cocfg = overrides(CooccurConfig(), args.cosets)
    variants = tuple(v for v in args.variants.split(",") if v)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        print(f"unknown variants {sorted(unknown)}", file=sys.stderr)
        return 2
    dump = ListDump() if args.dump else None
    out = simulate(users, items, cut, vdir, ocfg, args.export_every, variants,
                   progress=not args.no_progress, batch=args.batch, ts=ts, cocfg=cocfg,
                   dump=dump, gate=args.gate)
    if dump is not None:
        dump.save(Path(args.dump))
    print("SIM " + json.dumps({"online": ocfg.__dict__, "cooccur": cocfg.__dict__,
                               "export_every": args.export_every, **out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
