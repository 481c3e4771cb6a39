"""`make online-eval DATA=...`: prequential ("test then train") quality on a replayed stream
through the real local stack.

Per seed: MIND trained on the clicks before the time cut, the stack started with those
histories in Redis and item vectors in Milvus, the worker (recording each channel's list) and
the continuous trainer (`python -m streams.training`) started, the future replayed at up to
--rate with the data's timestamps, each user waiting for the recommendation of their previous
click before sending the next (a closed loop per user, as real users), every recommendation
collected. Each future click of a user who clicked before is scored on the list served after
that user's previous click, for six variants: live MostPopular, `batch` (initial model,
histories frozen at the cut), `realtime` (initial model, live histories), and from what the
worker served: `continuous` (its MIND channel, with the trainer's versions), `itemcf` (its
co-occurrence channel filled with its popularity channel) and `served` (the fused list).

The learning watermark (off with --no-watermark): the worker's co-occurrence counts and the
trainer learn a click only once every click with an earlier timestamp has been scored, so no
served list comes from counts or a model holding a later click; the leak check counts the
served lists that did. Writes ONLINE_OUT (JSON), a .png and a .md beside it; last line
`ONLINE {json}`.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from harness.online.data import cut, read_clicks, user_sequences
from harness.online.report import combine, summary_line
from harness.online.run import run_seed
from harness.online.table import write
from harness.online.variants import evaluated_points, most_popular_ranks
from harness.online.world import check_trainer
from harness.options import EnvOptions, options_parser
from harness.stack.servers import StackError
from streams.settings import TrainerSettings


class OnlineEnv(EnvOptions):
    """`make online-eval` options (ONLINE_* variables)."""

    model_config = SettingsConfigDict(env_prefix="ONLINE_")

    data: str | None = Field(None, description="user,item,timestamp CSV, optional header")
    cut: float = Field(0.5, description="fraction of the clicks before the time cut")
    rate: float = Field(200.0, description="most clicks/s sent to Kafka; each user's next click "
                        "waits for the recommendation of their previous one")
    window: int = Field(2000, description="how far (clicks in data order) other users' clicks "
                        "may run ahead of a user waiting for a recommendation")
    ahead_s: float = Field(3600.0, description="no click is sent more than this much data time "
                           "(seconds) after W, the smallest data time of the clicks not yet "
                           "scored, unless the replay falls behind --replay-minutes: under the "
                           "watermark the learners wait for the slowest user, so users running "
                           "ahead get lists that are stale by up to the bound; inf: no bound")
    replay_minutes: float = Field(15.0, description="the bound above doubles each second while "
                                  "the replay is behind a steady pace that sends the future in "
                                  "this many minutes, and halves back while ahead of it; 0: a "
                                  "fixed bound")
    seeds: str = Field("1", description="comma list of training seeds, one full run each")
    out: str = Field("online-results.json", description="JSON result; .png and .md beside it")
    slices: int = Field(10, description="equal-count slices of the evaluated clicks for HR@50 "
                        "over data time")
    export_every: int = Field(1000, ge=0, description="the trainer exports after every this "
                              "many learned clicks, passed as RECALL_ONLINE_EXPORT_EVERY; 0: "
                              "every --export-s seconds instead")
    export_s: float = Field(10.0, description="the trainer's export period in seconds when "
                            "--export-every is 0, passed as RECALL_ONLINE_EXPORT_S")
    no_watermark: bool = Field(False, description="learners learn every click at once, even one "
                               "later than clicks still to be scored (the leak the watermark "
                               "prevents, to measure it)")
    open_loop: bool = Field(False, description="send at --rate without waiting for "
                            "recommendations (a load test of the worker and the trainer; a "
                            "user's clicks may then share a worker batch)")
    no_trainer: bool = Field(False, description="no continuous trainer: `continuous` is then "
                             "the realtime worker, flagged")
    limit: int = Field(0, ge=0, description="only the first N clicks in time order, for a quick "
                       "check; 0: all")
    train_minutes: float = Field(3.0, description="time cap of the initial training")
    timeout_s: float = Field(120.0, description="after the replay, give up on missing "
                             "recommendations after this many seconds without a new one")
    workdir: str = Field(".stack/online-eval", description="stack, logs and models, one dir per "
                         "seed, emptied first")


def trainer_settings() -> dict[str, Any]:
    """The learning settings the spawned trainer reads (it inherits this environment)."""
    return TrainerSettings().model_dump(
        include={"online_batch", "online_gate", "online_sparse", "online_warmup_steps"})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = options_parser("harness.online", __doc__, OnlineEnv())
    args = p.parse_args(argv)
    if args.data is None:
        p.error("--data (or ONLINE_DATA) is required")
    args.limit = args.limit or None
    args.seed_list = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    if not args.seed_list:
        p.error("--seeds needs at least one seed")
    if args.export_every < 0:
        p.error("--export-every must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs every connect
    if not args.no_trainer:
        try:
            check_trainer()
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    started = time.monotonic()
    clicks = read_clicks(args.data, args.limit)
    timeline = cut(clicks, args.cut)
    points = evaluated_points(timeline)
    seqs = user_sequences(timeline)
    known = timeline.known
    print(f"data {args.data}: {len(clicks)} clicks; cut at {timeline.cut_ts:.0f}: "
          f"{len(timeline.past)} past, {len(timeline.future)} future, {len(points)} evaluated "
          f"({int(points.new.sum())} on new items)", flush=True)
    most_popular = most_popular_ranks(timeline, points, seqs)
    try:
        runs = [run_seed(args, seed, timeline, points, seqs, most_popular)
                for seed in args.seed_list]
    except StackError as exc:  # a server, the worker or the trainer died or never got ready
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result: dict[str, Any] = {
        "data": str(args.data), "cut": args.cut, "cut_ts": timeline.cut_ts,
        "limit": args.limit, "past_clicks": len(timeline.past),
        "future_clicks": len(timeline.future), "evaluated_clicks": len(points),
        "new_item_share": sum(c.item not in known for c in timeline.future)
        / len(timeline.future),
        "rate": args.rate, "window": args.window,
        "ahead_s": None if math.isinf(args.ahead_s) else args.ahead_s,
        "replay_minutes": args.replay_minutes,
        "open_loop": args.open_loop,
        "watermark": not args.no_watermark, "export_every": args.export_every,
        "export_s": args.export_s,
        "trainer": None if args.no_trainer else "streams.training",
        "trainer_settings": None if args.no_trainer else trainer_settings(),
        "seeds": args.seed_list,
        **combine(runs), "runs": runs,
    }
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    for path in write(result, Path(args.out)):
        print(f"wrote {path}")
    print(summary_line(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
