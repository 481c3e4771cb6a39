"""`make online-eval`, one seed: initial training, the stack, the frozen variants, the replay
with the watermark, the worker's variants, the leak check."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.online.cut import cut_lists
from harness.online.data import Timeline, train_initial
from harness.online.recall import at_served_ranks, frozen_recaller, frozen_variants
from harness.online.replay import Replay
from harness.online.report import trained_ts, trainer_stats
from harness.online.served import Served, leak_check, worker_ranks
from harness.online.variants import Points, summarize
from harness.online.watermark import Ahead, Watermark, WatermarkWriter, redis_put
from harness.online.world import Collector, OnlineSystem, load_histories, trainer_env, warm_up
from harness.stack.servers import free_ports
from harness.stack.settings import StackSettings
from streams.settings import Settings

WATERMARK_KEY = "online-eval:watermark"


def seed_settings(workdir: Path, watermark: bool) -> tuple[StackSettings, Settings]:
    """Private ports, the seed's dir for the stack and the model root, reload every 2 s, each
    channel's list in every record, the watermark's Redis key (unless off)."""
    kafka, redis, milvus, web = free_ports(4)
    stack = StackSettings(stack_dir=str(workdir), kafka_port=kafka, redis_port=redis,
                          milvus_port=milvus)
    return stack, Settings().model_copy(update={
        "worker_web_port": web, "model_dir": str(workdir / "model"),
        "reload_interval_s": 2.0, "record_channel_lists": True,
        "eval_watermark_key": WATERMARK_KEY if watermark else None})


def preparer(timeline: Timeline, writer: WatermarkWriter, watermark: bool) -> Any:
    """Before the worker starts: the past histories in Redis, W's first value."""
    def prepare(settings: Settings) -> None:
        load_histories(settings, timeline.past)
        if watermark:
            password = settings.redis_password
            writer.put = redis_put(settings.redis_url, WATERMARK_KEY, settings.redis_username,
                                   password.get_secret_value() if password else None)
            writer.update(force=True)
    return prepare


def replay(args: argparse.Namespace, system: OnlineSystem, timeline: Timeline,
           writer: WatermarkWriter, phases: dict[str, float]
           ) -> tuple[dict[int, Served], dict[str, Any]]:
    """Trainer (unless --no-trainer), warm-up click, the future replayed, recommendations
    drained, W to +inf; then the worker and the trainer are stopped. Returns future index ->
    record, and the replay's figures; times go into `phases`."""
    settings = system.settings
    clock = time.monotonic()
    collector = Collector(settings)
    collector.start()
    if not args.no_trainer:
        system.start_trainer()
    warm_up(collector, settings, timeline.past[-1], system.check_alive)
    span = timeline.future[-1].ts - timeline.future[0].ts  # a wider bound is no bound
    ahead = Ahead(len(timeline.future), args.ahead_s,
                  60 * args.replay_minutes if args.replay_minutes > 0 else None, cap_s=span)
    run = Replay(timeline.future, collector, writer, open_loop=args.open_loop,
                 window=args.window, ahead=ahead)
    sent = run.send(settings, args.rate, system.check_alive)
    phases["replay_s"] = time.monotonic() - clock
    missing = run.drain(args.timeout_s, system.check_alive)
    system.check_alive()
    collector.stop()
    system.stop_processes()
    phases["drain_s"] = time.monotonic() - clock - phases["replay_s"]
    recs = run.ledger.records(collector.recs)
    return recs, {"sent": sent.sent, "failed": sent.failed, "invalid": sent.invalid,
                  "rate_sent": round(sent.rate, 1), "duplicates": collector.duplicates,
                  "unanswered": missing, "unmatched_records": len(run.ledger.unmatched),
                  "given_up_waits": run.given_up, "watermark_writes": writer.writes,
                  "round_trip_s": run.ledger.round_trips(), "ahead_s": ahead.summary()}


def run_seed(args: argparse.Namespace, seed: int, timeline: Timeline, points: Points,
             seqs: dict[int, Any], most_popular: np.ndarray) -> dict[str, Any]:
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
    watermark = not args.no_watermark
    writer = WatermarkWriter(Watermark(timeline.future), None)
    stack, settings = seed_settings(workdir, watermark)
    with OnlineSystem(settings, trainer_env(args.export_s, args.export_every),
                      preparer(timeline, writer, watermark), stack) as system:
        settings = system.settings
        phases["start_s"] = time.monotonic() - clock - phases["train_s"]
        with frozen_recaller(settings, initial.version_dir) as recaller:
            ranks, fallbacks = frozen_variants(recaller, points, seqs, settings.history_len,
                                               settings.num_interests)
            cut, cut_fallbacks = cut_lists(settings, recaller, timeline, seqs)
            phases["frozen_s"] = time.monotonic() - clock - sum(phases.values())
            recs, sent = replay(args, system, timeline, writer, phases)
            worker = worker_ranks(timeline, points, seqs, recs, cut, version,
                                  history_len=settings.history_len)
            at_served = at_served_ranks(recaller, points, seqs, worker.state, ranks["realtime"],
                                        settings.history_len, settings.num_interests)
            phases["score_s"] = time.monotonic() - clock - sum(phases.values())
    model_root = workdir / "model"
    leaks = leak_check(points, worker.picked, recs,
                       trained_ts(model_root, version, timeline.past[-1].ts))
    served_at = summarize(at_served, points, args.slices)
    variant = {v: summarize(worker.ranks[v], points, args.slices, worker.available[v])
               for v in worker.ranks}
    continuous = {**variant["continuous"], **worker.stats.as_dict(len(points)),
                  "realtime_at_served": {k: served_at[k] for k in (
                      "hitrate@20", "hitrate@50", "new_item_hitrate@50", "slices")},
                  "cut_without_mind_list": cut_fallbacks, "trainer": not args.no_trainer,
                  "served_versions": len({r.version for r in recs.values()}),
                  **trainer_stats(model_root, version)}
    if args.no_trainer:
        continuous["note"] = "no trainer: the realtime worker (initial model, live histories)"
    run: dict[str, Any] = {
        "seed": seed,
        "most_popular": summarize(most_popular, points, args.slices),
        "batch": {**summarize(ranks["batch"], points, args.slices),
                  "popular_fallbacks": fallbacks["batch"]},
        "realtime": {**summarize(ranks["realtime"], points, args.slices),
                     "popular_fallbacks": fallbacks["realtime"]},
        "continuous": continuous, "itemcf": variant["itemcf"], "served": variant["served"],
        "leaks": leaks,
        "initial_model": initial.summary(),
        "replay": sent,
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "logs": str(workdir),
    }
    print(f"seed {seed}: " + ", ".join(
        f"{v} HR@50 {run[v]['hitrate@50'] or 0:.4f}" for v in
        ("most_popular", "batch", "realtime", "continuous", "itemcf", "served"))
        + f"; leaks: counts {leaks['counts_ts']['violations']}, model "
        f"{leaks['model']['violations']}", flush=True)
    return run
