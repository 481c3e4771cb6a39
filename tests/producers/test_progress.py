"""Progress bars only on a terminal: `publish(progress=True)` writes no bar into a log file."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from producers.items import embedding_records, publish


class Sink:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def send_valid(self, key: object, value: object, what: str) -> None:
        self.sent.append(value)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "bar"), [(io.StringIO(), False), (Tty(), True)])
def test_bar_only_where_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                             stream: io.StringIO, bar: bool) -> None:
    monkeypatch.setattr(sys, "stderr", stream)
    ids = np.arange(1, 4)
    vectors = np.ones((3, 4), dtype=np.float32)
    sink = Sink()
    publish(embedding_records(ids, vectors), sink, progress=True, total=3)  # type: ignore[arg-type]
    assert len(sink.sent) == 3
    assert ("\r" in stream.getvalue()) is bar
