"""Send one click from arguments, or JSON-line clicks from a file or stdin, to the clicks topic."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import TextIO

from producers.kafka import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PARTIAL,
    Sender,
    add_kafka_args,
    open_sender,
    run_cli,
)
from producers.sources import LineReporter
from streams.errors import BadEvent, BadRequest
from streams.records import Click
from streams.settings import Settings


def parse_line(line: str, now: Callable[[], float] = time.time) -> Click:
    """One JSON line -> a checked Click; a missing `ts` becomes the current time."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadEvent(f"expected a JSON object, got {type(data).__name__}")
    data.setdefault("ts", now())
    return Click.parse(data)


def read_clicks(lines: Iterable[str], report: Callable[[int, str], None],
                now: Callable[[], float] = time.time) -> Iterator[Click]:
    """Valid clicks of JSON lines; each bad line goes to `report(line number, reason)`."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield parse_line(line, now)
        except BadEvent as exc:
            report(lineno, str(exc))


def send_clicks(clicks: Iterable[Click], sender: Sender) -> None:
    """Queue clicks keyed by user id (the key that keeps a user's clicks in one partition)."""
    for click in clicks:
        sender.send(str(click.user_id).encode(), click.to_bytes())


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m producers.click", description=__doc__,
        epilog='JSON lines look like {"user_id": 1, "item_id": 42, "ts": 1700000000.5}; '
               "ts is optional (default: now). " + EXIT_CODES)
    parser.add_argument("file", nargs="?", help="JSON-lines file, or - for stdin")
    parser.add_argument("--user", type=int, help="user id of a single click")
    parser.add_argument("--item", type=int, help="item id of a single click")
    parser.add_argument("--ts", type=float, help="unix seconds of a single click (default: now)")
    add_kafka_args(parser, settings, "clicks_topic")
    args = parser.parse_args(argv)
    single = args.user is not None or args.item is not None
    if single == (args.file is not None):
        parser.error("give either --user and --item, or a FILE / - (not both)")
    if single and (args.user is None or args.item is None):
        parser.error("--user and --item go together")
    return args


def _single_click(args: argparse.Namespace) -> Click:
    ts = time.time() if args.ts is None else args.ts
    try:
        return Click.parse({"user_id": args.user, "item_id": args.item, "ts": ts})
    except BadEvent as exc:
        raise BadRequest(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 ok, 1 invalid lines or failed sends, 2 bad input, 3 no broker."""
    settings = Settings()
    args = parse_args(argv, settings)
    report = LineReporter("stdin" if args.file == "-" else args.file)

    def body() -> int:
        with ExitStack() as files:
            if args.file is None:
                clicks: Iterable[Click] = [_single_click(args)]
            else:
                stream: TextIO = sys.stdin if args.file == "-" else files.enter_context(
                    open(args.file, encoding="utf-8"))
                clicks = read_clicks(stream, report)
            with open_sender(args.bootstrap, args.topic, settings=settings) as sender:
                send_clicks(clicks, sender)
                stats = sender.flush()
        stats.invalid = report.count
        print(f"-> {args.topic}: {stats.summary()}", file=sys.stderr)
        return EXIT_OK if stats.failed == stats.invalid == 0 else EXIT_PARTIAL

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
