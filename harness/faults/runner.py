"""One fault scenario from start to verdict.

A scenario sends valid clicks at a steady rate, injects its fault after `pre_s`, waits until
every partition answers a click sent after the fault (or after the restart of what it
stopped), keeps sending for `post_s`, stops, waits for the stragglers, then checks every click
(harness/faults/checks.py). Each returns one result dict; `failed` names the checks that failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.faults.checks import (
    EXAMPLES,
    ClickRun,
    Position,
    check_bad_inputs,
    check_clicks,
    read_redis,
)
from harness.faults.recovery import from_injection, recovery_s
from harness.faults.scenarios import SCENARIOS, Fault, Options
from harness.faults.traffic import ClickTraffic
from harness.faults.world import World
from streams.recall.core import fusion_config
from streams.records import DeadLetter


def run(world: World, name: str, number: int, opts: Options) -> dict[str, Any]:
    """One scenario on its own users; returns its result with `failed` checks."""
    started = time.time()
    users = range(1_000_000 * number + 1, 1_000_000 * number + 1 + opts.users)
    first_rec, first_dead = len(world.recs.recs), len(world.dead.dead)
    crashes_before, agent_crashes_before = len(world.crashes), len(world.agent_crashes())
    traffic = ClickTraffic(world.settings, world.epoch, users, world.item_ids, opts.rate,
                           seed=opts.seed + number)
    traffic.start()
    _sleep(world, opts.pre_s)
    fault = SCENARIOS[name](world, traffic, opts)
    parts = world.settings.partitions

    def recovered() -> bool:
        _, missing = recovery_s(traffic.sent, world.recs.recs[first_rec:], fault.since, parts,
                                time.time())
        sent_on = {c.partition for c in traffic.sent
                   if c.state == "acked" and c.sent_at >= fault.since}
        return not missing and len(sent_on) == parts and time.time() - fault.since > 1

    _wait(world, recovered, opts.recover_timeout_s)
    _sleep(world, opts.post_s)
    traffic.finish()
    _drain(world, traffic, fault, first_rec, first_dead, opts.idle_s)
    recs = world.recs.recs[first_rec:]
    final, seen = read_redis(world.settings.redis_url, users)
    s = world.settings
    if fault.broker is not None:
        fault.broker.new_log = world.read_back(s.clicks_topic, list(users),
                                               ("user_id", "item_id", "ts"))
    collected = {(r.rec.user_id, r.rec.click_item, r.rec.click_ts) for r in recs}
    in_log = world.read_back(s.recs_topic, list(users), ("user_id", "click_item", "click_ts")) \
        if any(c.state == "acked" and c.key not in collected for c in traffic.sent) else set()
    run_data = ClickRun(traffic.sent, recs, final, s.history_len, seen,
                        s.seen_max if s.exclude_seen else 0, fault.broker, fault.snapshot,
                        fault.handovers, in_log)
    checks = check_clicks(run_data, world.oracle.expect, fusion_config(s))
    result: dict[str, Any] = {"name": name, **checks}
    examples = result.pop("examples")
    rec_s, missing = recovery_s(traffic.sent, recs, fault.since, parts, time.time())
    first, last, measured = from_injection(traffic.sent, recs, fault.injected_at, fault.since,
                                           sendable=fault.broker is None)
    result.update(recovery_s=rec_s, unrecovered_partitions=missing, recovery_first_s=first,
                  recovery_last_s=last, recovery_clicks=measured)
    if fault.bad or fault.valid:
        dead = world.dead.dead[first_dead:]
        bad = check_bad_inputs(fault.bad, dead, fault.valid + list(traffic.sent),
                               _dead_in_log(world, fault, dead))
        examples.update(bad.pop("examples"))
        result.update(bad)
    if fault.bad:
        result["poison_items_removed"] = world.remove_poison_items()
    world.check_workers()
    result["worker_crashes_unplanned"] = len(world.crashes) - crashes_before
    agent_crashes = world.agent_crashes()[agent_crashes_before:]
    result["agent_crashes"] = len(agent_crashes)
    examples["agent_crashes"] = agent_crashes[:EXAMPLES]
    stopped = fault.info.get("stopped", {})
    result["sigterm_unclean"] = int(stopped.get("signal") == "SIGTERM" and (
        stopped["exit_code"] != 0 or stopped["timed_out"]))
    result.update(info={**fault.info, "injected_at": fault.injected_at, "ended_at": fault.since,
                        "handovers": fault.handovers}, elapsed_s=round(time.time() - started, 1),
                  examples=examples, failed=failed_checks(result, opts.max_recovery_s))
    return result


def _dead_in_log(world: World, fault: Fault, dead: Sequence[tuple[int, DeadLetter]]
                 ) -> set[Position]:
    """Positions of the bad messages the collector has no dead letter for but the dead-letter
    topic's log has (the collector missed the record); read only when some are missing."""
    lettered = {(e, d.topic, d.partition, d.offset) for e, d in dead}
    if all(s.position in lettered for _, s in fault.bad if s.state == "acked"):
        return set()
    epoch = world.epoch.value

    def position(value: bytes) -> Position:
        d = DeadLetter.parse(value)
        return epoch, d.topic, d.partition, d.offset

    return world.read_log(world.settings.dead_letter_topic, position)


def failed_checks(r: dict[str, Any], max_recovery_s: float) -> list[str]:
    zero = ("clicks_lost", "history_errors", "history_duplicates", "seen_errors",
            "recommendation_errors", "recommendations_for_unsent_clicks",
            "hijacked_recommendations", "duplicates_unexplained", "duplicate_dead_letters",
            "worker_crashes_unplanned", "agent_crashes", "valid_inputs_dead_lettered",
            "sigterm_unclean")
    out = [k for k in zero if r.get(k, 0)]
    if r["recovery_s"] > max_recovery_s or r["unrecovered_partitions"]:
        out.append("recovery_s")
    if r.get("bad_inputs_dead_lettered", 0) < r.get("bad_inputs_sent", 0):
        out.append("bad_inputs_dead_lettered")
    return out


def _sleep(world: World, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        world.check_workers()
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


def _wait(world: World, done: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        world.check_workers()
        if done():
            return True
        time.sleep(0.2)
    return False


def _drain(world: World, traffic: ClickTraffic, fault: Fault, first_rec: int, first_dead: int,
           idle_s: float) -> None:
    """Wait until every acked click is answered (and every acked bad message dead-lettered),
    or nothing new arrived for `idle_s`."""
    want = {c.key for c in traffic.sent if c.state == "acked"}
    bad = {r.position for _, r in fault.bad if r.state == "acked"}
    last, seen, deadline = time.monotonic(), -1, time.monotonic() + 180
    while time.monotonic() < min(last + idle_s, deadline):
        world.check_workers()
        recs, dead = world.recs.recs[first_rec:], world.dead.dead[first_dead:]
        got = {(r.rec.user_id, r.rec.click_item, r.rec.click_ts) for r in recs}
        lettered = {(e, d.topic, d.partition, d.offset) for e, d in dead}
        if want <= got and bad <= lettered:
            return
        if len(recs) + len(dead) != seen:
            seen, last = len(recs) + len(dead), time.monotonic()
        time.sleep(0.3)
