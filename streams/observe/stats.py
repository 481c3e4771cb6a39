"""Thread-safe counters the worker logs periodically (clicks, recommendations, dead letters...)."""

from __future__ import annotations

import threading
import time


class Stats:
    """Named counters with a rate since the last report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._observed: dict[str, list[float]] = {}  # name -> [sum, count] since the report
        self._since = time.monotonic()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._totals[name] = self._totals.get(name, 0) + n

    def observe(self, name: str, value: float) -> None:
        """Record one measurement (name it with its unit); the report shows the mean."""
        with self._lock:
            total = self._observed.setdefault(name, [0.0, 0])
            total[0] += value
            total[1] += 1

    def report(self) -> str:
        """One line of totals and per-second rates since the previous report."""
        with self._lock:
            now = time.monotonic()
            span = max(now - self._since, 1e-9)
            parts = [
                f"{name}={total} ({(total - self._last.get(name, 0)) / span:.0f}/s)"
                for name, total in sorted(self._totals.items())
            ]
            parts += [
                f"{name}={total / count:.1f}"
                for name, (total, count) in sorted(self._observed.items())
            ]
            self._observed.clear()
            self._last = dict(self._totals)
            self._since = now
        return " ".join(parts) or "idle"
