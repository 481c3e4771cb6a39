"""Fault scenarios: each streams clicks of its own users, injects one fault, checks everything.

Each injector takes the running world and its click traffic, injects one fault and returns a
`Fault`: when it began and ended and what the checks need to know (harness/faults/runner.py
runs a scenario around it).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.faults.attribution import BrokerStop
from harness.faults.checks import read_redis
from harness.faults.poison import flood, item_value
from harness.faults.traffic import ClickTraffic, Sent, producer, send
from harness.faults.world import World
from harness.stack.launch import wait_until

SIGTERM_TIMEOUT_S = 30.0
FREEZE_S = 0.3  # workers frozen before a broker stop, for the committed offsets
REBALANCE_S = 3.0  # a rebalance's join and sync rounds on the local broker


@dataclass
class Options:
    rate: float = 100.0  # valid clicks per second
    users: int = 50  # users per scenario (each gets rate/users clicks a second)
    pre_s: float = 3.0  # streaming before the fault
    post_s: float = 3.0  # streaming after recovery
    outage_s: float = 2.0  # how long a stopped server stays down
    recover_timeout_s: float = 90.0
    idle_s: float = 10.0  # drain: give up after this long without progress
    poison: int = 1200  # bad messages in the flood (2/3 clicks, 1/3 item records)
    seed: int = 7
    max_recovery_s: float = 10.0  # the gate: every partition answers within this of the end


@dataclass
class Fault:
    """What a fault did: when it was injected, when it ended and what the checks need."""

    since: float  # wall clock: the fault is over (server back, new worker started)
    injected_at: float  # wall clock: the fault began
    info: dict[str, Any] = field(default_factory=dict)
    broker: BrokerStop | None = None
    snapshot: dict[int, Any] = field(default_factory=dict)
    handovers: list[tuple[float, float]] = field(default_factory=list)  # from, to: partitions
    # moved without a clean stop (a SIGKILL, a worker joining): a click may be answered twice
    bad: list[tuple[str, Sent]] = field(default_factory=list)
    valid: list[Sent] = field(default_factory=list)


Inject = Callable[[World, ClickTraffic, Options], Fault]


def after_kill(world: World, kill_at: float) -> tuple[float, float]:
    """A SIGKILL moves partitions twice: the killed worker's uncommitted clicks go to another
    owner, and the rebalance once the group notices (session timeout) re-assigns every
    partition, each resuming from its last commit."""
    return kill_at, kill_at + world.settings.session_timeout_s + REBALANCE_S


def worker_sigkill(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
    name, injected = world.main_worker(), time.time()
    info = world.signal_worker(name, signal.SIGKILL)
    return Fault(world.spawn_worker(name), injected, {"stopped": info},
                 handovers=[after_kill(world, injected)])


def worker_sigterm(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
    name, injected = world.main_worker(), time.time()
    info = world.signal_worker(name, signal.SIGTERM, SIGTERM_TIMEOUT_S)
    return Fault(world.spawn_worker(name), injected, {"stopped": info})


def restart(server: str) -> Inject:
    def inject(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
        injected = time.time()
        world.stack.stop_server(server)
        time.sleep(opts.outage_s)
        took = world.stack.start_server(server)
        return Fault(time.time(), injected, {"down_s": opts.outage_s, "start_s": round(took, 2)})
    return inject


def sigterm_in_milvus_outage(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
    injected = time.time()
    world.stack.stop_server("milvus")
    time.sleep(opts.outage_s)  # the worker is now retrying a batch
    name = world.main_worker()
    info = world.signal_worker(name, signal.SIGTERM, SIGTERM_TIMEOUT_S)
    world.stack.start_server("milvus")
    return Fault(world.spawn_worker(name), injected, {"stopped": info})


def broker_restart(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
    """Memory storage: every topic, offset and group is gone after the restart.

    The broker stops mid-stream (clicks it acked but the worker has not consumed yet are gone
    with it). Right before, the workers are frozen for an instant so that the group's committed
    offsets and the recommendations log's end can be read exactly (attribution.py's proof);
    the senders pause while the broker is down (their sends fail), so that the histories read
    after the restart show which of the acked clicks the worker had applied.
    """
    injected = time.time()
    frozen = world.freeze_workers()
    try:
        time.sleep(FREEZE_S)  # what the workers sent before the freeze has landed
        committed = world.committed_offsets()
        recs_end = sum(world.end_offsets(world.settings.recs_topic).values())
        world.stack.stop_server("kafka", kill=True)  # at once: memory storage loses all anyway
        stop_at = time.time()
    finally:
        world.thaw_workers(frozen)
    unread = max(0, recs_end - world.recs.read_in(world.epoch.value))
    world.epoch.bump()
    traffic.pause()
    time.sleep(opts.outage_s)
    took = world.stack.start_server("kafka")
    restarted_at = time.time()
    world.recs.broker_restarted()
    world.dead.broker_restarted()
    time.sleep(3.0)  # a batch the worker held may still be applied and published
    snapshot, _ = read_redis(world.settings.redis_url, traffic.users)
    traffic.resume()
    broker = BrokerStop(stop_at, restarted_at, committed, unread)
    return Fault(time.time(), injected, {"start_s": round(took, 2), "committed": committed,
                                         "recs_unread_at_stop": unread},
                 broker=broker, snapshot=snapshot)


def two_workers_one_killed(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
    old = world.main_worker()
    new_at = time.time()
    new = world.next_name()
    world.spawn_worker(new)
    wait_until(f"{new} ready", lambda: world.log_has(new, "Ready"), 120, world.raise_if_crashed)
    ready_at = time.time()
    joined = ready_at - new_at
    time.sleep(2.0)  # both now hold partitions
    kill_at = time.time()
    info = world.signal_worker(old, signal.SIGKILL)
    return Fault(time.time(), kill_at, {"second_worker_ready_s": round(joined, 2),
                                        "killed": old, "survivor": new, "stopped": info},
                 handovers=[(new_at, ready_at), after_kill(world, kill_at)])


def poison_flood(world: World, traffic: ClickTraffic, opts: Options) -> Fault:
    """Bad clicks and item records (every 10th message a valid item record), as fast as sent."""
    rng = random.Random(opts.seed)
    s = world.settings
    since = time.time()
    prod = producer(s, max_request_size=8 << 20, request_timeout_ms=20_000, linger_ms=5)
    n_items = opts.poison // 3
    bad_msgs = flood(rng, opts.poison - n_items, n_items, world.item_ids[0], time.time(),
                     world.item_vectors.shape[1])
    fault = Fault(since, since)
    topics = {"clicks": s.clicks_topic, "items": s.items_topic}
    for n, (role, label, key, value) in enumerate(bad_msgs):
        record = Sent(topics[role], value, time.time())
        send(prod, world.epoch, record, key)
        fault.bad.append((label, record))
        if n % 10 == 0:
            row = rng.randrange(len(world.item_ids))
            item = world.item_ids[row]
            good = Sent(s.items_topic, item_value(item, world.item_vectors[row]), time.time())
            send(prod, world.epoch, good, str(item).encode())
            fault.valid.append(good)
        if n % 50 == 0:
            time.sleep(0.01)
    prod.flush(timeout=60)
    prod.close(timeout=5)
    for record in [r for _, r in fault.bad] + fault.valid:
        if record.state == "pending":
            record.state, record.error = "failed", "no answer from the broker"
    fault.info = {"flood_s": round(time.time() - since, 2), "valid_items": len(fault.valid)}
    return fault


SCENARIOS: dict[str, Inject] = {
    "worker-sigkill-restart": worker_sigkill,
    "worker-sigterm-restart": worker_sigterm,
    "redis-restart": restart("redis"),
    "milvus-restart": restart("milvus"),
    "sigterm-during-milvus-outage": sigterm_in_milvus_outage,
    "two-workers-one-killed": two_workers_one_killed,
    "poison-flood": poison_flood,
    "broker-restart": broker_restart,
}
QUICK = ("worker-sigkill-restart", "redis-restart", "poison-flood")
