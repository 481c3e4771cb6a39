"""harness.bench.profile_summary on a small py-spy raw profile."""

from __future__ import annotations

import pytest

from harness.bench.profile_summary import package, summarize

RAW = [
    "<module> (x.py:1);run (asyncio/base_events.py:600);select (selectors.py:468) 5",
    "<module> (x.py:1);publish (faust/topics.py:402);debug (logging/__init__.py:1477);"
    "LogRecord.__init__ (logging/__init__.py:327) 2",
    "<module> (x.py:1);call (mode/threads.py:382);call_soon_threadsafe "
    "(asyncio/base_events.py:800) 3",
    "<module> (x.py:1);recall (/work/streams/recall/fused.py:90) 4",
    "not a profile line",
]


@pytest.mark.parametrize(("frame", "name"), [
    ("send (/v/site-packages/aiokafka/producer/producer.py:500)", "aiokafka"),
    ("select (selectors.py:468)", "selectors"),
    ("recall (/work/streams/recall/fused.py:90)", "streams"),
    ("thing (/usr/lib/somewhere/else.py:1)", "other"),
])
def test_package_of_a_frame(frame: str, name: str) -> None:
    assert package(frame) == name


def test_summarize_counts_samples_by_innermost_package_and_marked_stacks() -> None:
    total, packages, frames, through = summarize(RAW)
    assert total == 14
    assert packages == {"selectors": 5, "logging": 2, "asyncio": 3, "streams": 4}
    assert frames["select (selectors.py:468)"] == 5
    assert through["thread hops into the event loop"] == 3
    assert through["log records made"] == 2
