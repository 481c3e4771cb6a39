"""Timer `reload_model`: switches the worker to a newer exported model without dropping events."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

import faust

from streams.observe.metrics import WorkerMetrics
from streams.recall.core import Core

log = logging.getLogger(__name__)


def attach(app: faust.App, core: Core, executor: Executor, metrics: WorkerMetrics) -> None:
    """Look for a newer model every reload_interval_s; log the counters at the same pace."""

    @app.timer(core.settings.reload_interval_s, name="reload_model")
    async def reload_model() -> None:
        loop = asyncio.get_running_loop()
        try:
            # The batch executor serialises this with click batches: no batch sees a half swap.
            if await loop.run_in_executor(executor, core.reload_model):
                metrics.reloaded(core.model.version)
        except Exception as exc:  # a broken export must not stop the worker
            log.error("model reload failed, keeping %s: %r", core.model.version, exc)
        log.info("stats: %s", metrics.report())
