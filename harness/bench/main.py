"""`make bench`: pass-through, search ceiling, naive and pipeline on one stack; JSON, plot, table.

For each catalog (1k demo items, 12k Beauty items, 100k on the stack's Milvus Lite with FLAT;
100k-hnsw and 1m on a Milvus standalone of their own with HNSW), on the same broker, Redis and
machine: Milvus alone answering batched searches of the pipeline's shape (users/s), then
open-loop rate sweeps of the naive worker (one click per batch: one Redis call, one model call,
one search per click) and of the pipeline as shipped; the pass-through worker (same topics and
framework, clicks copied to the output) once. The maximum sustained rate is the highest offered
rate with p99 <= 250 ms and every click answered. At half the pipeline's rate, a step with item
freshness probes. Headline figures: the 12k catalog.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.bench.cpu import CpuMeter, rss_mb
from harness.bench.load import run_step
from harness.bench.options import HEADLINE, parse_args
from harness.bench.probes import Freshness, sample_histories, search_ceiling
from harness.bench.report import markdown_table, plot
from harness.bench.scale import (
    memory_mb,
    milvus_recall,
    recall_kept,
    redis_memory,
    scale_targets,
)
from harness.bench.sweep import Step, check_shape, mode_summary, stage_means, sweep, targets
from harness.bench.world import Catalog, WorkerRun, fill_catalog, prepare_model, preseed_histories
from harness.stack.servers import LocalStack, free_ports
from harness.stack.standalone import milvus_standalone
from streams.recall.core import search_params
from streams.recall.recaller import Recaller
from streams.settings import Settings
from streams.stores.index import ItemIndex

WARM_RATE, WARM_S = 200.0, 6.0  # after a fresh-retries restart: ~1,200 clicks, not measured


def catalogs(model_root: str, data: str) -> dict[str, Catalog]:
    beauty = f"{model_root}-{Path(data).stem}"
    return {"1k": Catalog("1k", model_root, 1000),
            "12k": Catalog("12k", beauty, 12_101, data),
            "100k": Catalog("100k", beauty, 100_000, data),
            "100k-hnsw": Catalog("100k-hnsw", beauty, 100_000, data, "standalone", "HNSW"),
            "1m": Catalog("1m", beauty, 1_000_000, data, "standalone", "HNSW")}


class Bench:
    """One run: the stack, the options, and the sweeps it has done."""

    def __init__(self, args: argparse.Namespace, stack: LocalStack) -> None:
        self.args = args
        self.base = self.settings = stack.settings  # settings: the current catalog's
        self.milvus_pid = stack.pids()["milvus"]
        self.stack = stack
        self.log_dir = Path(stack.dir) / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.index: ItemIndex | None = None  # the catalog's collection, open while it runs

    def servers(self) -> dict[str, list[int]]:
        """The server processes of the current catalog (its own Milvus when it has one)."""
        return {**{name: [pid] for name, pid in self.stack.pids().items()},
                "milvus": [self.milvus_pid]}

    def step(self, run: WorkerRun, rate: float, seconds: float | None = None) -> Step:
        before = run.stages()
        servers = self.servers()
        meter = CpuMeter({**servers, "worker": [p.pid for p in run.procs]})
        cpu_before = meter.sample()
        step = run_step(run.load, run.collector, rate, seconds or self.args.step_s,
                        self.args.drain_s)
        step.cpu_cores = meter.cores(cpu_before, meter.sample())
        step.stages_ms = stage_means(before, run.stages())
        run.check_alive()
        cpu = " ".join(f"{k} {v:.2f}" for k, v in step.cpu_cores.items())
        print(f"  {run.mode:<11} {rate:>7.0f}/s offered, {step.sent_cps:>7.0f}/s sent: "
              f"p50 {step.p50_ms:>7.1f} p99 {step.p99_ms:>7.1f} ms, lost {step.lost}"
              f"{'' if step.sustained() else '  (not sustained)'}; cores: {cpu}", flush=True)
        return step

    def mode(self, mode: str, catalog: Catalog, items: Any, start: float, workers: int = 1,
             overrides: dict[str, object] | None = None) -> tuple[dict[str, Any], WorkerRun]:
        print(f"{mode} ({catalog.label}, {workers} worker{'s' * (workers > 1)}"
              f"{', ' + str(overrides) if overrides else ''}):", flush=True)
        half = mode == "pipeline" and workers == 1 and not overrides

        def fresh() -> WorkerRun:
            return WorkerRun(self.settings, mode, catalog, self.args.users, items, self.log_dir,
                             workers, overrides, linger_ms=self.args.click_linger_ms)

        with ExitStack() as stack:
            runs = [stack.enter_context(fresh())]

            def restart() -> None:  # --fresh-retries: the next step on a new worker and topics
                stack.close()
                runs.append(stack.enter_context(fresh()))
                if mode == "pipeline":  # fill its co-occurrence cache, as earlier steps had
                    run_step(runs[-1].load, runs[-1].collector, WARM_RATE, WARM_S,
                             self.args.drain_s)

            steps = sweep(lambda rate: self.step(runs[-1], rate), start, self.args.factor,
                          self.args.max_rate,
                          restart=restart if self.args.fresh_retries else None)
            run = runs[-1]
            summary = mode_summary(steps)
            summary["restarts"] = len(runs) - 1
            summary["rss_mb"] = {"worker": [round(rss_mb(p.pid), 1) for p in run.procs],
                                 **memory_mb(self.servers())}
            best = summary["max_sustained_cps"]
            if half and best > 0:  # the same half-rate step at the end of the sweep, for the record
                summary["half_rate_after_sweep"] = self.step(run, best / 2, self.half_s).as_dict()
        if half and best > 0:
            print(f"{mode} ({catalog.label}): half rate on fresh topics", flush=True)
            with fresh() as run:
                summary.update(self.half_rate(run, best))
        return summary, run

    @property
    def half_s(self) -> float:
        return max(self.args.step_s, 8.0)

    def half_rate(self, run: WorkerRun, best: float) -> dict[str, Any]:
        """At half the maximum sustained rate, on fresh topics: p99 alone, then with probes.

        Fresh topics: the local broker's (tansu, memory storage) CPU per message grows with
        the length of the topic's log (README "Serving speed"), and by the end of a sweep the
        run's topics hold tens of thousands of clicks and answers. The probes' polling searches
        (every 10 ms until found) and their items' upserts and deletes load Milvus beside the
        pipeline, so the target's p99 is the plain step's; the probed step is kept beside it.
        """
        assert self.index is not None
        step = self.step(run, best / 2, self.half_s)
        probes = Freshness(run.settings, self.index)
        probes.start()
        try:
            probed = self.step(run, best / 2, self.half_s)
        finally:
            fresh = probes.stop()
        print(f"  freshness: {fresh}", flush=True)
        return {"half_rate": step.as_dict(), "half_rate_p99_ms": round(step.p99_ms, 1),
                "half_rate_probed": probed.as_dict(), "freshness": fresh}

    def catalog(self, catalog: Catalog) -> dict[str, Any]:
        """One catalog's figures; a standalone catalog on a Milvus standalone of its own,
        searched with Session consistency (the worker sees its own item writes without waiting
        for a time tick on every search, as Strong would)."""
        with ExitStack() as stack:
            if catalog.server == "standalone":
                server = stack.enter_context(milvus_standalone(free_ports(1)[0]))
                self.settings = self.base.model_copy(update={
                    "milvus_uri": server.uri, "milvus_index": catalog.index,
                    "milvus_consistency": "Session"})
                self.milvus_pid = server.pid
            try:
                return self._catalog(catalog)
            finally:
                self.settings, self.milvus_pid = self.base, self.stack.pids()["milvus"]

    def _catalog(self, catalog: Catalog) -> dict[str, Any]:
        model = prepare_model(catalog, self.log_dir)
        items, _ = model.item_table()
        index, ids, vectors, ready = fill_catalog(
            self.settings, catalog, model, Path(self.args.cache_dir),
            self.milvus_pid if catalog.server == "standalone" else None)
        self.index = index
        try:
            preseed_histories(self.settings, self.args.users, items)
            redis_after_preseed = redis_memory(self.settings, self.args.users)
            recaller = Recaller(model, index, self.settings.top_k,
                                self.settings.per_interest_extra, self.settings.interest_pruning,
                                self.settings.interest_dedup_cosine,
                                search_params(self.settings, index))
            histories = sample_histories(items, 64 * 16, self.settings.history_len)
            ceiling = search_ceiling(index, model, recaller, histories, self.settings.batch_size,
                                     self.args.ceiling_s, meter=CpuMeter(self.servers()))
            print(f"search ceiling ({catalog.label}): {ceiling}", flush=True)
            out: dict[str, Any] = {"catalog_items": index.count(), "model": model.version,
                                   "index": index.index_type, "redis": redis_after_preseed,
                                   "ready": ready,
                                   "search_ceiling": ceiling,
                                   "search_ceiling_ups": max(ceiling["threads_1"],
                                                             ceiling.get("threads_2", 0.0))}
            if catalog.data and catalog.label == HEADLINE and Path(catalog.data).is_file():
                out["recall"] = milvus_recall(model, index, catalog.model_dir, catalog.data,
                                              self.settings)
                print(f"recall through Milvus: {out['recall']}", flush=True)
            if catalog.data and len(ids) > len(items):  # filled: exact search is the reference
                kept = recall_kept(model, index, ids, vectors, catalog.model_dir, catalog.data,
                                   self.settings, recaller.search_params)
                out["recall_kept"] = kept["recall_kept"]
                print(f"recall kept ({catalog.label}, {catalog.index}): {kept}", flush=True)
            if "naive" in self.args.modes:
                out["naive"], _ = self.mode("naive", catalog, items, self.args.naive_start)
            if "pipeline" in self.args.modes:
                pipe, _ = self.mode("pipeline", catalog, items, self.args.pipeline_start)
                out["pipeline"] = pipe
                out["half_rate_p99_ms"] = pipe.pop("half_rate_p99_ms", None)
                out["freshness"] = pipe.pop("freshness", None)
                out["redis_after_pipeline"] = redis_memory(self.settings, self.args.users)
            for variant in self.args.variant if catalog.label == HEADLINE else []:
                out.setdefault("variants", {})[variant], _ = self.mode(
                    "pipeline", catalog, items, self.args.pipeline_start,
                    overrides=self.args.overrides[variant])
            if self.args.two_workers and catalog.label == HEADLINE:
                out["two_workers"], _ = self.mode("pipeline", catalog, items,
                                                  self.args.pipeline_start, workers=2)
        finally:
            index.close()
            self.index = None
        return out


def headline(result: dict[str, Any]) -> None:
    """Copy the headline catalog's figures to the top level, where the issue asks for them."""
    cat = result["catalogs"][HEADLINE]
    pipe = cat["pipeline"]
    result.update({
        "catalog_items": cat["catalog_items"], "search_ceiling_ups": cat["search_ceiling_ups"],
        "freshness_p50_ms": (cat["freshness"] or {}).get("p50_ms"),
        "freshness_p99_ms": (cat["freshness"] or {}).get("p99_ms"),
        "stages_ms": pipe.get("stages_ms", {}), "naive": cat["naive"], "pipeline": pipe,
        "pipeline_half_rate_p99_ms": cat["half_rate_p99_ms"],
        "two_workers": cat.get("two_workers"),
        "recall_kept": (cat.get("recall") or {}).get("recall_kept"),
    })
    result["targets"] = {**targets(result), **scale_targets(result)}


def missing_modes(result: dict[str, Any]) -> bool:
    cat = result["catalogs"][HEADLINE]
    return "passthrough" not in result or "naive" not in cat or "pipeline" not in cat


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    if HEADLINE not in args.catalogs:
        sys.exit(f"--catalogs must include {HEADLINE} (the headline figures)")
    started = time.monotonic()
    kafka, redis, milvus = free_ports(3)
    base = Settings().model_copy(update={"metrics_interval_s": 2.0})
    stack = LocalStack(base, stack_dir=".stack/bench", kafka_port=kafka, redis_port=redis,
                       milvus_port=milvus, fresh=True)
    result: dict[str, Any] = {"quick": args.quick, "users": args.users, "machine": machine(),
                              "click_linger_ms": args.click_linger_ms,
                              "settings": {k: getattr(base, k) for k in (
                                  "batch_size", "batch_window_s", "milvus_index", "milvus_nprobe",
                                  "top_k", "interest_pruning", "per_interest_extra")},
                              "p99_limit_ms": 250.0, "catalogs": {}}
    with stack:
        bench = Bench(args, stack)
        cats = catalogs(args.model_root, args.data)
        if "passthrough" in args.modes:
            result["passthrough"], _ = bench.mode("passthrough", cats[HEADLINE], [1],
                                                  args.passthrough_start)
        for label in args.catalogs:
            result["catalogs"][label] = bench.catalog(cats[label])
    if missing_modes(result):  # the JSON alone: the tables and the plot need every mode
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))
        print(f"BENCH partial run (modes {args.modes}): {json.dumps(result, default=str)}")
        return 1
    headline(result)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    missing = check_shape(result)
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1, default=str))
    table = markdown_table(result)
    out.with_suffix(".md").write_text(table)
    plot(result, out.with_suffix(".png"))
    print(table)
    print(f"BENCH wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')} "
          f"in {result['elapsed_s']:.0f}s; targets {json.dumps(result['targets'])}", flush=True)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
