"""Pass-through worker for `make bench`: the worker's topics, app and batching, no recall.

Each click is copied to the recommendations topic as it came, through the same Faust app
(`streams.worker.app.create_app`), micro-batches (`take_events`, RECALL_BATCH_SIZE /
RECALL_BATCH_WINDOW_S), publishing and hold-until-published acking as the real worker: what
it sustains is the ceiling of the framework and the broker on this machine.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import faust

from streams import logs
from streams.observe.metrics import WorkerMetrics
from streams.settings import Settings
from streams.worker.acks import hold, release
from streams.worker.app import create_app, topics
from streams.worker.delivery import deliver
from streams.worker.faust_compat import Worker
from streams.worker.pipeline import Output

log = logging.getLogger("harness.bench.passthrough")


def build(settings: Settings) -> faust.App:
    """The app with one agent that copies clicks to the output topic."""
    app = create_app(settings)
    channels = topics(app, settings)
    metrics = WorkerMetrics()

    @app.agent(channels["clicks"], name="passthrough")
    async def passthrough(stream: faust.StreamT) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.batch_size, within=settings.batch_window_s)
        async for events in batches:
            hold(events)
            out = Output(records=[(e.key, e.value) for e in events if e.value is not None])
            await deliver(out, channels["recs"], channels["dead"], settings.max_message_bytes,
                          settings.retry_max_delay_s, metrics)
            release(events)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench.passthrough", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--bootstrap", default=defaults.kafka_bootstrap,
                        help="Kafka bootstrap servers (env RECALL_KAFKA_BOOTSTRAP)")
    parser.add_argument("--log-level", default="warning", help="faust/python log level")
    args = parser.parse_args(argv)
    settings = defaults.model_copy(update={"kafka_bootstrap": args.bootstrap})
    logs.configure(settings.log_format, args.log_level)
    app = build(settings)
    worker = Worker(app, lambda _: None, loglevel=args.log_level, redirect_stdouts=False,
                          logging_config=logs.logging_config(settings.log_format,
                                                             args.log_level))
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
