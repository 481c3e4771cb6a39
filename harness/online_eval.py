"""`make online-eval DATA=...`: prequential ("test then train") quality on a replayed stream
through the real local stack.

Per seed: MIND trained on the clicks before the time cut, the stack started with those
histories in Redis and item vectors in Milvus, the worker and the continuous trainer
(`python -m streams.trainer`) started, the future replayed at up to --rate with the data's
timestamps, each user waiting for the recommendation of their previous click before sending
the next (a closed loop per user, as real users), every recommendation collected. Each
future click of a user who clicked before is scored on the list served after that user's
previous click, for four variants: live MostPopular, `batch` (initial model, histories
frozen at the cut), `realtime` (initial model, live histories) and `continuous` (what the
worker actually served, with the trainer's versions). Writes ONLINE_OUT (JSON), a .png and a
.md beside it; last line `ONLINE {json}`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.online_data import Timeline, cut, read_clicks, train_initial, user_sequences
from harness.online_recall import at_served_ranks, frozen_recaller, frozen_variants
from harness.online_report import combine, summary_line, trainer_stats, write
from harness.online_stack import (
    Collector,
    OnlineSystem,
    check_trainer,
    load_histories,
    send_clicks,
    wait_for_recommendations,
    warm_up,
)
from harness.online_variants import (
    Points,
    continuous_ranks,
    evaluated_points,
    most_popular_ranks,
    summarize,
)
from harness.stack import StackError, free_ports
from streams.settings import Settings


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(name, default)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.online_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = _env("ONLINE_DATA", None)
    p.add_argument("--data", default=data, required=data is None,
                   help="user,item,timestamp CSV, optional header (env ONLINE_DATA)")
    p.add_argument("--cut", type=float, default=float(_env("ONLINE_CUT", "0.5") or 0.5),
                   help="fraction of the clicks before the time cut (env ONLINE_CUT, "
                   "default %(default)s)")
    p.add_argument("--rate", type=float, default=float(_env("ONLINE_RATE", "200") or 200),
                   help="most clicks/s sent to Kafka; each user's next click waits for the "
                   "recommendation of their previous one (env ONLINE_RATE, default "
                   "%(default)s)")
    p.add_argument("--seeds", default=_env("ONLINE_SEEDS", "1"),
                   help="comma list of training seeds, one full run each (env ONLINE_SEEDS, "
                   "default %(default)s)")
    p.add_argument("--out", default=_env("ONLINE_OUT", "online-results.json"),
                   help="JSON result; .png and .md beside it (env ONLINE_OUT, default "
                   "%(default)s)")
    p.add_argument("--slices", type=int, default=int(_env("ONLINE_SLICES", "10") or 10),
                   help="equal-count slices of the evaluated clicks for HR@50 over data time "
                   "(env ONLINE_SLICES, default %(default)s)")
    p.add_argument("--export-s", type=float, default=float(_env("ONLINE_EXPORT_S", "10") or 10),
                   help="the trainer's export period, passed as RECALL_ONLINE_EXPORT_S (env "
                   "ONLINE_EXPORT_S, default %(default)s)")
    p.add_argument("--open-loop", action="store_true",
                   default=_env("ONLINE_OPEN_LOOP", "") not in ("", "0"),
                   help="send at --rate without waiting for recommendations (a load test of "
                   "the worker and the trainer; a user's clicks may then share a worker "
                   "batch) (env ONLINE_OPEN_LOOP=1)")
    p.add_argument("--no-trainer", action="store_true",
                   default=_env("ONLINE_NO_TRAINER", "") not in ("", "0"),
                   help="no continuous trainer: `continuous` is then the realtime worker, "
                   "flagged (env ONLINE_NO_TRAINER=1)")
    p.add_argument("--limit", type=int, default=int(_env("ONLINE_LIMIT", "0") or 0) or None,
                   help="only the first N clicks in time order, for a quick check (env "
                   "ONLINE_LIMIT; default all)")
    p.add_argument("--train-minutes", type=float,
                   default=float(_env("ONLINE_TRAIN_MINUTES", "3") or 3),
                   help="time cap of the initial training (env ONLINE_TRAIN_MINUTES, default "
                   "%(default)s)")
    p.add_argument("--timeout", type=float, default=float(_env("ONLINE_TIMEOUT_S", "120") or 120),
                   help="after the replay, give up on missing recommendations after this many "
                   "seconds without a new one (env ONLINE_TIMEOUT_S, default %(default)s)")
    p.add_argument("--workdir", default=_env("ONLINE_WORKDIR", ".stack/online-eval"),
                   help="stack, logs and models, one dir per seed, emptied first (env "
                   "ONLINE_WORKDIR, default %(default)s)")
    args = p.parse_args(argv)
    args.seed_list = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    if not args.seed_list:
        p.error("--seeds needs at least one seed")
    return args


def seed_settings(workdir: Path) -> Settings:
    """Private ports, the seed's dir for the stack and the model root, reload every 2 s."""
    kafka, redis, milvus, web = free_ports(4)
    return Settings().model_copy(update={
        "kafka_port": kafka, "redis_port": redis, "milvus_port": milvus, "worker_web_port": web,
        "stack_dir": str(workdir), "model_dir": str(workdir / "model"),
        "reload_interval_s": 2.0})


def replay(args: argparse.Namespace, system: OnlineSystem, timeline: Timeline,
           phases: dict[str, float]) -> tuple[Collector, dict[str, Any]]:
    """Trainer (unless --no-trainer), warm-up click, the future replayed, recommendations
    drained; then the worker and the trainer are stopped. Times go into `phases`."""
    settings = system.settings
    clock = time.monotonic()
    collector = Collector(settings)
    collector.start()
    if not args.no_trainer:
        system.start_trainer()
    warm_up(collector, settings, timeline.future[0].item, timeline.cut_ts, system.check_alive)
    sent = send_clicks(timeline.future, settings, args.rate, system.check_alive,
                       answered=None if args.open_loop else lambda key: key in collector.recs)
    phases["replay_s"] = time.monotonic() - clock
    wait_for_recommendations(collector, len(timeline.future), args.timeout, system.check_alive)
    system.check_alive()
    collector.stop()
    system.stop_processes()
    phases["drain_s"] = time.monotonic() - clock - phases["replay_s"]
    return collector, {"sent": sent.sent, "failed": sent.failed, "invalid": sent.invalid,
                       "rate_sent": round(sent.rate, 1), "duplicates": collector.duplicates}


def run_seed(args: argparse.Namespace, seed: int, timeline: Timeline, points: Points,
             seqs: dict[int, Any], most_popular: Any) -> dict[str, Any]:
    """One full run: train, start, frozen variants, trainer, replay, collect, score."""
    workdir = Path(args.workdir).absolute() / f"seed-{seed}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    phases: dict[str, float] = {}
    clock = time.monotonic()
    initial = train_initial(timeline.past, workdir / "model", seed=seed,
                            max_minutes=args.train_minutes,
                            label=f"{args.data} before {timeline.cut_ts:.0f}")
    version = initial.version_dir.name
    phases["train_s"] = time.monotonic() - clock
    print(f"seed {seed}: initial model {initial.summary()}", flush=True)
    with OnlineSystem(seed_settings(workdir), args.export_s) as system:
        settings = system.settings
        load_histories(settings, timeline.past)
        phases["start_s"] = time.monotonic() - clock - phases["train_s"]
        with frozen_recaller(settings, initial.version_dir) as recaller:
            ranks, fallbacks, at_cut = frozen_variants(
                recaller, timeline, points, seqs, settings.history_len, settings.num_interests)
            phases["frozen_s"] = time.monotonic() - clock - sum(phases.values())
            collector, sent = replay(args, system, timeline, phases)
            cont, state, stats = continuous_ranks(timeline, points, seqs, collector.recs,
                                                  at_cut, version,
                                                  history_len=settings.history_len)
            at_served = at_served_ranks(recaller, points, seqs, state, ranks["realtime"],
                                        settings.history_len, settings.num_interests)
            phases["score_s"] = time.monotonic() - clock - sum(phases.values())
    served = summarize(at_served, points, args.slices)
    continuous = {**summarize(cont, points, args.slices), **stats.as_dict(len(points)),
                  "realtime_at_served": {k: served[k] for k in ("hitrate@20", "hitrate@50",
                                                                "new_item_hitrate@50", "slices")},
                  "trainer": not args.no_trainer,
                  "served_versions": len({r.version for r in collector.recs.values()}),
                  **trainer_stats(workdir / "model", version)}
    if args.no_trainer:
        continuous["note"] = "no trainer: the realtime worker (initial model, live histories)"
    run: dict[str, Any] = {
        "seed": seed,
        "most_popular": summarize(most_popular, points, args.slices),
        "batch": {**summarize(ranks["batch"], points, args.slices),
                  "popular_fallbacks": fallbacks["batch"]},
        "realtime": {**summarize(ranks["realtime"], points, args.slices),
                     "popular_fallbacks": fallbacks["realtime"]},
        "continuous": continuous,
        "initial_model": initial.summary(),
        "replay": sent,
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "logs": str(workdir),
    }
    print(f"seed {seed}: " + ", ".join(f"{v} HR@50 {run[v]['hitrate@50']:.4f}" for v in
                                       ("most_popular", "batch", "realtime", "continuous")),
          flush=True)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs every connect
    if not args.no_trainer:
        try:
            check_trainer()
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    started = time.monotonic()
    clicks = read_clicks(args.data, args.limit)
    timeline = cut(clicks, args.cut)
    points = evaluated_points(timeline)
    seqs = user_sequences(timeline)
    known = timeline.known
    print(f"data {args.data}: {len(clicks)} clicks; cut at {timeline.cut_ts:.0f}: "
          f"{len(timeline.past)} past, {len(timeline.future)} future, {len(points)} evaluated "
          f"({int(points.new.sum())} on new items)", flush=True)
    most_popular = most_popular_ranks(timeline, points, seqs)
    try:
        runs = [run_seed(args, seed, timeline, points, seqs, most_popular)
                for seed in args.seed_list]
    except StackError as exc:  # a server, the worker or the trainer died or never got ready
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result: dict[str, Any] = {
        "data": str(args.data), "cut": args.cut, "cut_ts": timeline.cut_ts,
        "limit": args.limit, "past_clicks": len(timeline.past),
        "future_clicks": len(timeline.future), "evaluated_clicks": len(points),
        "new_item_share": sum(c.item not in known for c in timeline.future)
        / len(timeline.future),
        "rate": args.rate, "open_loop": args.open_loop, "export_s": args.export_s,
        "trainer": None if args.no_trainer else "streams.trainer", "seeds": args.seed_list,
        **combine(runs), "runs": runs,
    }
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    for path in write(result, Path(args.out)):
        print(f"wrote {path}")
    print(summary_line(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
