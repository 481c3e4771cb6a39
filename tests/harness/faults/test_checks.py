"""The fault tests' checks on hand-made runs (no servers): each failure kind is counted."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from harness.faults.attribution import BrokerStop
from harness.faults.checks import (
    ClickRun,
    check_bad_inputs,
    check_clicks,
    seen_after,
    tie_equal,
    ts_text,
)
from harness.faults.main import parse_args
from harness.faults.poison import HUGE, POISON_ITEMS, flood
from harness.faults.recovery import from_injection, recovery_s
from harness.faults.scenarios import QUICK, SCENARIOS
from harness.faults.traffic import Received, Sent, SentClick
from model.fusion import FusionConfig, fuse
from streams.records import DeadLetter, Recommendation


def clicks(user: int, items: Sequence[int], t0: float = 1000.0) -> list[SentClick]:
    out = []
    for n, item in enumerate(items):
        c = SentClick("clicks", b"", sent_at=t0 + n, user=user, item=item, ts=t0 + n)
        c.state, c.epoch, c.partition, c.offset = "acked", 0, user % 2, n
        c.acked_at = c.sent_at + 0.01
        out.append(c)
    return out


def rec_for(c: SentClick, history: list[int], at: float | None = None,
            items: Sequence[int] = (1, 2)) -> Received:
    rec = Recommendation(user_id=c.user, item_ids=list(items), scores=[0.9, 0.8],
                         model_version="v1", click_item=c.item, click_ts=c.ts, emit_ts=c.ts,
                         history=history, click_partition=c.partition, click_offset=c.offset)
    return Received(rec, c.sent_at + 0.1 if at is None else at, 0)


def stored(cs: Sequence[SentClick], keep: int = 3) -> list[tuple[str, int, int]]:
    return [(ts_text(c.ts), n, c.item) for n, c in enumerate(cs)][-keep:]


def recall(histories: Sequence[Sequence[int]], seen: Sequence[Sequence[int]]
           ) -> list[tuple[list[int], list[float], str]]:
    return [([1, 2], [0.9, 0.8], "v1") for _ in histories]


def prefix_recs(cs: list[SentClick], keep: int = 3) -> list[Received]:
    return [rec_for(c, [x.item for x in cs[: n + 1]][-keep:]) for n, c in enumerate(cs)]


def test_a_clean_run_passes_every_check() -> None:
    cs = clicks(7, [11, 12, 13, 14, 15])
    run = ClickRun(cs, prefix_recs(cs), {7: stored(cs)}, history_len=3)
    out = check_clicks(run, recall)
    assert out["clicks_sent"] == 5
    for key in ("clicks_lost", "history_errors", "history_duplicates", "recommendation_errors",
                "duplicate_recommendations", "hijacked_recommendations"):
        assert out[key] == 0, key


def test_lost_duplicate_and_wrong_history_are_counted() -> None:
    cs = clicks(7, [11, 12, 13, 14])
    recs = prefix_recs(cs)
    recs = recs[:2] + [recs[1]] + [rec_for(cs[3], [11, 12, 99])]  # dup of #1, #2 lost
    final = stored(cs)
    final[0] = final[1]  # one click applied twice
    out = check_clicks(ClickRun(cs, recs, {7: final}, history_len=3), recall)
    assert out["clicks_lost"] == 1 and out["examples"]["clicks_lost"][0][1] == 13
    assert out["duplicate_recommendations"] == 1
    assert out["recommendation_history_errors"] == 1
    assert out["history_errors"] == 1 and out["history_duplicates"] == 1


def test_a_later_history_of_the_same_micro_batch_is_accepted() -> None:
    cs = clicks(7, [11, 12, 13])
    recs = [rec_for(c, [11, 12, 13]) for c in cs]  # one batch: every click sees the final state
    out = check_clicks(ClickRun(cs, recs, {7: stored(cs)}, history_len=3), recall)
    assert out["recommendation_errors"] == 0
    early = [rec_for(cs[2], [11, 12])]  # a history before the click itself is wrong
    out = check_clicks(ClickRun(cs[:], early, {7: stored(cs)}, history_len=3), recall)
    assert out["recommendation_history_errors"] == 1


def test_items_must_match_the_recaller_and_poison_is_a_hijack() -> None:
    cs = clicks(7, [11])
    wrong = rec_for(cs[0], [11], items=(2, 1))
    out = check_clicks(ClickRun(cs, [wrong], {7: stored(cs)}, history_len=3), recall)
    assert out["recommendation_item_errors"] == 1
    hijack = rec_for(cs[0], [11], items=(POISON_ITEMS + 3, 1))
    hijack.rec.scores = [1e30, 0.9]
    out = check_clicks(ClickRun(cs, [hijack], {7: stored(cs)}, history_len=3), recall)
    assert out["hijacked_recommendations"] == 1 and out["recommendation_item_errors"] == 0


def broker_run(cs: list[SentClick], recs: list[Received], final: list[tuple[str, int, int]],
               snapshot: list[tuple[str, int, int]], committed: int, unread: int = 0,
               new_log: set[tuple[int, int, float]] | None = None) -> ClickRun:
    stop = BrokerStop(stop_at=cs[-1].sent_at + 0.5, restarted_at=cs[-1].sent_at + 3.0,
                      committed={cs[0].partition: committed}, recs_unread=unread,
                      new_log=new_log or set())
    return ClickRun(cs, recs, {7: final}, 3, broker=stop, snapshot={7: snapshot})


def test_broker_loss_needs_a_proof() -> None:
    cs = clicks(7, [11, 12, 13])  # offsets 0, 1, 2; the group had committed up to offset 2
    recs = [rec_for(cs[0], [11])]
    # 12 (offset 1) was committed yet is nowhere: the pipeline lost it; 13 was never
    # committed nor applied, and is not in the new log: the broker lost it
    out = check_clicks(broker_run(cs, recs, stored(cs[:1]), stored(cs[:1]), committed=2),
                       recall)
    assert out["clicks_lost"] == 1 and out["examples"]["clicks_lost"][0][1] == 12
    assert out["clicks_lost_by_broker"] == 1 and out["recommendations_lost_by_broker"] == 0
    # the same click found in the new log is no broker loss
    out = check_clicks(broker_run(cs, recs, stored(cs[:1]), stored(cs[:1]), committed=2,
                                  new_log={cs[2].key}), recall)
    assert out["clicks_lost"] == 2 and out["clicks_lost_by_broker"] == 0


def test_a_finished_click_is_the_brokers_loss_only_within_the_unread_records() -> None:
    cs = clicks(7, [11, 12, 13])
    recs = [rec_for(cs[0], [11])]
    # 12 and 13 applied and committed (offset 3): their recommendations were published to the
    # old log; one record of it was unread at the stop, so one of the two is the pipeline's
    run = broker_run(cs, recs, stored(cs), stored(cs), committed=3, unread=1)
    out = check_clicks(run, recall)
    assert out["recommendations_lost_by_broker"] == 1 and out["clicks_lost"] == 1
    run = broker_run(cs, recs, stored(cs), stored(cs), committed=3, unread=2)
    assert check_clicks(run, recall)["clicks_lost"] == 0
    # applied but not committed: its output could not be finished after the restart
    run = broker_run(cs, recs, stored(cs), stored(cs), committed=1)
    out = check_clicks(run, recall)
    assert out["recommendations_lost_by_broker"] == 2 and out["clicks_lost"] == 0


def test_a_click_acked_by_the_new_broker_is_never_the_old_brokers_loss() -> None:
    cs = clicks(7, [11, 12])
    cs[1].acked_at = cs[1].sent_at + 10.0  # after the restart
    out = check_clicks(broker_run(cs, [rec_for(cs[0], [11])], stored(cs[:1]), stored(cs[:1]),
                                  committed=0), recall)
    assert out["clicks_lost"] == 1 and out["clicks_lost_by_broker"] == 0


def test_seen_items_are_checked_and_excluded_as_of_each_click() -> None:
    cs = clicks(7, [11, 12, 11, 13])
    asked: list[list[int]] = []

    def spy(histories: Sequence[Sequence[int]], seen: Sequence[Sequence[int]]
            ) -> list[tuple[list[int], list[float], str]]:
        asked.extend(list(s) for s in seen)
        return recall(histories, seen)

    run = ClickRun(cs, prefix_recs(cs), {7: stored(cs)}, 3, seen={7: [12, 11, 13]},
                   seen_max=1000)
    out = check_clicks(run, spy)
    assert out["seen_errors"] == 0 and out["recommendation_errors"] == 0
    assert sorted(asked) == sorted([[11], [11, 12], [12, 11], [12, 11, 13]])
    run.seen = {7: [11, 12, 13]}
    assert check_clicks(run, recall)["seen_errors"] == 1
    assert seen_after([1, 2, 3, 1], 2) == [3, 1] and seen_after([1], 0) == []


def test_duplicates_are_explained_only_next_to_a_kill() -> None:
    cs = clicks(7, [11, 12, 13])
    recs = prefix_recs(cs) + [prefix_recs(cs)[1]]  # click 12 answered twice
    out = check_clicks(ClickRun(cs, recs, {7: stored(cs)}, 3), recall)
    assert out["duplicate_recommendations"] == 1 and out["duplicates_unexplained"] == 1
    run = ClickRun(cs, recs, {7: stored(cs)}, 3, handovers=[(cs[1].sent_at + 0.5,) * 2])
    assert check_clicks(run, recall)["duplicates_unexplained"] == 0
    run.handovers = [(cs[1].sent_at + 60,) * 2]  # far later: not in the uncommitted window
    assert check_clicks(run, recall)["duplicates_unexplained"] == 1


def test_recovery_from_injection_to_first_and_last_answer() -> None:
    cs = clicks(7, [1, 2, 3, 4])  # sent at 1000..1003
    recs = [rec_for(cs[1], [1, 2], at=1005.0), rec_for(cs[2], [1, 2, 3], at=1007.5)]
    assert from_injection(cs, recs, injected_at=1000.5, fault_end=1002.5) == (4.5, 7.0, 2)
    assert from_injection(cs, recs[:1], injected_at=1000.5, fault_end=1002.5) == (4.5, None, 2)
    # nothing sent during the fault: the clicks of the second after it
    assert from_injection(cs, recs, injected_at=1001.2, fault_end=1001.5) == (6.3, 6.3, 1)


def test_failed_send_counts_only_when_seen() -> None:
    cs = clicks(7, [11, 12])
    cs[1].state = "failed"
    out = check_clicks(ClickRun(cs, prefix_recs(cs)[:1], {7: stored(cs[:1])}, 3), recall)
    assert (out["clicks_sent"], out["click_sends_failed"], out["clicks_lost"]) == (1, 1, 0)
    assert out["history_errors"] == 0
    out = check_clicks(ClickRun(cs, prefix_recs(cs), {7: stored(cs)}, 3), recall)
    assert out["failed_sends_delivered"] == 1 and out["history_errors"] == 0


def test_tie_equal_allows_swapped_ties_only() -> None:
    assert tie_equal(([1, 2, 3], [0.9, 0.5, 0.5]), ([1, 3, 2], [0.9, 0.5, 0.5]))
    assert not tie_equal(([2, 1, 3], [0.9, 0.5, 0.4]), ([1, 2, 3], [0.9, 0.5, 0.4]))
    assert not tie_equal(([1, 2], [0.9, 0.5]), ([1, 2], [0.9, 0.4]))
    # the last item ties with one the top-k cut off: either may be returned
    assert tie_equal(([1, 2, 3], [0.9, 0.5, 0.4]), ([1, 2, 7], [0.9, 0.5, 0.4]))
    assert not tie_equal(([1, 3, 3], [0.9, 0.5, 0.5]), ([1, 2, 3], [0.9, 0.5, 0.5]))


def test_recovery_is_the_slowest_partition() -> None:
    cs = clicks(7, [1, 2, 3]) + clicks(8, [4, 5, 6])  # user 7 -> partition 1, 8 -> 0
    recs = [rec_for(cs[1], [1, 2], at=1004.0), rec_for(cs[5], [4, 5, 6], at=1010.0)]
    assert recovery_s(cs, recs, since=1000.5, partitions=2, until=1020.0) == (9.5, [])
    assert recovery_s(cs, recs[:1], since=1000.5, partitions=2, until=1020.0) == (19.5, [0])


def test_bad_inputs_matched_by_epoch_and_position() -> None:
    def sent(offset: int, epoch: int = 0, state: str = "acked") -> Sent:
        return Sent("clicks", b"x", 0.0, state=state, epoch=epoch, partition=0, offset=offset)

    def dead(offset: int, epoch: int = 0) -> tuple[int, DeadLetter]:
        return epoch, DeadLetter("clicks", 0, offset, "bad", 1, "x", False)

    bad = [("a", sent(1)), ("b", sent(2)), ("b", sent(3, epoch=1)), ("c", sent(4, state="failed"))]
    out = check_bad_inputs(bad, [dead(1), dead(1), dead(3), dead(5)], [sent(5), sent(6)])
    assert out["bad_inputs_sent"] == 3 and out["bad_inputs_refused_by_broker"] == 1
    assert out["bad_inputs_dead_lettered"] == 1  # offset 3 was lettered in another epoch
    assert out["examples"]["not_dead_lettered_by_kind"] == {"b": 2}
    assert out["valid_inputs_dead_lettered"] == 1 and out["duplicate_dead_letters"] == 1
    assert out["dead_letters_missed_by_collector"] == 0
    # one the collector missed but the dead-letter log has (read back): dead-lettered
    out = check_bad_inputs(bad, [dead(1)], [], in_log={(0, "clicks", 0, 2), (0, "clicks", 0, 3)})
    assert out["bad_inputs_dead_lettered"] == 2 and out["dead_letters_missed_by_collector"] == 1
    assert out["examples"]["not_dead_lettered_by_kind"] == {"b": 1}


def test_poison_flood_has_every_kind() -> None:
    bad = flood(random.Random(1), 700, 300, item=5, now=1.7e9, dim=64)
    labels = {label for _, label, _, _ in bad}
    for kind in ("not-json", "non-utf8", "oversized-300KB-bytes", "oversized-300KB-json",
                 "oversized-2MB", "user-2**63", "item-2**70", "ts-nan", "ts-inf",
                 "ts-1e300", "ts-year-2200", "vector-3e38", "vector-1e39", "vector-zeros",
                 "vector-short", "vector-nan", "unknown-field", "missing-ts", "user-string"):
        assert kind in labels, kind
    assert len(bad) == 1000 and max(len(v) for *_, v in bad) == HUGE
    assert sum(role == "items" for role, *_ in bad) == 300


def test_cli_env_fallbacks(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAULTS_QUICK", "1")
    monkeypatch.setenv("FAULTS_RATE", "50")
    args = parse_args([])
    assert args.quick and args.rate == 50.0 and args.names == list(QUICK)
    assert parse_args(["--scenarios", "redis-restart"]).names == ["redis-restart"]
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines at hyphens
    for name in ("FAULTS_QUICK", "FAULTS_OUT", "FAULTS_RATE", "FAULTS_DIR", *SCENARIOS):
        assert name in out
    with pytest.raises(SystemExit):
        parse_args(["--scenarios", "nope"])



def test_fused_records_are_checked_by_their_mind_list_and_their_fusion() -> None:
    cfg = FusionConfig()
    cs = clicks(7, [11, 12, 13])
    lists = {"mind": [1, 2], "cooccur": [5, 1], "popular": [9]}
    good = fuse(lists, cfg, 3).item_ids
    recs = prefix_recs(cs)
    for r in recs:
        r.rec.item_ids, r.rec.scores = good, [0.5, 0.4, 0.3]
        r.rec.channel_lists = lists
    out = check_clicks(ClickRun(cs, recs, {7: stored(cs)}, history_len=3), recall, cfg)
    assert out["recommendation_errors"] == 0
    recs[1].rec.channel_lists = {**lists, "mind": [2, 1]}  # MIND's own list is wrong
    recs[2].rec.item_ids = list(reversed(good))  # the fused list is not its lists' fusion
    out = check_clicks(ClickRun(cs, recs, {7: stored(cs)}, history_len=3), recall, cfg)
    assert out["recommendation_errors"] == 2
