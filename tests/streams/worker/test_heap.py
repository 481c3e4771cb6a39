"""The worker's startup heap is left out of the garbage collector's full passes."""

from __future__ import annotations

import gc

from streams.worker.main import GC_THRESHOLDS, freeze_startup_heap


def test_objects_alive_at_startup_leave_the_collectors_generations() -> None:
    startup = [object() for _ in range(3)], {"model": [1.0, 2.0]}
    thresholds = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is startup for o in gc.get_objects())  # not scanned by full passes
        later = [{"batch": i} for i in range(3)]
        assert any(o is later for o in gc.get_objects())  # what the worker makes after is
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
