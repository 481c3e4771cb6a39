"""Pure logic of `make bench`: percentiles, rate steps, maximum sustained rate, the JSON's shape."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

P99_LIMIT_MS = 250.0
MODES = ("passthrough", "naive", "pipeline")
STAGES = ("consume", "parse", "redis", "model", "search", "merge", "publish")
REQUIRED_KEYS = ("catalog_items", "users", "search_ceiling_ups", "freshness_p99_ms", "stages_ms",
                 *MODES)
MODE_KEYS = ("max_sustained_cps", "p50_ms", "p99_ms", "sweep")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank q-th percentile (0 < q <= 100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass
class Step:
    """One open-loop step: `offered_cps` for `seconds`; latencies of the clicks answered."""

    offered_cps: float
    seconds: float
    sent: int
    received: int
    sent_cps: float = 0.0  # what the producer managed (it falls behind on a saturated machine)
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    stages_ms: dict[str, float] = field(default_factory=dict)
    cpu_cores: dict[str, float] = field(default_factory=dict)  # harness.bench.cpu, per group

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def sustained(self, p99_limit_ms: float = P99_LIMIT_MS) -> bool:
        """Every click answered and p99 within the limit."""
        return self.sent > 0 and self.lost == 0 and self.p99_ms <= p99_limit_ms

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lost"] = self.lost
        out["sustained"] = self.sustained()
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in out.items()}


def step_from_latencies(offered_cps: float, seconds: float, sent: int,
                        latencies_ms: Sequence[float], sent_s: float) -> Step:
    """A Step from the latencies (ms) of the clicks answered out of `sent`."""
    return Step(offered_cps, seconds, sent, len(latencies_ms),
                sent_cps=sent / sent_s if sent_s > 0 else 0.0,
                p50_ms=percentile(latencies_ms, 50), p90_ms=percentile(latencies_ms, 90),
                p99_ms=percentile(latencies_ms, 99),
                max_ms=max(latencies_ms) if latencies_ms else math.nan)


def max_sustained(steps: Iterable[Step], p99_limit_ms: float = P99_LIMIT_MS) -> Step | None:
    """The step of the highest offered rate that was sustained (None when none was)."""
    good = [s for s in steps if s.sustained(p99_limit_ms)]
    return max(good, key=lambda s: s.offered_cps) if good else None


def sweep(run: Callable[[float], Step], start: float, factor: float, limit: float,
          refine: int = 2, retries: int = 1, down: int = 3,
          p99_limit_ms: float = P99_LIMIT_MS,
          restart: Callable[[], None] | None = None) -> list[Step]:
    """Offer start, start*factor, ... until a rate is not sustained (or `limit` is passed);
    when `start` itself fails, start/factor, start/factor^2, ... down to `down` steps until
    one is sustained.

    A rate that fails is offered again up to `retries` times and counts as sustained if any
    run is (a machine shared with other work stalls now and then; each run is in the list).
    With `refine`, `refine` bisections between the best sustained and the lowest failed rate.
    `restart`, when given, runs before every step after the first one that failed (a worker
    on fresh topics: the local broker slows as a run's topics grow).
    """
    steps: list[Step] = []

    def attempt(rate: float) -> bool:
        for _ in range(1 + retries):
            if restart is not None and any(not s.sustained(p99_limit_ms) for s in steps):
                restart()
            steps.append(run(rate))
            if steps[-1].sustained(p99_limit_ms):
                return True
        return False

    rate, failed = start, None
    while rate <= limit:
        if not attempt(rate):
            failed = rate
            break
        rate = rate * factor
    for _ in range(down if failed == start else 0):
        rate = round(rate / factor, 1)
        if attempt(rate):
            break
        failed = rate
    for _ in range(refine):
        best = max_sustained(steps, p99_limit_ms)
        if failed is None or best is None:
            break
        middle = round((best.offered_cps + failed) / 2)
        if not attempt(middle):
            failed = middle
    return steps


def mode_summary(steps: Sequence[Step], p99_limit_ms: float = P99_LIMIT_MS) -> dict[str, Any]:
    """max_sustained_cps with p50/p99 at that rate, and the whole sweep."""
    best = max_sustained(steps, p99_limit_ms)
    return {
        "max_sustained_cps": best.offered_cps if best else 0.0,
        "p50_ms": round(best.p50_ms, 1) if best else None,
        "p99_ms": round(best.p99_ms, 1) if best else None,
        "stages_ms": best.stages_ms if best else {},
        "cpu_cores": best.cpu_cores if best else {},
        "sweep": [s.as_dict() for s in sorted(steps, key=lambda s: s.offered_cps)],
    }


def stage_means(before: Mapping[str, tuple[float, float]],
                after: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Mean ms per batch of each stage between two (sum_s, count) scrapes of a histogram."""
    out = {}
    for stage, (total, count) in after.items():
        total0, count0 = before.get(stage, (0.0, 0.0))
        if count > count0:
            out[stage] = round(1000.0 * (total - total0) / (count - count0), 2)
    return out


def check_shape(result: Mapping[str, Any]) -> list[str]:
    """What the bench JSON lacks (empty when it has every key the issue asks for)."""
    missing = [k for k in REQUIRED_KEYS if k not in result]
    for mode in MODES:
        if isinstance(result.get(mode), Mapping):
            missing += [f"{mode}.{k}" for k in MODE_KEYS if k not in result[mode]]
    return missing


def targets(result: Mapping[str, Any]) -> dict[str, bool | None]:
    """The issue's targets, checked on the headline figures (None: not measured)."""
    pipe = result["pipeline"]["max_sustained_cps"]
    naive = result["naive"]["max_sustained_cps"]
    ceiling = result["search_ceiling_ups"]
    half = result.get("pipeline_half_rate_p99_ms")
    fresh = result.get("freshness_p99_ms")
    recall = result.get("recall_kept")
    return {
        "pipeline_ge_500_cps": pipe >= 500,
        "pipeline_ge_5x_naive": naive > 0 and pipe >= 5 * naive,
        "pipeline_ge_60pct_search_ceiling": ceiling > 0 and pipe >= 0.6 * ceiling,
        "p99_le_150ms_at_half_rate": None if half is None else half <= 150,
        "freshness_p99_le_1000ms": None if fresh is None else fresh <= 1000,
        "recall_kept_ge_98pct": None if recall is None else recall >= 0.98,
    }
