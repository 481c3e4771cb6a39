"""Fault tests' checks: every click against its recommendation and every user against Redis.

Pure functions over what was sent, what came back and what Redis holds; no process control.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from harness.faults.poison import POISON_ITEMS
from harness.faults.traffic import Received, Sent, SentClick
from model.fusion import FusionConfig, fuse
from streams.records import DeadLetter

Entry = tuple[str, int, int]  # one stored click: (ts as sent, arrival seq, item)
Recall = Callable[[Sequence[Sequence[int]]], list[tuple[list[int], list[float], str]]]
EXAMPLES = 3


RECS_IN_FLIGHT_S = 1.0  # a recommendation reaches the collector well within this


def read_raw_histories(redis_url: str, users: Iterable[int],
                       prefix: str = "hist:") -> dict[int, list[Entry]]:
    """Each user's stored `h` field (streams/stores/history.py: "ts seq item;..."), parsed."""
    users = list(users)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        pipe = client.pipeline(transaction=False)
        for u in users:
            pipe.hget(f"{prefix}{u}", "h")
        raws = pipe.execute()
    finally:
        client.close()
    out: dict[int, list[Entry]] = {}
    for user, raw in zip(users, raws, strict=True):
        entries = []
        for part in (raw.decode().split(";") if raw else []):
            ts, seq, item = part.split(" ")
            entries.append((ts, int(seq), int(item)))
        out[user] = entries
    return out


def ts_text(ts: float) -> str:
    """How a click's ts reaches Redis: the repr of the float the worker parsed."""
    return repr(float(ts))


@dataclass
class ClickRun:
    """What one scenario sent and what came back, ready to be checked."""

    clicks: list[SentClick]
    recs: list[Received]
    final: dict[int, list[Entry]]
    history_len: int
    broker_stop_at: float | None = None  # wall clock of a broker stop, if the scenario had one
    snapshot: dict[int, list[Entry]] = field(default_factory=dict)  # histories after the stop


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


def check_clicks(run: ClickRun, recall: Recall,
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

    def in_store(c: SentClick, where: dict[int, set[str]]) -> bool:
        return ts_text(c.ts) in where.get(c.user, set())

    by_broker = [c for c in run.clicks if run.broker_stop_at is not None and c.state == "acked"
                 and c.sent_at < run.broker_stop_at and not recs.get(c.key)
                 and not in_store(c, snap) and not in_store(c, stored)]
    broker_keys = {c.key for c in by_broker}
    delivered = [c for c in run.clicks if c.key not in broker_keys and (
        c.state == "acked" or recs.get(c.key) or in_store(c, stored) or in_store(c, snap))]
    unanswered = [c for c in delivered if c.state == "acked" and not recs.get(c.key)]
    # Applied before the stop and sent in its last RECS_IN_FLIGHT_S: the recommendation was
    # published to the old broker and lost with it before the collector read it.
    recs_by_broker = [c for c in unanswered if run.broker_stop_at is not None
                      and run.broker_stop_at - RECS_IN_FLIGHT_S <= c.sent_at < run.broker_stop_at
                      and in_store(c, snap)]
    lost = [c for c in unanswered if c not in recs_by_broker]

    sequences: dict[int, list[SentClick]] = defaultdict(list)
    for c in sorted(delivered, key=lambda c: c.ts):
        sequences[c.user].append(c)
    history_errors, duplicates = [], []
    for user in sorted(users):
        want = [(ts_text(c.ts), c.item) for c in sequences[user][-run.history_len:]]
        got = [(ts, item) for ts, _, item in run.final.get(user, [])]
        if got != want:
            history_errors.append({"user": user, "want": [i for _, i in want],
                                   "got": [i for _, i in got]})
        if len({ts for ts, _ in got}) != len(got):
            duplicates.append(user)

    prefixes: dict[int, list[list[int]]] = {
        u: [[c.item for c in seq[max(0, j + 1 - run.history_len):j + 1]] for j in range(len(seq))]
        for u, seq in sequences.items()}
    position = {c.key: j for seq in sequences.values() for j, c in enumerate(seq)}
    bad_history, checked = [], []
    for key, got_recs in recs.items():
        j = position.get(key)
        for r in got_recs:
            if j is None or r.rec.history not in prefixes[key[0]][j:]:
                bad_history.append({"click": list(key), "history": r.rec.history,
                                    "partition": r.rec.click_partition,
                                    "offset": r.rec.click_offset})
            else:
                checked.append(r)
    bad_items = check_items(checked, recall, fusion=fusion)
    hijacked = sum(any(i >= POISON_ITEMS for i in r.rec.item_ids) for r in run.recs)
    return {
        "clicks_sent": sum(c.state == "acked" for c in run.clicks),
        "click_sends_failed": sum(c.state == "failed" for c in run.clicks),
        "failed_sends_delivered": sum(c.state == "failed" for c in delivered),
        "clicks_lost": len(lost),
        "clicks_lost_by_broker": len(by_broker),
        "recommendations_lost_by_broker": len(recs_by_broker),
        "history_errors": len(history_errors),
        "history_duplicates": len(duplicates),
        "duplicate_recommendations": sum(len(v) - 1 for v in recs.values()),
        "recommendation_history_errors": len(bad_history),
        "recommendation_item_errors": len(bad_items),
        "recommendation_errors": len(bad_history) + len(bad_items),
        "recommendations_for_unsent_clicks": foreign,
        "hijacked_recommendations": hijacked,
        "examples": {
            "clicks_lost": [[c.user, c.item, c.ts, c.partition, c.offset]
                            for c in lost[:EXAMPLES]],
            "history_errors": history_errors[:EXAMPLES],
            "recommendation_history_errors": bad_history[:EXAMPLES],
            "recommendation_item_errors": bad_items[:EXAMPLES],
        },
    }


def check_items(received: list[Received], recall: Recall, batch: int = 256,
                fusion: FusionConfig | None = None) -> list[Any]:
    """Recommendations whose items differ from what the Recaller returns for their history;
    a fused record: its MIND list against the MIND Recaller, and its list against the fusion
    of its own channel lists (`fusion`)."""
    unique = sorted({tuple(r.rec.history) for r in received})
    want: dict[tuple[int, ...], tuple[list[int], list[float], str]] = {}
    for start in range(0, len(unique), batch):
        rows = unique[start:start + batch]
        want.update(zip(rows, recall([list(h) for h in rows]), strict=True))
    bad = []
    for r in received:
        ids, scores, version = want[tuple(r.rec.history)]
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
        ids, scores = _unpoisoned(ids, scores)
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


def check_bad_inputs(bad: Sequence[tuple[str, Sent]], dead: Sequence[tuple[int, DeadLetter]],
                     valid: Sequence[Sent]) -> dict[str, Any]:
    """Was every bad message that the broker took dead-lettered, and no valid one?"""
    lettered = {(epoch, d.topic, d.partition, d.offset) for epoch, d in dead}
    sent = [(label, s) for label, s in bad if s.state == "acked"]
    refused = [(label, s) for label, s in bad if s.state != "acked"]
    missed = Counter(label for label, s in sent if s.position not in lettered)
    wrongly = [s for s in valid if s.state == "acked" and s.position in lettered]
    repeated = Counter((epoch, d.topic, d.partition, d.offset) for epoch, d in dead)
    return {
        "bad_inputs_sent": len(sent),
        "bad_inputs_refused_by_broker": len(refused),
        "bad_inputs_dead_lettered": len(sent) - sum(missed.values()),
        "valid_inputs_dead_lettered": len(wrongly),
        "duplicate_dead_letters": sum(n - 1 for n in repeated.values()),
        "examples": {
            "not_dead_lettered_by_kind": dict(missed.most_common()),
            "refused_by_broker": sorted({f"{label}: {s.error}" for label, s in refused})[:5],
        },
    }
