"""Fault tests' checks: every click against its recommendation and every user against Redis.

Pure functions over what was sent, what came back and what Redis holds; no process control.
What each user's history and seen items should be is recomputed from the harness's own send
log; what each recommendation should hold comes from `oracle.ExactOracle` (NumPy, not the
serving code); who lost an unanswered click is proven by `attribution.attribute`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from harness.faults.attribution import BrokerStop, attribute
from harness.faults.oracle import Expected
from harness.faults.poison import POISON_ITEMS
from harness.faults.traffic import Received, Sent, SentClick
from model.fusion import FusionConfig, fuse
from streams.records import DeadLetter

Position = tuple[int, str, int, int]  # (broker epoch, topic, partition, offset)
Entry = tuple[str, int, int]  # one stored click: (ts as sent, arrival seq, item)
Expect = Callable[[Sequence[Sequence[int]], Sequence[Sequence[int]]], list[Expected]]
EXAMPLES = 3
# A click is answered twice only if its worker lost its partition (SIGKILL, or a rebalance
# when a worker joins) after publishing the answer and before committing the click: within
# the commit interval (streams/worker/app.py: broker_commit_interval) plus the batches in
# flight (one in its step, one publishing) before the handover.
COMMIT_INTERVAL_S = 1.0
DUPLICATE_WINDOW_S = COMMIT_INTERVAL_S + 2.0


def read_redis(redis_url: str, users: Iterable[int], prefix: str = "hist:"
               ) -> tuple[dict[int, list[Entry]], dict[int, list[int]]]:
    """Each user's stored history `h` ("ts seq item;...", streams/stores/history.py), parsed,
    and seen items `s` ("item item ...", least recently clicked first)."""
    users = list(users)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        pipe = client.pipeline(transaction=False)
        for u in users:
            pipe.hmget(f"{prefix}{u}", ["h", "s"])
        raws = pipe.execute()
    finally:
        client.close()
    histories: dict[int, list[Entry]] = {}
    seen: dict[int, list[int]] = {}
    for user, (h, s) in zip(users, raws, strict=True):
        entries = []
        for part in (h.decode().split(";") if h else []):
            ts, seq, item = part.split(" ")
            entries.append((ts, int(seq), int(item)))
        histories[user] = entries
        seen[user] = [int(i) for i in s.decode().split()] if s else []
    return histories, seen


def ts_text(ts: float) -> str:
    """How a click's ts reaches Redis: the repr of the float the worker parsed."""
    return repr(float(ts))


def seen_after(items: Sequence[int], seen_max: int) -> list[int]:
    """The seen list after clicking `items` in order: each item once, least recent first."""
    order: dict[int, None] = {}
    for item in items:
        order.pop(item, None)
        order[item] = None
    return list(order)[-seen_max:] if seen_max else []


@dataclass
class ClickRun:
    """What one scenario sent and what came back, ready to be checked."""

    clicks: list[SentClick]
    recs: list[Received]
    final: dict[int, list[Entry]]
    history_len: int
    seen: dict[int, list[int]] | None = None  # Redis `s` per user (None: not checked)
    seen_max: int = 0  # RECALL_SEEN_MAX when the worker excludes seen items, else 0
    broker: BrokerStop | None = None  # a broker restart, if the scenario had one
    snapshot: dict[int, list[Entry]] = field(default_factory=dict)  # histories after the stop
    handovers: Sequence[tuple[float, float]] = ()  # partitions changed owner without a clean
    # stop between these times (a SIGKILL, a worker joining the group)
    recs_in_log: set[tuple[int, int, float]] = field(default_factory=set)  # clicks answered in
    # the recommendations log read back at the end (a record the collector did not see)


def tie_equal(got: tuple[list[int], list[float]], want: tuple[list[int], list[float]],
              atol: float = 1e-4) -> bool:
    """Same ranking up to the order (or the cut) of items whose scores tie."""
    (gi, gs), (wi, ws) = got, want
    if len(gi) != len(wi) or any(abs(a - b) > atol for a, b in zip(gs, ws, strict=True)):
        return False
    for pos, (a, b) in enumerate(zip(gi, wi, strict=True)):
        if a != b:  # fine inside a tie group, or in the last one (ties with what was cut off)
            near = [ws[j] for j in (pos - 1, pos + 1) if 0 <= j < len(ws)] + [ws[-1]]
            if not any(abs(ws[pos] - s) <= atol for s in near):
                return False
    return len(set(gi)) == len(gi)


def check_clicks(run: ClickRun, expect: Expect,
                 fusion: FusionConfig | None = None) -> dict[str, Any]:
    """Counts and examples of every click check of one scenario."""
    by_key = {c.key: c for c in run.clicks}
    recs: dict[tuple[int, int, float], list[Received]] = defaultdict(list)
    foreign = 0
    users = {c.user for c in run.clicks}
    for r in run.recs:
        key = (r.rec.user_id, r.rec.click_item, r.rec.click_ts)
        if key in by_key:
            recs[key].append(r)
        elif r.rec.user_id in users:
            foreign += 1
    stored = {u: {e[0] for e in entries} for u, entries in run.final.items()}
    snap = {u: {e[0] for e in entries} for u, entries in run.snapshot.items()}

    def applied(c: SentClick) -> bool:
        return ts_text(c.ts) in stored.get(c.user, set()) | snap.get(c.user, set())

    missed = [c for c in run.clicks if c.state == "acked" and not recs.get(c.key)
              and c.key in run.recs_in_log]  # published: the collector missed the record
    unanswered = [c for c in run.clicks if c.state == "acked" and not recs.get(c.key)
                  and c.key not in run.recs_in_log]
    who = attribute(unanswered, applied, run.broker)
    broker_keys = {c.key for c in who.clicks_by_broker}
    delivered = [c for c in run.clicks if c.key not in broker_keys and (
        c.state == "acked" or recs.get(c.key) or applied(c))]

    sequences: dict[int, list[SentClick]] = defaultdict(list)
    for c in sorted(delivered, key=lambda c: c.ts):
        sequences[c.user].append(c)
    history_errors, duplicates, seen_errors = [], [], []
    for user in sorted(users):
        want = [(ts_text(c.ts), c.item) for c in sequences[user][-run.history_len:]]
        got = [(ts, item) for ts, _, item in run.final.get(user, [])]
        if got != want:
            history_errors.append({"user": user, "want": [i for _, i in want],
                                   "got": [i for _, i in got]})
        if len({ts for ts, _ in got}) != len(got):
            duplicates.append(user)
        want_seen = seen_after([c.item for c in sequences[user]], run.seen_max)
        if run.seen is not None and run.seen.get(user, []) != want_seen:
            seen_errors.append({"user": user, "want": want_seen, "got": run.seen.get(user)})

    checked, bad_history = match_histories(recs, sequences, run.history_len, run.seen_max)
    bad_items = check_items(checked, expect, fusion=fusion)
    hijacked = sum(any(i >= POISON_ITEMS for i in r.rec.item_ids) for r in run.recs)
    dup_keys = [k for k, v in recs.items() for _ in v[1:]]
    unexplained = [k for k in dup_keys if not any(
        start - DUPLICATE_WINDOW_S <= by_key[k].sent_at <= end for start, end in run.handovers)]
    return {
        "clicks_sent": sum(c.state == "acked" for c in run.clicks),
        "click_sends_failed": sum(c.state == "failed" for c in run.clicks),
        "failed_sends_delivered": sum(c.state == "failed" for c in delivered),
        "clicks_lost": len(who.pipeline),
        "clicks_lost_by_broker": len(who.clicks_by_broker),
        "recommendations_lost_by_broker": len(who.recs_by_broker),
        "recommendations_missed_by_collector": len(missed),
        "history_errors": len(history_errors),
        "history_duplicates": len(duplicates),
        "seen_errors": len(seen_errors),
        "duplicate_recommendations": len(dup_keys),
        "duplicates_unexplained": len(unexplained),
        "recommendation_history_errors": len(bad_history),
        "recommendation_item_errors": len(bad_items),
        "recommendation_errors": len(bad_history) + len(bad_items),
        "recommendations_for_unsent_clicks": foreign,
        "hijacked_recommendations": hijacked,
        "examples": {
            "clicks_lost": [[c.user, c.item, c.ts, c.partition, c.offset]
                            for c in who.pipeline[:EXAMPLES]],
            "history_errors": history_errors[:EXAMPLES],
            "seen_errors": seen_errors[:EXAMPLES],
            "duplicates_unexplained": [list(k) for k in unexplained[:EXAMPLES]],
            "recommendation_history_errors": bad_history[:EXAMPLES],
            "recommendation_item_errors": bad_items[:EXAMPLES],
        },
    }


def match_histories(recs: dict[tuple[int, int, float], list[Received]],
                    sequences: dict[int, list[SentClick]], history_len: int, seen_max: int
                    ) -> tuple[list[tuple[Received, list[int]]], list[dict[str, Any]]]:
    """Each recommendation's history must be the user's last clicks as of its click or a
    later click of the same batch; returns (record, its seen items then) pairs and errors."""
    position = {c.key: j for seq in sequences.values() for j, c in enumerate(seq)}
    checked, bad = [], []
    for key, got_recs in recs.items():
        seq, j = sequences.get(key[0], []), position.get(key)
        for r in got_recs:
            later = [] if j is None else [
                n for n in range(j, len(seq))
                if [c.item for c in seq[max(0, n + 1 - history_len):n + 1]] == r.rec.history]
            if later:
                seen = (seen_after([c.item for c in seq[:later[0] + 1]], seen_max)
                        if seen_max else list(r.rec.history))  # what serving leaves out
                checked.append((r, seen))
            else:
                bad.append({"click": list(key), "history": r.rec.history,
                            "partition": r.rec.click_partition, "offset": r.rec.click_offset})
    return checked, bad


def check_items(received: list[tuple[Received, list[int]]], expect: Expect,
                batch: int = 256, fusion: FusionConfig | None = None) -> list[Any]:
    """Recommendations whose MIND items differ from the exact oracle's for their history and
    seen items; a fused record: its MIND list against the oracle, and its list against the
    fusion of its own channel lists (`fusion`)."""
    unique = sorted({(tuple(r.rec.history), tuple(seen)) for r, seen in received})
    want: dict[tuple[tuple[int, ...], tuple[int, ...]], Expected] = {}
    for start in range(0, len(unique), batch):
        rows = unique[start:start + batch]
        want.update(zip(rows, expect([list(h) for h, _ in rows], [list(s) for _, s in rows]),
                        strict=True))
    bad = []
    for r, seen in received:
        ids, scores, version = want[(tuple(r.rec.history), tuple(seen))]
        got = _unpoisoned(r.rec.item_ids, r.rec.scores)
        lists = r.rec.channel_lists
        if lists is not None and "mind" in lists:  # fused: MIND's own list, with the scores
            by_id = dict(zip(ids, scores, strict=True))  # the oracle gives (its ties swap)
            mind = [i for i in lists["mind"] if i < POISON_ITEMS]
            got = mind, [by_id.get(i, float("nan")) for i in mind]
            fused = fuse(lists, fusion, len(r.rec.item_ids)) if fusion else None
            if fused is not None and fused.item_ids != r.rec.item_ids:
                bad.append({"click": [r.rec.user_id, r.rec.click_item, r.rec.click_ts],
                            "fused_list_differs_from_its_channel_lists": True})
                continue
        cut = min(len(got[0]), len(ids))  # poison items (counted as hijacks) push others out
        if r.rec.model_version != version or not tie_equal(
                (got[0][:cut], got[1][:cut]), (ids[:cut], scores[:cut])):
            at = next((n for n, (a, b) in enumerate(zip(got[0], ids, strict=False)) if a != b),
                      cut)
            bad.append({"click": [r.rec.user_id, r.rec.click_item, r.rec.click_ts],
                        "model_version": [r.rec.model_version, version], "first_diff": at,
                        "got": list(zip(got[0], got[1], strict=True))[max(0, at - 1):at + 3],
                        "want": list(zip(ids, scores, strict=True))[max(0, at - 1):at + 3]})
    return bad


def _unpoisoned(ids: list[int], scores: list[float]) -> tuple[list[int], list[float]]:
    """Without poison item ids: a bad vector the worker accepted changes Milvus between the
    worker's search and this check; hijacks are counted on their own."""
    keep = [n for n, i in enumerate(ids) if i < POISON_ITEMS]
    return [ids[n] for n in keep], [scores[n] for n in keep]


def check_bad_inputs(bad: Sequence[tuple[str, Sent]], dead: Sequence[tuple[int, DeadLetter]],
                     valid: Sequence[Sent], in_log: Collection[Position] = ()
                     ) -> dict[str, Any]:
    """Was every bad message that the broker took dead-lettered, and no valid one? `in_log`:
    dead-lettered positions found in the dead-letter topic's log by a read-back (ones the
    collector missed count as dead-lettered, and are counted on their own)."""
    lettered = {(epoch, d.topic, d.partition, d.offset) for epoch, d in dead}
    sent = [(label, s) for label, s in bad if s.state == "acked"]
    refused = [(label, s) for label, s in bad if s.state != "acked"]
    read_back = [s for _, s in sent if s.position not in lettered and s.position in in_log]
    missed = Counter(label for label, s in sent
                     if s.position not in lettered and s.position not in in_log)
    wrongly = [s for s in valid if s.state == "acked" and s.position in lettered]
    repeated = Counter((epoch, d.topic, d.partition, d.offset) for epoch, d in dead)
    return {
        "bad_inputs_sent": len(sent),
        "bad_inputs_refused_by_broker": len(refused),
        "bad_inputs_dead_lettered": len(sent) - sum(missed.values()),
        "dead_letters_missed_by_collector": len(read_back),
        "valid_inputs_dead_lettered": len(wrongly),
        "duplicate_dead_letters": sum(n - 1 for n in repeated.values()),
        "examples": {
            "not_dead_lettered_by_kind": dict(missed.most_common()),
            "refused_by_broker": sorted({f"{label}: {s.error}" for label, s in refused})[:5],
        },
    }
