"""`make run`: the whole local system until Ctrl-C: stack, model, items, worker and HTTP API."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.stack.launch import System
from streams.settings import Settings


def live_settings(settings: Settings, data: str | None) -> Settings:
    """The live page on; item titles from a `movies.csv` beside the data (MovieLens) if unset."""
    titles = settings.item_titles
    if titles is None and data is not None and (Path(data).parent / "movies.csv").exists():
        titles = str(Path(data).parent / "movies.csv")
    return settings.model_copy(update={"live_page": True, "item_titles": titles})


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m harness.stack", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Start broker, Redis, Milvus, model, worker and API; Ctrl-C stops them all. "
        "Ports and topics come from RECALL_* environment variables.")
    parser.add_argument("--data", default=None,
                        help="dataset to train the first model on (default: built-in generator)")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with System(live_settings(defaults, args.data), data=args.data) as system:
        s = system.settings
        env = f"RECALL_KAFKA_BOOTSTRAP={s.kafka_bootstrap}"
        print(f"""
Ready. Model {s.model_dir}, logs in {system.stack.dir}.
  send a click:          {env} .venv/bin/python -m producers.click --user 1 --item 42
  replay a dataset:      {env} .venv/bin/python -m producers.replay --rate 200 --limit 1000
  watch recommendations: {env} .venv/bin/python -m consumers.recommendations
  HTTP API (docs):       http://{s.api_host}:{s.api_port}/docs
  live page:             http://{s.api_host}:{s.api_port}/live
  API metrics, health:   http://{s.api_host}:{s.api_port}/metrics /healthz /readyz
  worker metrics:        http://{s.worker_web_host}:{s.worker_web_port}/metrics /healthz /readyz
Ctrl-C stops everything.""", flush=True)
        try:
            while True:
                system.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nstopping...")


if __name__ == "__main__":
    main()
