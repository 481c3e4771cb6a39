"""The API's /metrics, /healthz and /readyz, request metrics, and a sampler thread.

/healthz: the process answers. /readyz: what the API uses answers (Milvus, a loaded model;
the API reads no histories and sends no events, so Redis and Kafka are not its to check),
each probe in a thread with RECALL_READINESS_TIMEOUT_S. None of the three needs the API token.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.observe.health import Readiness, model_probe
from streams.observe.metrics import ApiMetrics
from streams.recall.core import Core

log = logging.getLogger(__name__)


def api_readiness(core: Core) -> Readiness:
    return Readiness({"milvus": core.index.ping, "model": model_probe(lambda: core.model.version)},
                     core.settings.readiness_timeout_s)


class RequestMetrics:
    """ASGI middleware: requests by route and status, latency by route (unknown paths: other)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, paths: set[str]) -> None:
        self.app, self.metrics, self.paths = app, metrics, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.paths else "other"
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.request_seconds.labels(path).observe(time.perf_counter() - started)


def _paths(routes: list[BaseRoute]) -> set[str]:
    return {str(getattr(route, "path", "")) for route in routes} - {""}


def add_observability(api: FastAPI, core: Core, metrics: ApiMetrics,
                      readiness: Readiness) -> None:
    """Routes /metrics, /healthz, /readyz and the (outermost) request-metrics middleware."""

    @api.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers; never needs the token."""
        return {"status": "ok", "model_version": core.model.version}

    @api.get("/readyz", responses={503: {"description": "a server is not reachable"}})
    async def readyz() -> JSONResponse:
        """Readiness: Milvus answers and a model is loaded; never needs the token."""
        report = await readiness.acheck()
        metrics.set_servers(report.up())
        return JSONResponse(report.body(), status_code=200 if report.ready else 503)

    api.add_middleware(RequestMetrics, metrics=metrics, paths=_paths(api.routes))


def sample(core: Core, metrics: ApiMetrics, readiness: Readiness) -> None:
    """What no request reports: model version, items in Milvus, readiness of each server."""
    metrics.set_model(core.model.version)
    metrics.set_servers(readiness.check().up())
    try:
        metrics.milvus_items.set(core.index.count())
    except Exception as exc:
        log.debug("milvus item count not sampled: %r", exc)


def watch_metrics(core: Core, metrics: ApiMetrics, readiness: Readiness,
                  stop: threading.Event) -> threading.Thread:
    """Sample every metrics_interval_s in a daemon thread until `stop` is set."""

    def loop(*_: Any) -> None:
        while True:
            try:
                sample(core, metrics, readiness)
            except Exception as exc:
                log.warning("metrics sampling failed: %r", exc)
            if stop.wait(core.settings.metrics_interval_s):
                return

    thread = threading.Thread(target=loop, name="metrics-sampler", daemon=True)
    thread.start()
    return thread
