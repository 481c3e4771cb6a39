"""Entry point of the stream worker: `python -m streams.worker`, settings from RECALL_* vars."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import faust

from streams import logs, observe
from streams.agents import recommend, reload_model, upsert_items
from streams.app import create_app, topics
from streams.core import open_core
from streams.epochs import LogEpochs, TopicIds
from streams.metrics import WorkerMetrics
from streams.pipeline import ClickPipeline, ItemPipeline
from streams.records import Limits
from streams.settings import Settings


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
    parser.add_argument("--log-level", default="info", help="faust/python log level")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    args = parse_args(argv, defaults)
    settings = defaults.model_copy(
        update={"kafka_bootstrap": args.bootstrap, "model_dir": args.model_dir,
                "device": args.device}
    )
    logs.configure(settings.log_format, args.log_level)
    metrics = WorkerMetrics()
    # One thread runs every blocking step (Redis, model, Milvus): the event loop stays free
    # for heartbeats and fetches, and batches never race each other on the model.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recall-batch")
    try:
        with open_core(settings) as core, ExitStack() as stack:
            assert core.history is not None
            app = create_app(settings)
            channels = topics(app, settings)
            topic_ids = TopicIds(settings.kafka_bootstrap)
            topic_ids.start()
            stack.callback(topic_ids.close)
            excerpt = settings.dead_letter_excerpt_bytes
            clicks = ClickPipeline(core.history, core.recaller, Limits.from_settings(settings),
                                   LogEpochs(topic_ids), excerpt)
            items = ItemPipeline(core.index, core.model,
                                 Limits.from_settings(settings, core.model.dim), excerpt)
            recommend.attach(app, channels, clicks, executor, settings, metrics)
            upsert_items.attach(app, channels, items, executor, settings, metrics)
            reload_model.attach(app, core, executor, metrics)
            observe.attach(app, core, settings, metrics, stack)
            worker = faust.Worker(app, loglevel=args.log_level, redirect_stdouts=False,
                                  logging_config=logs.logging_config(settings.log_format,
                                                                     args.log_level))
            worker.execute_from_commandline()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
