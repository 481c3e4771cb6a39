"""harness.bench.versus: reading two bench results and setting their worker costs side by side
(the runs themselves are `python -m harness.bench` of each tree, measured by hand)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.bench import versus


def step(rate: float, sent: float, worker: float, sustained: bool = True) -> dict[str, Any]:
    return {"offered_cps": rate, "sent_cps": sent, "sustained": sustained,
            "cpu_cores": {"worker": worker}}


def result(pass_steps: list[dict[str, Any]], pipe_steps: list[dict[str, Any]],
           variants: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    cat: dict[str, Any] = {"pipeline": {"sweep": pipe_steps}}
    if variants:
        cat["variants"] = {k: {"sweep": v} for k, v in variants.items()}
    return {"passthrough": {"sweep": pass_steps}, "catalogs": {"12k": cat}}


def test_per_click_takes_the_first_sustained_step_of_each_rate() -> None:
    got = versus.per_click([step(340, 340, 0.34, sustained=False), step(340, 340, 0.17),
                            step(578, 500, 0.5), step(983, 980, 0.4, sustained=False)])
    assert got == {340.0: (0.17, pytest.approx(0.5)), 578.0: (0.5, pytest.approx(1.0))}


def test_compare_rates_both_sustained_and_each_highest() -> None:
    old = result([step(340, 340, 0.34), step(578, 578, 0.578)], [step(250, 250, 0.5)])
    new = result([step(340, 340, 0.17), step(578, 578, 0.289), step(983, 983, 0.3)],
                 [step(250, 250, 0.25)], {"channels=mind": [step(250, 250, 0.125)]})
    rows = versus.compare(old, new, "abc")
    by = {(r["mode"], r["rate"]): r for r in rows}
    assert by[("passthrough", 340.0)]["ratio"] == pytest.approx(0.5)
    assert by[("passthrough", 578.0)]["ratio"] == pytest.approx(0.5)
    top = by[("passthrough", "highest sustained: 578 / 983")]
    assert top["abc"] == (0.578, pytest.approx(1.0))
    assert top["ratio"] == pytest.approx((1000 * 0.3 / 983) / 1.0)
    assert by[("pipeline", 250.0)]["ratio"] == pytest.approx(0.5)
    assert by[("pipeline channels=mind", 250.0)]["ratio"] == pytest.approx(0.25)  # vs REV's
    assert "| passthrough | 340.0 | 0.34, 1.00 | 0.17, 0.50 | 0.50 |" in versus.table(rows, "abc")


def test_run_bench_reads_the_result_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    envs = []

    def fake_run(cmd: list[str], stdout: Any, env: dict[str, str], **_: Any) -> None:
        envs.append(env)
        stdout.write(b'progress\nBENCH partial run (modes [1]): {"passthrough": {"sweep": []}}\n')
    monkeypatch.setattr(subprocess, "run", fake_run)
    got = versus.run_bench(tmp_path, [], tmp_path / "log", 7)
    assert got == {"passthrough": {"sweep": []}}
    assert envs[0]["BENCH_CLICK_LINGER_MS"] == "7"


def test_an_earlier_trees_load_generator_gets_the_same_linger(tmp_path: Path) -> None:
    (tmp_path / "harness").mkdir()
    load = tmp_path / "harness" / "load.py"
    load.write_text(f"x = 1\n        self.producer = {versus.OLD_LINGER}\n")
    assert versus.same_linger(tmp_path, 10)
    assert "settings=settings, linger_ms=10)" in load.read_text()
    assert not versus.same_linger(tmp_path, 10)  # nothing left to edit


def test_export_tree_writes_the_revision_with_the_artifacts_linked(tmp_path: Path) -> None:
    versus.export_tree("HEAD", tmp_path)
    assert (tmp_path / "harness" / "bench" / "main.py").is_file()
    assert (tmp_path / "artifacts").resolve() == Path("artifacts").resolve()


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        versus.main(["--help"])
    assert done.value.code == 0
    assert "--rev" in capsys.readouterr().out


def sustained(pass_cps: float, pipe_cps: float, mind_cps: float | None = None
              ) -> dict[str, Any]:
    cat: dict[str, Any] = {"pipeline": {"max_sustained_cps": pipe_cps}}
    if mind_cps is not None:
        cat["variants"] = {"channels=mind": {"max_sustained_cps": mind_cps}}
    return {"passthrough": {"max_sustained_cps": pass_cps}, "catalogs": {"12k": cat}}


def test_summary_gives_each_rounds_ratio_and_their_median() -> None:
    rounds = [(sustained(1000, 800), sustained(2000, 720, 1000)),
              (sustained(1000, 900), sustained(1000, 450, 900)),
              (sustained(1000, 855), sustained(1500, 855, 983))]
    by = {r["mode"]: r for r in versus.summary(rounds)}
    assert by["pipeline"]["ratios"] == pytest.approx([0.9, 0.5, 1.0])
    assert by["pipeline"]["median"] == pytest.approx(0.9)
    assert by["pipeline channels=mind"]["rates"][1] == (900.0, 900.0)  # against REV's pipeline
    assert by["passthrough"]["median"] == pytest.approx(1.5)
    assert "| pipeline | 800 / 720; 900 / 450; 855 / 855 | 0.90, 0.50, 1.00 | 0.90 |" in \
        versus.summary_table(list(by.values()), "abc")


def test_a_mode_with_no_sustained_step_in_rev_is_left_out_of_that_rounds_ratios() -> None:
    rounds = [(sustained(1000, 0), sustained(1000, 500)),
              (sustained(1000, 500), sustained(1000, 400))]
    by = {r["mode"]: r for r in versus.summary(rounds)}
    assert by["pipeline"]["ratios"] == pytest.approx([0.8])


def test_summary_gives_each_rounds_cpu_per_click_range_at_the_rates_both_sustained() -> None:
    def step(rate: float, cores: float, ok: bool = True) -> dict[str, Any]:
        return {"offered_cps": rate, "sent_cps": rate, "sustained": ok,
                "cpu_cores": {"worker": cores}}

    old, new = sustained(1000, 500), sustained(1000, 500)
    old["catalogs"]["12k"]["pipeline"]["sweep"] = [step(100, 0.4), step(200, 0.5)]
    new["catalogs"]["12k"]["pipeline"]["sweep"] = [step(100, 0.2), step(200, 0.4),
                                                   step(300, 0.5, ok=False)]
    by = {r["mode"]: r for r in versus.summary([(old, new), (sustained(1000, 500), new)])}
    assert by["pipeline"]["cpu_ratios"] == [pytest.approx((0.5, 0.8)), None]
