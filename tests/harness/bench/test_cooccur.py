"""`python -m harness.bench.cooccur` on a few clicks of a dev stream against a real
redis-server: it prints one median per step and Redis' bytes per counted item."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.bench.cooccur import DEFAULT_DATA, main

pytestmark = pytest.mark.integration
DATA = (Path(__file__).resolve().parents[3] / DEFAULT_DATA).resolve()


@pytest.mark.skipif(not DATA.is_file(), reason="the MovieLens-small dev stream is not here")
def test_prints_a_median_per_step_and_the_bytes_per_item(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(DATA), "--limit", "3000", "--reads", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("append, counts off", "append, counts on", "append, counts queued",
                 "count the queued batch", "score a batch, no cache", "score a batch, cache 1 s"):
        assert re.search(rf"{name} +\d+\.\d+ ms", out), out
    for channel in ("cooccur", "next"):
        assert re.search(rf"bytes per counted item, {channel}: [1-9][\d,]* mean, [1-9][\d,]* "
                         r"for the largest set", out), out
