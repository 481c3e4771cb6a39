"""`python -m harness.bench.gpu` without a GPU: it says so, runs the model stage on the CPU
on both sides through harness.bench.forward, and prints a ratio per batch size."""

from __future__ import annotations

import re

import pytest

from harness.bench.gpu import main, table


def test_the_table_gives_each_batch_size_its_ratio() -> None:
    out = table({16: 300.0, 256: 900.0}, {16: 100.0, 256: 900.0}, ("gpu", "cpu"))
    assert re.search(r"16 +300 +100 +3\.00x", out) and re.search(r"256 +900 +900 +1\.00x", out)


def test_without_a_gpu_it_says_so_and_still_measures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cpu-only", "--batch-sizes", "16,64", "--seconds", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "no GPU here" in out
    for bs in (16, 64):
        assert re.search(rf"^ +{bs} +\d+ +\d+ +\d+\.\d\dx$", out, re.M), out
