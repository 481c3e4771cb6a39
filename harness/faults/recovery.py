"""How long a fault held the stream up, from the harness's own send and receive times.

`recovery_s` is the pass/fail gate: from the end of the fault (the restarted server answers,
the new worker started) until every partition answers a click sent after it.
`from_injection` is what a user saw: from the moment the fault was injected to the first and
to the last recommendation of the clicks sent while it lasted (when no click could be sent
then, as with a stopped broker, the clicks of the second after it).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.faults.traffic import Received, SentClick

AFTER_S = 1.0  # the clicks right after a fault that took every send with it


def recovery_s(clicks: Sequence[SentClick], recs: Sequence[Received], since: float,
               partitions: int, until: float) -> tuple[float, list[int]]:
    """Seconds from `since` until every partition answered a click sent after `since`.

    Returns (seconds, partitions that never answered); a partition that never answered counts
    as `until - since` (a lower bound).
    """
    first: dict[int, float] = {}
    answered = {(r.rec.user_id, r.rec.click_item, r.rec.click_ts): r.at for r in recs}
    sent_on: set[int] = set()
    for c in clicks:
        if c.state != "acked" or c.sent_at < since:
            continue
        sent_on.add(c.partition)
        at = answered.get(c.key)
        if at is not None and at < first.get(c.partition, float("inf")):
            first[c.partition] = at
    missing = sorted(p for p in range(partitions) if p in sent_on and p not in first)
    worst = max([t - since for t in first.values()] + [until - since] * bool(missing),
                default=0.0)
    return round(worst, 2), missing


def from_injection(clicks: Sequence[SentClick], recs: Sequence[Received], injected_at: float,
                   fault_end: float, sendable: bool = True
                   ) -> tuple[float | None, float | None, int]:
    """(seconds to the first, to the last recommendation, clicks measured) for the clicks sent
    during the fault (unless not `sendable`: those the fault itself took, as a broker restart
    does); None where a click of them never got its recommendation."""
    answered: dict[tuple[int, int, float], float] = {}
    for r in recs:
        key = (r.rec.user_id, r.rec.click_item, r.rec.click_ts)
        answered[key] = min(r.at, answered.get(key, r.at))
    acked = [c for c in clicks if c.state == "acked"]
    during = [c for c in acked if sendable and injected_at <= c.sent_at <= fault_end] or [
        c for c in acked if fault_end < c.sent_at <= fault_end + AFTER_S]
    times = [answered.get(c.key) for c in during]
    if not times:
        return None, None, 0
    got = [t for t in times if t is not None]
    first = round(min(got) - injected_at, 2) if got else None
    last = round(max(got) - injected_at, 2) if len(got) == len(times) else None
    return first, last, len(times)
