"""Entry point of the stream worker: `python -m streams.worker`, settings from RECALL_* vars."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from streams import logs
from streams.observe.metrics import WorkerMetrics
from streams.recall.core import open_core
from streams.records import Limits
from streams.security import kafka_python_kwargs
from streams.settings import Settings
from streams.worker import item_feed, observe
from streams.worker.agents import recommend, reload_model, upsert_items
from streams.worker.app import create_app, topics
from streams.worker.epochs import CommitGuard, LogEpochs, TopicIds
from streams.worker.faust_compat import Worker, guard_commits
from streams.worker.pipeline import ClickPipeline, ItemPipeline

log = logging.getLogger("streams.worker")

EXIT_STOP_TIMEOUT = 3  # exit status when the stop deadline forced the exit
EXIT_WEB_PORT = 2  # exit status when the metrics port cannot be served (a setting)
BATCH_THREAD = "recall-batch"


class StopDeadline:
    """Arms once, on the first stop signal: exits the process with os._exit when it expires.

    A clean stop (agents cancelled, LeaveGroup sent, producer flushed) normally takes 1-2 s, but
    a batch step blocked inside a Redis or Milvus call runs in an executor thread that nothing
    can interrupt, and the interpreter joins that thread before exiting. os._exit skips that
    join; no offset is committed on this path, so unpublished clicks are redelivered.
    """

    def __init__(self, timeout_s: float, exit_code: int = EXIT_STOP_TIMEOUT):
        self.timeout_s = timeout_s
        self.exit_code = exit_code
        self._timer: threading.Timer | None = None

    def arm(self, reason: str) -> None:
        if self._timer is not None:
            return
        log.info("%s: stopping; the process exits within %.1fs", reason, self.timeout_s)
        self._timer = threading.Timer(self.timeout_s, self._expire, args=(reason,))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, reason: str) -> None:
        log.error("still running %.1fs after %s: exiting now without a clean stop (offsets of "
                  "unpublished clicks stay uncommitted)", self.timeout_s, reason)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(self.exit_code)


def parse_args(argv: Sequence[str] | None, defaults: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m streams.worker",
        description="Faust worker: clicks -> Redis -> MIND -> Milvus -> recommendations. "
        "Every RECALL_* environment variable of streams/settings.py applies.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bootstrap", default=defaults.kafka_bootstrap,
                        help="Kafka bootstrap servers (env RECALL_KAFKA_BOOTSTRAP)")
    parser.add_argument("--model-dir", default=defaults.model_dir,
                        help="exported model root (env RECALL_MODEL_DIR)")
    parser.add_argument("--device", default=defaults.device, choices=["auto", "cpu", "gpu"],
                        help="model device (env RECALL_DEVICE)")
    parser.add_argument("--instance-id", default=defaults.group_instance_id,
                        help="static group membership id, unique per worker; unset: dynamic "
                        "membership (env RECALL_GROUP_INSTANCE_ID)")
    parser.add_argument("--stop-timeout", type=float, default=defaults.stop_timeout_s,
                        help="seconds after SIGTERM/SIGINT by which the process has exited "
                        "(env RECALL_STOP_TIMEOUT_S)")
    parser.add_argument("--log-level", default="info", help="faust/python log level")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    args = parse_args(argv, defaults)
    settings = defaults.model_copy(
        update={"kafka_bootstrap": args.bootstrap, "model_dir": args.model_dir,
                "device": args.device, "group_instance_id": args.instance_id or None,
                "stop_timeout_s": args.stop_timeout}
    )
    logs.configure(settings.log_format, args.log_level)
    problem = observe.web_port_problem(settings.worker_web_host, settings.worker_web_port)
    if problem is not None:  # before loading anything; Faust's own error names no setting
        log.error("cannot start the metrics and health server: %s", problem)
        raise SystemExit(EXIT_WEB_PORT)
    metrics = WorkerMetrics()
    deadline = StopDeadline(settings.stop_timeout_s)
    # One thread runs every blocking step (Redis, model, Milvus): the event loop stays free
    # for heartbeats and fetches, and batches never race each other on the model.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=BATCH_THREAD)
    status = 1  # unless Faust's worker ends with its own SystemExit
    try:
        with open_core(settings) as core, ExitStack() as stack:
            assert core.history is not None
            app = create_app(settings)
            channels = topics(app, settings)
            topic_ids = TopicIds(settings.kafka_bootstrap, timeout_s=2.0,
                                 **kafka_python_kwargs(settings))
            topic_ids.start()
            stack.callback(topic_ids.close)
            excerpt = settings.dead_letter_excerpt_bytes
            epochs = LogEpochs(topic_ids)
            clicks = ClickPipeline(core.history, core.recaller, Limits.from_settings(settings),
                                   epochs, excerpt, settings.record_channel_lists)
            guard_commits(app.consumer, CommitGuard(topic_ids, epochs, settings.clicks_topic))
            item_limits = Limits.from_settings(settings, core.model.dim)
            items = ItemPipeline(core.index, item_limits, excerpt)
            feed_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="item-feed")
            stack.callback(feed_executor.shutdown, wait=False, cancel_futures=True)
            feed = item_feed.ItemFeed(settings, core.model, item_limits, feed_executor, metrics)
            item_feed.attach(app, feed)
            recommend.attach(app, channels, clicks, executor, settings, metrics, feed.caught_up)
            upsert_items.attach(app, channels, items, executor, settings, metrics)
            reload_model.attach(app, core, executor, metrics)
            observe.attach(app, core, settings, metrics, stack)
            freeze_startup_heap()
            worker = Worker(app, deadline.arm, loglevel=args.log_level, redirect_stdouts=False,
                            logging_config=logs.logging_config(settings.log_format,
                                                               args.log_level))
            try:
                worker.execute_from_commandline()
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        abandon_stuck_step(status)


#: The collector's thresholds once the worker has started (Python's default: 700, 10, 10).
#: A batch step makes thousands of short-lived containers; at 700 the youngest generation was
#: collected about twice per batch of 64 (1.1 ms of a 23 ms step; docs/serving-speed.md).
GC_THRESHOLDS = (10_000, 20, 50)


def freeze_startup_heap() -> None:
    """Leave every object alive after startup (modules, the model, clients: ~330k) out of the
    garbage collector's full passes, which would otherwise scan them all each time: a pause of
    ~200 ms in the batch step on this machine (docs/serving-speed.md, "Full collections").
    Then collect less often (GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def abandon_stuck_step(status: int, grace_s: float = 0.5) -> None:
    """Exit now if a batch step still runs in the executor thread after the worker stopped.

    The group was left and acked offsets committed by then; the step's result is unwanted (its
    clicks were not acked, so they are redelivered), but the interpreter would wait for the
    thread, e.g. for a Redis or Milvus call blocked on a server that is down.
    """
    busy = [t for t in threading.enumerate() if t.name.startswith(BATCH_THREAD)]
    for thread in busy:
        thread.join(grace_s)
    if any(t.is_alive() for t in busy):
        log.warning("a batch step is still running (a server is not answering); exiting "
                    "without waiting for it, its clicks are redelivered")
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(status)


if __name__ == "__main__":
    main()
