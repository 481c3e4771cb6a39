"""`make bench`'s command line: BENCH_* variables (`BenchEnv`) and the sweep's options."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from harness.options import EnvOptions, add_options
from streams.settings import Settings

BEAUTY = "../shared/data/amazon-beauty.txt"
HEADLINE = "12k"


class BenchEnv(EnvOptions):
    """`make bench` options (BENCH_* variables)."""

    model_config = SettingsConfigDict(env_prefix="BENCH_")

    out: str = Field("bench-results.json", description="JSON results; the plot and table go "
                     "beside it")
    quick: bool = Field(False, description="12k catalog only, shorter steps, < 5 min")
    click_linger_ms: int = Field(
        10, ge=0, description="the click producer's linger: it sends the clicks due in this "
        "many ms as one request (each click's latency counts from its send call, linger "
        "included); the local broker's cost per request grows with the topic's log "
        "(docs/serving-speed.md)")


def parse_args(argv: Sequence[str] | None, description: str | None = None
               ) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(p, BenchEnv())
    p.add_argument("--model-root", default=Settings().model_dir,
                   help="demo model dir; the Beauty model is <root>-amazon-beauty "
                   "(env RECALL_MODEL_DIR); trained when missing")
    p.add_argument("--data", default=BEAUTY, help="Beauty dataset for the 12k/100k model")
    p.add_argument("--cache-dir", default="artifacts/bench-items",
                   help="filled catalogs (harness.bench.items), built once")
    p.add_argument("--users", type=int, default=50_000, help="distinct users clicking")
    p.add_argument("--catalogs", default=None, help="comma list of 1k,12k,100k,100k-hnsw,1m "
                   "(default: all; quick: 12k); the last two on a Milvus standalone of their own "
                   "(pip install milvus==2.3.5)")
    p.add_argument("--step-s", type=float, default=None, help="seconds per rate step "
                   "(default 8, quick 4)")
    p.add_argument("--drain-s", type=float, default=None, help="wait for answers after a step "
                   "(default 10, quick 6)")
    p.add_argument("--factor", type=float, default=None, help="rate step factor "
                   "(default 1.5, quick 1.7)")
    p.add_argument("--ceiling-s", type=float, default=None, help="seconds per ceiling run")
    p.add_argument("--modes", default="passthrough,naive,pipeline",
                   help="what to sweep (leaving one out gives an incomplete JSON: for tuning)")
    p.add_argument("--variant", action="append", default=[], metavar="FIELD=VALUE,...",
                   help="also sweep the pipeline with these Settings fields changed, side by "
                   "side in the same run (repeatable; e.g. interest_pruning=none)")
    p.add_argument("--naive-start", type=float, default=20.0)
    p.add_argument("--pipeline-start", type=float, default=100.0)
    p.add_argument("--passthrough-start", type=float, default=200.0)
    p.add_argument("--max-rate", type=float, default=6000.0, help="highest rate offered")
    p.add_argument("--fresh-retries", action="store_true",
                   help="after a sweep's first failed step, run each later step on a fresh "
                   "worker and topics (the local broker slows as a run's topics grow), a "
                   "pipeline worker warmed by 6 s of clicks first (its co-occurrence cache)")
    p.add_argument("--two-workers", action=argparse.BooleanOptionalAction, default=None,
                   help="also sweep 2 pipeline workers (default: full run only)")
    args = p.parse_args(argv)
    try:  # parsed here, so a bad variant fails before the run
        args.overrides = {variant: parse_variant(variant) for variant in args.variant}
    except ValueError as exc:
        p.error(str(exc))
    q = args.quick
    args.modes = args.modes.split(",")
    args.catalogs = (args.catalogs or (HEADLINE if q else "1k,12k,100k,100k-hnsw,1m")).split(",")
    args.step_s = args.step_s or (4.0 if q else 8.0)
    args.drain_s = args.drain_s or (6.0 if q else 10.0)
    args.factor = args.factor or (1.7 if q else 1.5)
    args.ceiling_s = args.ceiling_s or (2.0 if q else 4.0)
    args.two_workers = (not q) if args.two_workers is None else args.two_workers
    return args


def parse_variant(text: str) -> dict[str, object]:
    """A --variant: "field=value,field=value"; a part without "=" continues the value before
    it ("channels=mind,popular" is one field). Raises ValueError for an unknown Settings
    field, so a bad variant fails before the run instead of after its first sweeps."""
    fields: dict[str, str] = {}
    last = None
    for part in text.split(","):
        if "=" in part:
            last, value = part.split("=", 1)
            fields[last] = value
        elif last is None:
            raise ValueError(f"--variant {text!r}: expected FIELD=VALUE first")
        else:
            fields[last] += "," + part
    unknown = set(fields) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"--variant {text!r}: no such setting {sorted(unknown)}")
    return {k: parse_value(v) for k, v in fields.items()}


def parse_value(text: str) -> object:
    """A --variant value: JSON when it parses (false, 0.05, 128), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text
