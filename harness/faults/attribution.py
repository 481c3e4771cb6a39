"""Who lost an unanswered click: the pipeline (a failed check) or a broker restart (proven).

tansu keeps its logs in memory, so a broker restart loses every message of the old log. The
harness proves, click by click, that a loss it charges to the broker was out of the
pipeline's hands; anything it cannot prove is the pipeline's loss and fails the run:

- the click was acked by the old broker (acked before the new one started) and is not in the
  new log (the harness reads the new clicks log back after the run);
- at the stop the workers were frozen (SIGSTOP) and the consumer group's committed offsets
  read: a worker commits a click only after its recommendation is published, so a click at
  or past its partition's committed offset had not been finished, and after the restart
  nothing can deliver it again. Not in Redis either: the *click* was lost with the broker;
  in Redis (applied, output not committed): its *recommendation* was;
- a click below the committed offset was finished (applied to Redis, else it is the
  pipeline's loss): its recommendation was published to the old recommendations log. It is
  the broker's loss only while there are at least as many records of that log the collector
  had not read when the broker stopped (end offsets at the stop minus those read); more than
  that is a pipeline loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.faults.traffic import SentClick


@dataclass
class BrokerStop:
    """What the harness recorded around a broker restart."""

    stop_at: float  # wall clock of the stop
    restarted_at: float  # wall clock when the new broker answered
    committed: dict[int, int]  # clicks partition -> the group's committed offset at the stop
    recs_unread: int  # records of the old recommendations log not read at the stop
    new_log: set[tuple[int, int, float]] = field(default_factory=set)  # click keys read back


@dataclass
class Attribution:
    pipeline: list[SentClick] = field(default_factory=list)  # failed: no proof
    clicks_by_broker: list[SentClick] = field(default_factory=list)
    recs_by_broker: list[SentClick] = field(default_factory=list)


def attribute(unanswered: Sequence[SentClick], applied: Callable[[SentClick], bool],
              broker: BrokerStop | None) -> Attribution:
    """Split acked clicks without a recommendation into proven broker losses and the rest."""
    out = Attribution()
    budget = broker.recs_unread if broker else 0
    for c in sorted(unanswered, key=lambda c: c.sent_at):
        old_log = broker is not None and 0 < c.acked_at < broker.restarted_at
        if broker is None or not old_log or c.key in broker.new_log:
            out.pipeline.append(c)
        elif c.offset >= broker.committed.get(c.partition, 0):
            (out.recs_by_broker if applied(c) else out.clicks_by_broker).append(c)
        elif applied(c) and budget > 0:  # finished and published: an unread old record
            budget -= 1
            out.recs_by_broker.append(c)
        else:
            out.pipeline.append(c)
    return out
