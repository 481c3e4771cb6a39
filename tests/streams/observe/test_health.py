"""streams.observe.health: readiness runs every probe concurrently, bounded by a timeout."""

from __future__ import annotations

import asyncio
import threading
import time

from streams.observe.health import Readiness, model_probe


def test_report_names_each_failure_and_a_hung_probe_times_out() -> None:
    release = threading.Event()

    def down() -> None:
        raise ConnectionError("refused")

    def hung() -> None:
        release.wait(5)

    ready = Readiness({"ok": lambda: None, "down": down, "hung": hung,
                       "model": model_probe(lambda: "")}, timeout_s=0.3)
    try:
        started = time.monotonic()
        report = ready.check()
        assert time.monotonic() - started < 2
        assert report.checks["ok"] == "ok"
        assert report.checks["down"] == "ConnectionError: refused"
        assert report.checks["hung"] == "no answer within 0.3s"
        assert "no model" in report.checks["model"]
        assert not report.ready and report.up() == {"ok": True, "down": False, "hung": False,
                                                    "model": False}
        assert report.body()["status"] == "unavailable"
        calls = []
        ready.probes["hung"] = lambda: calls.append(1)
        assert ready.check().checks["hung"] == "no answer within 0.3s"
        assert calls == []  # the hung probe is waited for again, not started a second time
        release.set()
        time.sleep(0.1)
        assert ready.check().checks["hung"] == "ok" and calls == [1]
    finally:
        release.set()
        ready.close()


def test_async_check_off_the_loop() -> None:
    ready = Readiness({"a": lambda: None, "model": model_probe(lambda: "v1")})
    try:
        report = asyncio.run(ready.acheck())
        assert report.ready and report.body() == {"status": "ready",
                                                  "checks": {"a": "ok", "model": "ok"}}
    finally:
        ready.close()
