"""What the dashboard's panels must show, checked on a real Prometheus, and the traffic
that moves them (tests/integration/test_prometheus.py says which event moves which panel).

`expected` maps each (panel title, refId) of deploy/grafana/dashboards/recall.json to the
phases and series it must show; `Panels.wait(phase)` evaluates every such target's PromQL
through Prometheus' HTTP API until it shows them; `Traffic` sends the clicks, item vectors
and API calls of a traffic round.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from kafka import KafkaProducer

from producers.items import embedding_records, publish
from producers.kafka import open_sender
from streams.observe.metrics import RECALL_STAGES, SERVERS, WORKER_STAGES
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "recall.json"
UNKNOWN_ITEM = 10**6  # no vector anywhere: skipped in a history, a popular fallback alone
WORKER, API = {"job": "recall-worker"}, {"job": "recall-api"}


def nonzero(value: float) -> bool:
    return math.isfinite(value) and value != 0


def zero(value: float) -> bool:
    return value == 0


@dataclass(frozen=True)
class Expect:
    """After `phase`, each label set of `series` matches a series whose value passes `check`."""

    phase: str
    series: tuple[Mapping[str, str], ...] = ({},)
    check: Callable[[float], bool] = nonzero


Wants = dict[tuple[str, str], tuple[Expect, ...]]


def expected(s: Settings, serving: str, reloaded: str) -> Wants:
    """(panel title, refId) -> what the panel's query shows after each event provoking it;
    `serving`: the model version loaded during traffic, `reloaded`: the one a reload brings."""
    stages = tuple({"job": "recall-worker", "stage": st} for st in WORKER_STAGES) + tuple(
        {"job": "recall-api", "stage": st} for st in RECALL_STAGES)
    traffic = (Expect("traffic"),)

    def away(server: str) -> tuple[Expect, ...]:
        return (Expect(f"{server} away", ({"server": server},)),)

    def unreachable(server: str, jobs: tuple[dict[str, str], ...]) -> Expect:
        return Expect(f"{server} away", tuple(job | {"server": server} for job in jobs), zero)

    return {
        ("Clicks consumed /s", "A"): traffic,
        ("Recommendations published /s", "A"): traffic,
        ("Dead letters by reason /s", "A"):
            (Expect("traffic", ({"topic": s.clicks_topic, "reason": "not_json"},)),),
        ("Batch size (mean)", "A"):
            (Expect("traffic", ({"agent": "recommend"}, {"agent": "upsert_items"})),),
        ("Batch size (p95)", "A"):
            (Expect("traffic", ({"agent": "recommend"}, {"agent": "upsert_items"})),),
        ("Kafka messages in/out per topic (Faust) /s", "A"):
            (Expect("traffic", ({"topic": s.clicks_topic}, {"topic": s.items_topic})),),
        ("Kafka messages in/out per topic (Faust) /s", "B"):
            (Expect("traffic", ({"topic": f"topic.{s.recs_topic}"},  # Faust's label value
                                {"topic": f"topic.{s.dead_letter_topic}"})),),
        ("Stage latency p95 (per batch)", "A"): (Expect("traffic", stages),),
        ("Stage latency mean (per batch)", "A"): (Expect("traffic", stages),),
        ("Click to publish", "A"): traffic,
        ("Click to publish", "B"): traffic,
        ("Click to publish", "C"): traffic,
        ("API requests by route and status /s", "A"):
            (Expect("traffic", ({"path": "/recall", "status": "200"},)),),
        ("API latency p95 by route", "A"): (Expect("traffic", ({"path": "/recall"},)),),
        ("Kafka send and commit latency p95 (Faust)", "A"): traffic,
        ("Kafka send and commit latency p95 (Faust)", "B"): traffic,
        ("Items in Milvus", "A"): (Expect("traffic", (WORKER, API)),),
        ("Popular fallbacks /s", "A"): (Expect("traffic", (WORKER, API)),),
        ("History items without a vector /s", "A"): (Expect("traffic", (WORKER, API)),),
        ("Retries by server /s", "A"): away("milvus") + away("kafka") + away("redis"),
        # the broker's outage is not counted here (see the module's docstring)
        ("Outages by server (1h)", "A"): away("milvus") + away("redis"),
        ("Consumer lag per partition", "A"):
            (Expect("milvus away", ({"topic": s.clicks_topic},)),
             Expect("redis away", ({"topic": s.clicks_topic},))),
        ("Server reachable (readiness)", "A"):
            (Expect("traffic", tuple(WORKER | {"server": x} for x in SERVERS + ("model",))
                    + (API | {"server": "milvus"}, API | {"server": "model"})),
             unreachable("milvus", (WORKER, API)), unreachable("kafka", (WORKER,)),
             unreachable("redis", (WORKER,))),
        ("Model version loaded", "A"):
            (Expect("traffic", (WORKER | {"version": serving}, API | {"version": serving})),
             Expect("reload", (WORKER | {"version": reloaded}, API | {"version": reloaded}))),
        ("Targets up", "A"): (Expect("traffic", (WORKER, API)),
                              Expect("api stopped", (API,), zero)),
    }


def dashboard_targets() -> dict[tuple[str, str], str]:
    """(panel title, refId) -> PromQL, for every target of every panel."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {(p["title"], t["refId"]): t["expr"] for p in panels for t in p.get("targets", [])}


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def unmet(prometheus: str, expr: str, want: Expect) -> list[Mapping[str, str]]:
    """The label sets of `want` that no series of `expr` now matches with a passing value."""
    rows = [(r["metric"], float(r["value"][1])) for r in query(prometheus, expr)]
    return [labels for labels in want.series
            if not any(labels.items() <= metric.items() and want.check(value)
                       for metric, value in rows)]


def _labels(metric: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in sorted(metric.items())
                          if k not in ("__name__", "instance")) + "}"


class Panels:
    """The dashboard's targets and what each must show; `wait(phase)` checks a phase's."""

    def __init__(self, prometheus: str, want: Wants) -> None:
        self.prometheus, self.want, self.targets = prometheus, want, dashboard_targets()
        assert set(self.targets) == set(want), "every dashboard target needs an Expect here"
        self.moved: dict[tuple[str, str], set[str]] = {key: set() for key in want}

    def wait(self, phase: str, timeout_s: float = 45) -> None:
        """Wait until every target with an Expect for `phase` shows it; print what they show."""
        todo = {key: w for key, wants in self.want.items() for w in wants if w.phase == phase}
        assert todo, phase
        keys = sorted(todo)
        missing: dict[tuple[str, str], list[Mapping[str, str]]] = {}
        started = time.monotonic()
        deadline = started + timeout_s
        while todo and time.monotonic() < deadline:
            missing = {key: unmet(self.prometheus, self.targets[key], w)
                       for key, w in todo.items()}
            for key in [key for key, labels in missing.items() if not labels]:
                self.moved[key].add(phase)
                del todo[key]
            if todo:
                time.sleep(0.5)
        print(f"{phase}: {time.monotonic() - started:.1f} s")
        for key in keys:
            print(f"  {key[0]} [{key[1]}]: " + ", ".join(
                f"{_labels(r['metric'])}={float(r['value'][1]):.4g}"
                for r in query(self.prometheus, self.targets[key])))
        assert not todo, f"after {phase}, panels that did not move: " + "; ".join(
            f"{key} {self.targets[key]} wants {missing[key]}: "
            f"{query(self.prometheus, self.targets[key])}" for key in sorted(todo))

    def unmoved(self) -> dict[tuple[str, str], set[str]]:
        """Targets and the phases of theirs not (yet) shown."""
        return {key: missing for key, wants in self.want.items()
                if (missing := {w.phase for w in wants} - self.moved[key])}


class Traffic:
    """Clicks (one malformed, one fresh user on an item without a vector), item vectors and
    API calls."""

    def __init__(self, settings: Settings, api_url: str, ids: np.ndarray,
                 vectors: np.ndarray) -> None:
        self.settings, self.items = settings, [int(i) for i in ids[:20]]
        self.table = ids[:10], vectors[:10]
        self.api = httpx.Client(base_url=api_url, timeout=30)
        self.fresh_user = 90_000
        self.sent = 0

    def click(self, user: int, item: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap)
        producer.send(self.settings.clicks_topic, key=str(user).encode(), value=json.dumps(
            {"user_id": user, "item_id": item, "ts": time.time()}).encode())
        producer.flush()
        producer.close()

    def clicks(self, n: int = 20) -> None:
        """A fresh producer each time: the broker may have been restarted since."""
        s, now = self.settings, time.time()
        producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=1)
        for k in range(n):
            value = {"user_id": 80_001 + k % 6, "item_id": self.items[k % len(self.items)],
                     "ts": now}
            producer.send(s.clicks_topic, key=b"8", value=json.dumps(value).encode())
        self.fresh_user += 1
        producer.send(s.clicks_topic, key=b"9", value=json.dumps(
            {"user_id": self.fresh_user, "item_id": UNKNOWN_ITEM, "ts": now}).encode())
        producer.send(s.clicks_topic, key=b"8", value=b"{not json")
        producer.flush()
        producer.close()
        self.sent += n + 2

    def calls(self) -> None:
        for n in range(3):
            answer = self.api.post("/recall", json={"hist_item": [[self.items[n]],
                                                                  [UNKNOWN_ITEM]]})
            assert answer.is_success, answer.text
            assert answer.json()["results"][1]["source"] == "popular"  # no usable history

    def item_vectors(self) -> None:
        with open_sender(self.settings.kafka_bootstrap, self.settings.items_topic) as sender:
            publish(embedding_records(*self.table), sender)

    def rounds(self, count: int = 3, pause_s: float = 1.5) -> None:
        for n in range(count):
            if n:
                time.sleep(pause_s)
            self.clicks()
            self.item_vectors()
            self.calls()

    def close(self) -> None:
        self.api.close()
