"""The bench's pure logic: percentiles, sustained steps, sweeps, stage means, JSON shape, table."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from harness.bench.load import answer_key
from harness.bench.options import parse_variant
from harness.bench.report import markdown_table
from harness.bench.sweep import (
    MODES,
    Step,
    check_shape,
    max_sustained,
    mode_summary,
    percentile,
    stage_means,
    step_from_latencies,
    sweep,
    targets,
)
from streams.recall.lists import keep_interests


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def step(rate: float, p99: float, lost: int = 0) -> Step:
    return Step(rate, 1.0, 100, 100 - lost, p50_ms=p99 / 2, p99_ms=p99)


def test_a_step_is_sustained_only_without_loss_and_within_the_p99_limit() -> None:
    assert step(100, 250).sustained()
    assert not step(100, 251).sustained()
    assert not step(100, 10, lost=1).sustained()
    assert not Step(100, 1.0, 0, 0).sustained()  # nothing sent proves nothing


def test_step_from_latencies_counts_the_unanswered_as_lost() -> None:
    s = step_from_latencies(200, 2.0, 400, [10.0] * 390 + [300.0] * 8, 2.0)
    assert (s.sent, s.received, s.lost, s.sent_cps) == (400, 398, 2, 200)
    assert s.p50_ms == 10.0 and s.p99_ms == 300.0 and not s.sustained()


def test_max_sustained_is_the_highest_good_rate_even_after_a_bad_one() -> None:
    steps = [step(100, 50), step(200, 300), step(150, 100), step(300, 400)]
    best = max_sustained(steps)
    assert best is not None and best.offered_cps == 150
    assert max_sustained([step(100, 300)]) is None


def capped(capacity: float, log: list[object]) -> Callable[[float], Step]:
    """A worker that holds every rate up to `capacity` (p99 100 ms, else 1000), logging each
    rate it is offered."""
    def run(rate: float) -> Step:
        log.append(rate)
        return step(rate, 100 if rate <= capacity else 1000)
    return run


def test_sweep_stops_at_the_first_failure_and_bisects_twice() -> None:
    offered: list[object] = []
    run = capped(500, offered)
    steps = sweep(run, 100, 2, 10_000)
    # a failed rate is offered twice; then 600 (fails), then 500 (holds)
    assert offered == [100, 200, 400, 800, 800, 600, 600, 500]
    assert mode_summary(steps)["max_sustained_cps"] == 500
    assert [s["offered_cps"] for s in mode_summary(steps)["sweep"]] == [
        100, 200, 400, 500, 600, 600, 800, 800]
    assert sweep(run, 100, 2, 10_000, retries=0, refine=1)[-1].offered_cps == 600


def test_a_rate_that_passes_on_its_second_offer_counts() -> None:
    results = iter([step(100, 50), step(200, 900), step(200, 90), step(400, 900),
                    step(400, 900), step(300, 900), step(300, 900), step(250, 900),
                    step(250, 900)])
    steps = sweep(lambda rate: next(results), 100, 2, 10_000)
    assert mode_summary(steps)["max_sustained_cps"] == 200


def test_a_failing_start_steps_down_until_a_rate_holds_then_bisects() -> None:
    offered: list[object] = []
    steps = sweep(capped(30, offered), 100, 2, 10_000, retries=0)
    # 100 fails, 50 fails, 25 holds; then halfway to the lowest failed: 38 (fails), 32 (fails)
    assert offered == [100, 50, 25, 38, 32]
    assert mode_summary(steps)["max_sustained_cps"] == 25
    nothing = sweep(lambda rate: step(rate, 1000), 100, 2, 10_000, retries=0, down=2)
    assert [s.offered_cps for s in nothing] == [100, 50, 25]
    assert mode_summary(nothing)["max_sustained_cps"] == 0.0


def test_every_step_after_the_first_failure_runs_after_a_restart() -> None:
    events: list[object] = []
    sweep(capped(500, events), 100, 2, 10_000, restart=lambda: events.append("restart"))
    # 800 fails; its second offer and both bisections each run on a fresh worker
    assert events == [100, 200, 400, 800, "restart", 800, "restart", 600, "restart", 600,
                      "restart", 500]


def test_sweep_respects_the_rate_limit() -> None:
    steps = sweep(lambda rate: step(rate, 10), 100, 2, 500)
    assert [s.offered_cps for s in steps] == [100, 200, 400]


def test_stage_means_are_per_batch_between_two_scrapes() -> None:
    before = {"search": (1.0, 10.0), "redis": (0.5, 10.0)}
    after = {"search": (3.0, 30.0), "redis": (0.5, 10.0), "parse": (0.01, 5.0)}
    assert stage_means(before, after) == {"search": 100.0, "parse": 2.0}


def result() -> dict:
    mode = mode_summary([step(100, 50), step(200, 120), step(300, 400)])
    naive = mode_summary([step(20, 50), step(40, 400)])
    cat = {"catalog_items": 12101, "search_ceiling_ups": 300.0, "pipeline": mode,
           "naive": naive, "half_rate_p99_ms": 80.0, "freshness": {"p50_ms": 50, "p99_ms": 90}}
    res = {"catalog_items": 12101, "users": 50000, "search_ceiling_ups": 300.0,
           "freshness_p99_ms": 90.0, "stages_ms": {"search": 12.0}, "passthrough": mode,
           "naive": naive, "pipeline": mode, "pipeline_half_rate_p99_ms": 80.0,
           "catalogs": {"12k": cat}}
    res["targets"] = targets(res)
    return res


def test_json_shape_and_targets() -> None:
    res = result()
    assert check_shape(res) == []
    assert check_shape({"passthrough": {}}) == (
        [k for k in ("catalog_items", "users", "search_ceiling_ups", "freshness_p99_ms",
                     "stages_ms", "naive", "pipeline")]
        + ["passthrough.max_sustained_cps", "passthrough.p50_ms", "passthrough.p99_ms",
           "passthrough.sweep"])
    t = res["targets"]
    assert t["pipeline_ge_500_cps"] is False  # 200
    assert t["pipeline_ge_5x_naive"] is True  # 200 vs 20
    assert t["pipeline_ge_60pct_search_ceiling"] is True  # 200 vs 300
    assert t["p99_le_150ms_at_half_rate"] is True and t["freshness_p99_le_1000ms"] is True
    assert t["recall_kept_ge_98pct"] is None
    assert set(MODES) <= set(res)


def test_markdown_table_has_a_row_per_catalog() -> None:
    table = markdown_table(result())
    row = ("| 12k | 12,101 | 300 | 200 | 20 | 200 (60.0 / 120.0) | 10.0x | 67% | 80.0 | "
           "50.0 / 90.0 |")
    assert row in table
    assert "pipeline_ge_500_cps NO" in table
    assert "variants" not in table


def test_markdown_table_sets_variants_beside_the_runs_own_pipeline() -> None:
    res = result()
    res["catalogs"]["12k"]["variants"] = {
        "channels=mind": mode_summary([step(100, 50), step(300, 120), step(400, 400)])}
    table = markdown_table(res)
    assert "| the run's own | 200 (60.0 / 120.0) | 1.00 |" in table
    assert "| channels=mind | 300 (60.0 / 120.0) | 1.50 |" in table


def test_answer_keys_of_a_recommendation_and_of_a_copied_click_match() -> None:
    rec = b'{"user_id": 3, "click_item": 9, "click_ts": 1.5, "item_ids": [1]}'
    click = b'{"user_id": 3, "item_id": 9, "ts": 1.5}'
    assert answer_key(rec) == answer_key(click) == (3, 9, 1.5)


def test_interest_pruning() -> None:
    a = np.array([1.0, 0.0], np.float32)
    b = np.array([0.0, 1.0], np.float32)
    vectors = np.stack([np.stack([2 * a, a, b, 0 * a]),  # a twice, b, one zero capsule
                        np.stack([a, b, -a, 3 * b])])  # [2, 4, 2]
    lengths = np.array([10, 2])
    assert keep_interests(vectors, lengths, "none", 0.9).tolist() == [
        [True, True, True, False], [True, True, True, True]]
    assert keep_interests(vectors, lengths, "dedup", 0.9).tolist() == [
        [True, False, True, False], [True, False, True, True]]
    # log2: K_u = 3 for 10 clicks (longest capsules first), 1 for 2 clicks
    assert keep_interests(vectors, lengths, "log2", 0.9).tolist() == [
        [True, True, True, False], [False, False, False, True]]


def test_a_variant_value_may_hold_commas_and_an_unknown_field_fails_early() -> None:
    assert parse_variant("channels=mind,popular,fusion_k0=30") == {
        "channels": "mind,popular", "fusion_k0": 30}
    assert parse_variant("cooccur_defer=false") == {"cooccur_defer": False}
    with pytest.raises(ValueError, match="no such setting"):
        parse_variant("chanels=mind")
    with pytest.raises(ValueError, match="FIELD=VALUE first"):
        parse_variant("mind,channels=mind")
