"""Liveness and readiness: /healthz (the process answers) and /readyz (its servers answer).

A `Readiness` runs one probe per server the process uses, each a blocking call (a Redis
PING, a Milvus has_collection, a Kafka metadata request) in its own thread with a timeout, so
the caller's event loop never blocks and one hung server cannot delay the others' answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka.admin import KafkaAdminClient

from streams.security import kafka_python_kwargs
from streams.settings import Settings

Probe = Callable[[], None]  # returns when the server answered, raises otherwise


@dataclass(frozen=True)
class Report:
    """Per server "ok" or what went wrong; `ready` when every one is ok."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())

    def up(self) -> dict[str, bool]:
        return {name: v == "ok" for name, v in self.checks.items()}

    def body(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "unavailable", "checks": self.checks}


class Readiness:
    """Runs `probes` concurrently, each bounded by `timeout_s`."""

    def __init__(self, probes: Mapping[str, Probe], timeout_s: float = 3.0) -> None:
        self.probes = dict(probes)
        self.timeout_s = timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(len(self.probes), 1), thread_name_prefix="readiness")
        self._runner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="readyz")
        self._running: dict[str, concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()

    def check(self) -> Report:
        """Blocking: every probe's outcome within `timeout_s`.

        A probe still running from an earlier check is waited for again, not started twice:
        a server that hangs holds one thread, however often /readyz is asked.
        """
        with self._lock:
            for name, probe in self.probes.items():
                if name not in self._running or self._running[name].done():
                    self._running[name] = self._pool.submit(probe)
            futures = dict(self._running)
        concurrent.futures.wait(futures.values(), timeout=self.timeout_s)
        checks = {}
        for name, future in futures.items():
            if not future.done():
                checks[name] = f"no answer within {self.timeout_s:g}s"
            elif future.exception() is not None:
                checks[name] = f"{type(future.exception()).__name__}: {future.exception()}"[:300]
            else:
                checks[name] = "ok"
        return Report(checks)

    async def acheck(self) -> Report:
        """`check` from async code, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._runner, self.check)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._runner.shutdown(wait=False, cancel_futures=True)


class BrokerProbe:
    """A metadata request to the brokers with a client of its own (kafka-python, lazily made)."""

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        self.settings = settings
        self.timeout_ms = int(timeout_s * 1000)
        self._lock = threading.Lock()
        self._admin: Any = None

    def __call__(self) -> None:
        with self._lock:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    request_timeout_ms=self.timeout_ms, bootstrap_timeout_ms=self.timeout_ms,
                    client_id="recall-readiness",
                    **kafka_python_kwargs(self.settings))
            try:
                self._admin.describe_cluster()
            except Exception:
                self._close()  # reconnect from scratch next time
                raise

    def _close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            finally:
                self._admin = None

    def close(self) -> None:
        with self._lock:
            self._close()


def model_probe(version: Callable[[], str]) -> Probe:
    def probe() -> None:
        if not version():
            raise RuntimeError("no model loaded")

    return probe
