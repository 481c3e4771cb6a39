"""Contract of streams/worker/faust_compat.py with the INSTALLED faust-streaming and aiokafka.

Real classes and a real (never started) app, no fakes: each private name faust_compat relies
on (its RELIED_ON list) must still exist with the same shape, and Faust or aiokafka must
still use it where faust_compat says. A failure here means a pin moved: read the changed
internals before touching the worker.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from faust.types import TP

from streams.errors import ServiceUnavailable
from streams.settings import Settings
from streams.worker import faust_compat
from streams.worker.epochs import CommitGuard, LogEpochs
from streams.worker.faust_compat import (
    BOOKKEEPING,
    PINNED,
    RELIED_ON,
    Internal,
    forget_commits,
    guard_commits,
    lower_fetch_wait,
    shape_of,
)
from tests.streams.worker.conftest import consumer, event

ROOT = Path(__file__).resolve().parents[3]
PRIVATE = re.compile(r"(\w+|\))\.(_[A-Za-z]\w*)")


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, pinned = line.partition("==")
        if sep:
            pins[name.strip()] = pinned.strip()
    return pins


def test_pinned_versions_are_the_requirements_and_the_installed_ones() -> None:
    pins = requirement_pins()
    for package, pinned in PINNED.items():
        assert pins[package] == pinned, f"requirements.txt pins {package} {pins[package]}"
        assert version(package) == pinned, f"installed {package} {version(package)}"
        assert f"{package} {pinned}" in (faust_compat.__doc__ or "").replace("\n", " ")


async def real_aiokafka_consumer(app: faust.App) -> aiokafka.AIOKafkaConsumer:
    """The aiokafka consumer Faust builds for the app's group (needs a running loop)."""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    return thread._create_consumer(asyncio.get_running_loop())


def live(internal: Internal, app: faust.App) -> Any:
    """The installed object `internal` names: on its class for methods, else on an instance."""
    if internal.shape.startswith(("def(", "async def(")):
        return getattr(internal.owner, internal.name)
    if internal.owner is aiokafka.AIOKafkaConsumer:
        async def build() -> Any:
            consumer = await real_aiokafka_consumer(app)
            try:
                return getattr(consumer, internal.name)
            finally:
                await consumer.stop()
        return asyncio.run(build())
    assert isinstance(app.consumer, internal.owner)
    return getattr(app.consumer, internal.name)


@pytest.mark.parametrize("internal", RELIED_ON, ids=lambda i: f"{i.owner.__name__}.{i.name}")
def test_each_relied_on_name_exists_with_its_shape(internal: Internal,
                                                   faust_app: faust.App) -> None:
    assert shape_of(live(internal, faust_app)) == internal.shape


@pytest.mark.parametrize("internal", RELIED_ON, ids=lambda i: f"{i.owner.__name__}.{i.name}")
def test_faust_or_aiokafka_still_uses_each_name_where_listed(internal: Internal) -> None:
    module, _, qualname = internal.used_by.partition(":")
    user: Any = importlib.import_module(module)
    for part in qualname.split("."):
        user = getattr(user, part)
    assert f"self.{internal.name}" in inspect.getsource(user)


def test_relied_on_lists_every_private_name_faust_compat_uses() -> None:
    source = inspect.getsource(faust_compat)
    used = {m.group(2) for m in PRIVATE.finditer(source) if m.group(1) not in ("self", "cls")}
    used |= {name for name in re.findall(r'"(_[a-z]\w*)"', source)}
    used.discard("_original_create_worker_consumer")  # faust_compat's own
    used -= {m.group(2) for i in RELIED_ON for m in PRIVATE.finditer(i.used_by)}  # named only
    listed = {internal.name for internal in RELIED_ON}
    assert used <= listed, f"not in RELIED_ON: {sorted(used - listed)}"
    assert set(BOOKKEEPING) <= listed


def test_no_other_worker_module_touches_private_names() -> None:
    found = []
    for path in sorted((ROOT / "streams" / "worker").rglob("*.py")):
        if path.name == "faust_compat.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{path.name}:{number}: {m.group(0)}" for m in PRIVATE.finditer(line)
                      if m.group(1) not in ("self", "cls") and m.group(0) != "os._exit"]
    assert not found, "private internals belong in faust_compat: " + ", ".join(found)


def test_lower_fetch_wait_reaches_the_consumer_faust_builds(faust_app: faust.App) -> None:
    async def fetch_wait() -> int:
        consumer = await real_aiokafka_consumer(faust_app)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    try:
        lower_fetch_wait(7)
        assert asyncio.run(fetch_wait()) == 7
    finally:
        lower_fetch_wait(Settings().fetch_max_wait_ms)  # the default every test process has


def test_forget_commits_lets_faust_record_acks_of_a_new_log(faust_app: faust.App) -> None:
    """Finding 7: after a broker reset Faust ignored acks below the old log's committed offset."""
    real = consumer(faust_app)
    clicks, items = TP("clicks", 0), TP("items", 0)
    real._committed_offset.update({clicks: 2476, items: 9})  # commits on the old logs
    assert not real.ack(event(faust_app, "clicks", 0, 3).message)  # ignored: below 2476
    assert real.ack(event(faust_app, "items", 0, 10).message)
    forget_commits(real, "clicks")
    assert real._committed_offset[clicks] is None and real._committed_offset[items] == 9
    assert real._acked[items] == [10]
    assert real.ack(event(faust_app, "clicks", 0, 4).message)  # the new log's acks count
    assert real._acked[clicks] == [4]


def test_guarded_commits_run_only_when_the_guard_allows(faust_app: faust.App) -> None:
    real = consumer(faust_app)
    topic_ids: list[str | Exception] = ["log-1", ServiceUnavailable("away"), "log-2"]
    committed: list[int] = []

    def lookup(topic: str) -> str:
        answer = topic_ids.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def commit() -> bool:  # instead of a commit to the broker
        committed.append(len(committed))
        return True

    clicks = TP("clicks", 0)
    real._committed_offset[clicks] = 40
    real.ack(event(faust_app, "clicks", 0, 41).message)
    epochs = LogEpochs(lambda topic: "log-1")
    epochs.epochs("clicks", [(0, 41)])  # partition 0 is read at log-1
    real.commit = commit  # type: ignore[method-assign,assignment]
    guard_commits(real, CommitGuard(lookup, epochs, "clicks"))

    async def three() -> list[bool]:
        return [await real.commit() for _ in range(3)]

    assert asyncio.run(three()) == [True, False, True]
    assert committed == [0, 1]  # not while the broker cannot tell; after dropping stale acks
    assert real._acked[clicks] == [] and real._committed_offset[clicks] is None


def test_worker_calls_its_hook_on_stop_signals(faust_app: faust.App) -> None:
    """faust_compat.Worker's handlers run the hook, then Faust's own (a scheduled stop)."""
    signals: list[str] = []

    async def signal_twice() -> None:
        worker = faust_compat.Worker(faust_app, signals.append, loglevel="warning",
                                     redirect_stdouts=False)
        worker._on_sigterm()
        worker._on_sigint()
        stopping = worker._signal_stop_future  # Faust scheduled its stop: let it run
        assert stopping is not None
        await asyncio.wait_for(stopping, 10)

    asyncio.run(signal_twice())
    assert signals == ["SIGTERM", "SIGINT"]


def test_worker_leaves_the_root_logger_level_alone_at_warning(faust_app: faust.App) -> None:
    """Faust's spinner would set the root logger to DEBUG (a LogRecord per debug call)."""
    worker = faust_compat.Worker(faust_app, lambda _: None, loglevel="warning",
                                 redirect_stdouts=False)
    logger = logging.getLogger("test_faust_compat.root")
    logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)
    worker.on_setup_root_logger(logger, logging.WARNING)
    assert worker.spinner is None and logger.level == logging.WARNING
