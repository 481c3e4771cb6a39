"""The worker's metrics and health server: Faust's web server with /metrics, /healthz, /readyz.

Faust's own Prometheus sensor (`faust_*` metrics: messages in and out, send and commit
latency, rebalances) is registered into the worker's registry, so one /metrics answers both.
A timer samples what no event reports: consumer lag per assigned partition (end offset minus
committed offset), items in Milvus, the loaded model's version and each server's readiness.
`web_port_problem` tells before the start that the port is taken (a second worker on the
host, say), naming the setting to change.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import faust
from faust import web
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import TP

from streams.observe.health import BrokerProbe, Readiness, model_probe
from streams.observe.metrics import WorkerMetrics
from streams.recall.core import Core
from streams.settings import Settings
from streams.worker.faust_compat import committed_offsets

log = logging.getLogger(__name__)


def readiness(core: Core, settings: Settings) -> Readiness:
    """Probes of what the worker needs: the broker, Redis, Milvus and a loaded model."""
    assert core.history is not None
    broker = BrokerProbe(settings, settings.readiness_timeout_s)
    return Readiness({"kafka": broker, "redis": core.history.ping, "milvus": core.index.ping,
                      "model": model_probe(lambda: core.model.version)},
                     settings.readiness_timeout_s)


async def consumer_lag(app: faust.App, topics: set[str]) -> dict[tuple[str, int], int]:
    """End offset minus committed offset of the partitions of `topics` assigned to this worker."""
    consumer = app.consumer
    assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    if not assigned:
        return {}
    ends = await consumer.highwaters(*assigned)
    committed: dict[TP, int | None] = committed_offsets(consumer)
    missing = [tp for tp in assigned if committed.get(tp) is None]
    if missing:  # nothing committed by this group yet: it starts at the earliest offset
        committed.update(await consumer.earliest_offsets(*missing))
    return {(tp.topic, tp.partition): int(ends[tp]) - int(committed[tp] or 0)
            for tp in assigned if tp in ends and ends[tp] is not None}


def web_port_problem(host: str, port: int) -> str | None:
    """Why the web server could not listen on `host`:`port` now; None if it can (or port 0).

    Binds (and closes) a socket per address as aiohttp's server will, with SO_REUSEADDR: only
    a socket listening there (another worker, say) makes it fail, not old connections.
    """
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"RECALL_WORKER_WEB_HOST={host!r} does not resolve ({exc})"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's create_server
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return (f"port {port} on {host} is already in use (another worker on this "
                            f"host?): set RECALL_WORKER_WEB_PORT to a free port, or to 0 for "
                            f"no metrics server")
                return (f"cannot listen on {host}:{port} ({exc.strerror}): check "
                        f"RECALL_WORKER_WEB_HOST and RECALL_WORKER_WEB_PORT")
    return None


def attach(app: faust.App, core: Core, settings: Settings, metrics: WorkerMetrics,
           stack: ExitStack) -> None:
    """Serve /metrics, /healthz and /readyz on worker_web_port (0: no server, no sampling)."""
    if settings.worker_web_port == 0:
        return
    setup_prometheus_sensors(app, pattern="/metrics", registry=metrics.registry,
                             name_prefix="faust")
    ready = readiness(core, settings)
    stack.callback(ready.close)
    sampler = ThreadPoolExecutor(1, thread_name_prefix="metrics")
    stack.callback(sampler.shutdown, wait=False, cancel_futures=True)
    metrics.set_model(core.model.version)
    topics = {settings.clicks_topic, settings.items_topic}

    @app.page("/healthz")
    async def healthz(self: web.View, request: web.Request) -> web.Response:
        return self.json({"status": "ok", "model_version": core.model.version})

    @app.page("/readyz")
    async def readyz(self: web.View, request: web.Request) -> web.Response:
        report = await ready.acheck()
        metrics.set_servers(report.up())
        return self.json(report.body(), status=200 if report.ready else 503)

    @app.timer(settings.metrics_interval_s, name="sample_metrics")
    async def sample_metrics() -> None:
        loop = asyncio.get_running_loop()
        metrics.set_model(core.model.version)
        metrics.set_servers((await ready.acheck()).up())
        try:
            metrics.set_lag(await consumer_lag(app, topics))
        except Exception as exc:  # broker away: keep the last values
            log.debug("consumer lag not sampled: %r", exc)
        try:
            metrics.milvus_items.set(await loop.run_in_executor(sampler, core.index.count))
        except Exception as exc:
            log.debug("milvus item count not sampled: %r", exc)
