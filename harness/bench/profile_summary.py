"""`python -m harness.bench.profile_summary FILE`: where a process' CPU went, from a py-spy raw
profile (`py-spy record --format raw`: one "frame;frame;...;innermost count" line per stack).

Prints the share of samples by the package of the innermost frame (asyncio, faust, aiokafka,
mode, logging, this project's packages, ...), the innermost frames, and the share of samples
whose stack passes through a few known costs (log records made, thread hops into the loop).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Sequence

PACKAGES = ("faust", "aiokafka", "mode", "kafka", "asyncio", "logging", "selectors", "orjson",
            "streams", "harness", "model", "paddle", "pymilvus", "grpc", "redis", "numpy")
THROUGH = {"log records made": "LogRecord.__init__",
           "thread hops into the event loop": "call_soon_threadsafe"}
FILE = re.compile(r"\(([^)]*?)(?::\d+)?\)$")


def package(frame: str) -> str:
    """The package a py-spy frame "function (path/to/file.py:line)" belongs to."""
    found = FILE.search(frame)
    path = found.group(1) if found else frame
    parts = re.split(r"[/\\]", path)
    return next((p for p in parts if p.removesuffix(".py") in PACKAGES), "other") \
        .removesuffix(".py")


def summarize(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """(samples, by innermost package, by innermost frame, through each of THROUGH)."""
    total, packages, frames, through = 0, Counter[str](), Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        stack_frames = stack.split(";")
        packages[package(stack_frames[-1])] += n
        frames[stack_frames[-1]] += n
        for name, marker in THROUGH.items():
            if marker in stack:
                through[name] += n
    return total, packages, frames, through


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.profile_summary",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", help="py-spy --format raw output")
    p.add_argument("--top", type=int, default=12, help="rows per table")
    args = p.parse_args(argv)
    with open(args.profile) as f:
        total, packages, frames, through = summarize(f)
    print(f"{total} samples of {args.profile}")
    print("by package of the innermost frame:")
    for name, n in packages.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("stacks through:")
    for name in THROUGH:
        print(f"  {100 * through[name] / total:5.1f}%  {name}")
    print("innermost frames:")
    for name, n in frames.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name[:120]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
