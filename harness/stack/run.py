"""`make run`: the whole local system until Ctrl-C: stack, model, items, worker and HTTP API."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.stack.launch import System
from streams.api.auth import live_link
from streams.settings import Settings


def live_settings(settings: Settings, data: str | None) -> Settings:
    """The live page on; item titles from a `movies.csv` beside the data (MovieLens) if unset."""
    titles = settings.item_titles
    if titles is None and data is not None and (Path(data).parent / "movies.csv").exists():
        titles = str(Path(data).parent / "movies.csv")
    return settings.model_copy(update={"live_page": True, "item_titles": titles})


def stopped(name: str, status: int) -> None:
    """One line per process the launcher stopped."""
    how = f"signal {-status}" if status < 0 else f"exit {status}"
    print(f"stopped {name} ({how})", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run until Ctrl-C or SIGTERM, then stop every process and exit 0.

    Ctrl-C in a terminal sends SIGINT to the whole process group: the worker, the API and the
    servers stop on their own at the same moment, so their exits are expected then, not errors.
    """
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m harness.stack.run", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Start broker, Redis, Milvus, model, worker and API; Ctrl-C stops them all. "
        "Ports and topics come from RECALL_* environment variables.")
    parser.add_argument("--data", default=None,
                        help="dataset to train the first model on (default: built-in generator)")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: Any) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # one stop; a second Ctrl-C changes nothing
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):  # also where the shell started us ignoring them
        signal.signal(sig, stop)
    system = System(live_settings(defaults, args.data), data=args.data)
    try:
        system.start()
        print(ready_text(system), flush=True)
        while True:
            system.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        system.stop(stopped)
    return 0


def ready_text(system: System) -> str:
    """What to do next, once everything answers."""
    s = system.settings
    env = f"RECALL_KAFKA_BOOTSTRAP={s.kafka_bootstrap}"
    api = f"http://{s.api_host}:{s.api_port}"
    return f"""
Ready. Model {s.model_dir}, logs in {system.stack.dir}.
  send a click:          {env} .venv/bin/recall-click --user 1 --item 42
  replay a dataset:      {env} .venv/bin/recall-replay --rate 200 --limit 1000
  watch recommendations: {env} .venv/bin/recall-follow
  HTTP API (docs):       {api}/docs
{access_text(system)}
  API metrics, health:   {api}/metrics /healthz /readyz
  worker metrics:        http://{s.worker_web_host}:{s.worker_web_port}/metrics /healthz /readyz
Ctrl-C stops everything."""


def access_text(system: System) -> str:
    """The API token (when the launcher made it: its only appearance), a call that needs it and
    the live page's link, which hands the token to the page in its fragment."""
    s = system.settings
    api = f"http://{s.api_host}:{s.api_port}"
    if s.api_auth == "off":
        return (f"  API auth:              off (RECALL_API_AUTH=off): anyone may call /insert, "
                f"/drop and send clicks\n  live page:             {live_link(s, None)}")
    if system.token_generated and s.api_token is not None:
        token = s.api_token.get_secret_value()
        return (f"  API token:             {token} (new each run; RECALL_API_TOKEN sets one)\n"
                f"  reload item vectors:   curl -XPOST -H \"Authorization: Bearer {token}\" "
                f"{api}/insert\n"
                f"  live page:             {live_link(s, s.api_token)}")
    return ("  API token:             $RECALL_API_TOKEN (from your environment)\n"
            f"  reload item vectors:   curl -XPOST -H \"Authorization: Bearer $RECALL_API_TOKEN\" "
            f"{api}/insert\n"
            f"  live page:             {live_link(s, None)} (paste the token into its field)")


if __name__ == "__main__":
    raise SystemExit(main())
