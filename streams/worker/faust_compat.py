"""Every use of Faust's and aiokafka's private internals, written for faust-streaming 0.15.3
(with mode-streaming) and aiokafka 0.14.0: the versions pinned in requirements.txt (PINNED).

The rest of the worker calls only the names below. `RELIED_ON` lists each private name (and
each patched public one) with its shape and where Faust or aiokafka uses it, and
tests/streams/worker/test_faust_compat.py checks that list against the installed packages'
real classes: run it before moving either pin.

- `lower_fetch_wait`: Faust hard-codes aiokafka's fetch_max_wait_ms=1500 (the broker holds
  each fetch that long); the worker's consumers get `Settings.fetch_max_wait_ms` instead.
- `App`: a stop waits at most `stop_wait_s` for in-flight batches (Faust's private
  `_consumer_wait_empty`).
- `Worker`: SIGTERM and SIGINT also call a hook (the worker's hard exit deadline).
- `forget_commits`, `guard_commits`, `committed_offsets`: the consumer's private ack and
  commit bookkeeping, edited after a broker reset and read for the consumer lag.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiokafka
import faust
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from streams.worker.epochs import CommitGuard

PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


@dataclass(frozen=True)
class Internal:
    """A name of `owner` this module relies on: its shape (as `shape_of` tells it), and
    `used_by`, "module:qualname" of Faust's or aiokafka's code that uses it as self.<name>."""

    owner: type  # methods are looked up on the class, other attributes on an instance
    name: str
    shape: str
    used_by: str
    why: str


#: The consumer's ack and commit bookkeeping (per TopicPartition) that `forget_commits` edits.
BOOKKEEPING = ("_committed_offset", "_acked", "_acked_index", "_gap")
CONSUMER = "faust.transport.consumer:Consumer"
SIGNALS = "mode.worker:Worker._install_signal_handlers_unix"  # mode: Faust's service library

RELIED_ON: tuple[Internal, ...] = (
    Internal(AIOKafkaConsumerThread, "_create_worker_consumer", "def(transport)",
             "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_consumer",
             "builds the group's aiokafka consumer; wrapped by lower_fetch_wait"),
    Internal(aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms", "int",
             "aiokafka.consumer.consumer:AIOKafkaConsumer.start",
             "set by lower_fetch_wait, passed to the Fetcher"),
    Internal(faust.App, "_consumer_wait_empty", "async def(consumer, logger)",
             "faust.app.base:App._stop_consumer",
             "waits for in-flight events; App bounds it at a stop"),
    Internal(faust.Worker, "_on_sigterm", "def()", SIGNALS,
             "the SIGTERM handler; Worker calls its hook first"),
    Internal(faust.Worker, "_on_sigint", "def()", SIGNALS,
             "the SIGINT handler; Worker calls its hook first"),
    Internal(Consumer, "commit", "async def(topics, start_new_transaction)", CONSUMER,
             "public, but replaced on the instance by guard_commits"),
    Internal(Consumer, "_committed_offset", "defaultdict[NoneType]", f"{CONSUMER}.ack",
             "last committed offset per TP: acks below it are ignored"),
    Internal(Consumer, "_acked", "defaultdict[list]", f"{CONSUMER}.ack",
             "acked offsets per TP, not committed yet"),
    Internal(Consumer, "_acked_index", "defaultdict[set]", f"{CONSUMER}.ack",
             "the same offsets as a set"),
    Internal(Consumer, "_gap", "defaultdict[IntervalTree]", f"{CONSUMER}._new_offset",
             "offset gaps per TP"),
)


def shape_of(value: Any) -> str:
    """A short description of a method's signature or an attribute's type, as RELIED_ON has."""
    if callable(value) and not isinstance(value, type):
        params = [p for p in inspect.signature(value).parameters if p != "self"]
        prefix = "async def" if inspect.iscoroutinefunction(value) else "def"
        return f"{prefix}({', '.join(params)})"
    if isinstance(value, defaultdict) and value.default_factory is not None:
        return f"defaultdict[{type(value.default_factory()).__name__}]"
    return type(value).__name__


_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer


def lower_fetch_wait(fetch_max_wait_ms: int) -> None:
    """Give every Faust worker consumer created from now on this fetch wait (process-wide)."""

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = _original_create_worker_consumer(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by aiokafka's Fetcher at start()
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = (  # type: ignore[method-assign]
        create_worker_consumer
    )


class App(faust.App):
    """faust.App whose stop waits at most `stop_wait_s` for in-flight batches.

    Rebalances still wait for them (Faust's `stream_wait_empty`). At a stop, a batch that
    waits for a down server is given up: its agent is cancelled, and as the agents hold their
    events until published (`streams.worker.acks.hold`), none of its clicks is committed.
    """

    stop_wait_s = 2.0

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        if not self.should_stop:
            await super()._consumer_wait_empty(consumer, logger)
            return
        # Not asyncio.wait_for: Faust's wait loop swallows the cancellation, and wait_for would
        # wait for it to end. The loop ends by itself once the consumer stops.
        waiting = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        done, _ = await asyncio.wait({waiting}, timeout=self.stop_wait_s)
        if not done:
            waiting.cancel()
            logger.warning("stopping without the batches still in flight after %.1fs (a server "
                           "is down?): their clicks stay uncommitted and are redelivered",
                           self.stop_wait_s)


class Worker(faust.Worker):
    """faust.Worker whose SIGTERM and SIGINT also call `on_signal("SIGTERM"/"SIGINT")` first,
    without Faust's terminal spinner."""

    def __init__(self, app: faust.App, on_signal: Callable[[str], None],
                 **kwargs: object) -> None:
        super().__init__(app, **kwargs)  # type: ignore[arg-type]
        self.on_signal = on_signal
        # At a log level of WARNING or above, Faust's spinner sets the root logger to DEBUG
        # (to animate on every record): every debug call in Faust and aiokafka then builds a
        # LogRecord that no handler prints, 4% of the pass-through worker's busy samples
        # (docs/serving-speed.md, "Where the worker's time goes").
        self.spinner = None

    def _on_sigterm(self) -> None:
        self.on_signal("SIGTERM")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self.on_signal("SIGINT")
        super()._on_sigint()


def forget_commits(consumer: Any, topic: str, partitions: Iterable[int] | None = None) -> None:
    """After a broker reset, forget what Faust acked and committed on `topic`'s old log.

    Faust only records acks of offsets above the last one it committed for a partition; when
    the log starts again at 0 it would never commit again (and a restart would replay every
    click since the reset), and a stop would wait for acks it ignores. Acked offsets of the
    old log must not be committed to the new one either.
    """
    wanted = None if partitions is None else set(partitions)
    for state in (getattr(consumer, name) for name in BOOKKEEPING):
        for tp in [tp for tp in state if tp.topic == topic
                   and (wanted is None or tp.partition in wanted)]:
            del state[tp]


def guard_commits(consumer: Any, guard: CommitGuard) -> None:
    """Before each of Faust's commits, drop the acks of partitions read on a replaced log."""
    commit = consumer.commit

    async def guarded(*args: Any, **kwargs: Any) -> bool:
        stale = await asyncio.get_running_loop().run_in_executor(None, guard.stale)
        if stale is None:
            return False  # the broker cannot tell now: nothing could be committed anyway
        if stale:
            forget_commits(consumer, guard.topic, stale)
        return bool(await commit(*args, **kwargs))

    consumer.commit = guarded


def committed_offsets(consumer: Any) -> dict[TP, int | None]:
    """A copy of the offsets this consumer last committed (or found committed), per TP."""
    return dict(getattr(consumer, "_committed_offset", {}))
