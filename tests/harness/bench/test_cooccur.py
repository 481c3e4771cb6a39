"""`python -m harness.bench.cooccur` on a few clicks of a dev stream against a real
redis-server: it prints one median per script call."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.bench.cooccur import DEFAULT_DATA, main

pytestmark = pytest.mark.integration
DATA = (Path(__file__).resolve().parents[3] / DEFAULT_DATA).resolve()


@pytest.mark.skipif(not DATA.is_file(), reason="the MovieLens-small dev stream is not here")
def test_prints_a_median_per_script_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(DATA), "--limit", "3000", "--reads", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("append, counts off", "append, counts on", "score a batch of users"):
        assert re.search(rf"{name} +\d+\.\d+ ms", out), out
