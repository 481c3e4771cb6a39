"""A real Prometheus scrapes a worker process and an API server; every dashboard panel moves.

Needs the `prometheus` binary (Debian: `apt-get install prometheus`); skipped without it.

Each target of each panel of deploy/grafana/dashboards/recall.json is evaluated with its own
PromQL by the real Prometheus (HTTP API) right after the event that should move it, and must
then show the expected value (finite and non-zero unless said) on the series that event is
about (`expected`; a target added to the dashboard without an entry there fails the test):

- traffic (three rounds of clicks a scrape apart, each with a malformed click and a fresh user
  whose only click has no vector, item vectors, and /recall calls with known and unknown
  items): clicks and recommendations /s, dead letters by reason (`not_json` on the clicks
  topic), batch size mean and p95 (both agents), Faust's messages in (clicks, items) and out
  (recommendations, dead letters), stage latency p95 and mean of every stage of both
  processes, click to publish p50/p90/p99, API requests and latency of /recall, Faust's send
  and commit latency, items in Milvus, popular fallbacks and history items without a vector
  (both processes), the model version (the trained one), server reachable 1 everywhere,
  targets up 1. Rounds, because a series born with its first event (a new `reason`,
  `path`/`status` or `topic` label) shows no rate until a later scrape sees it grow. Run
  again at the end, after the outages and on the new model.
- Milvus stopped (`LocalStack.stop_server`) while clicks arrive: retries and outages of
  `server="milvus"`, lag of the clicks topic above 0, server reachable 0 for Milvus in both
  processes. Then a click must come out as a recommendation again.
- Redis stopped while clicks arrive: the same for `server="redis"` (the worker's probe).
- a newer model exported into the model dir: model version loaded shows it in both
  processes, and the old version's series is gone.
- last (tansu loses every topic and offset on a restart): a batch held by a Milvus outage,
  the broker killed, Milvus back: retries of `server="kafka"` and the worker's Kafka probe 0.
- the API server stopped: targets up 0 for `recall-api`.

Not provoked: the `kafka` line of the outages panel. A broker outage counts as an outage only
when it is the first failure of a batch (or of a send); with the broker down the worker fetches
no new batch, a held batch already counted its outage on the server that held it (its retries
then go on under `kafka`, as here), and Faust's producer keeps a send until the broker
answers or `producer_request_timeout` (1200 s) passes. The size of the lag is not checked:
tansu 0.6.0 answers a partition's end offset as its last record batch's base offset + 1, so
on the local broker lag is short by that batch's size - 1 (docs/operations.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from harness.stack.launch import wait_until
from harness.stack.servers import LocalStack, free_ports
from streams.api.main import create_api, watch_models
from streams.api.observe import api_readiness, watch_metrics
from streams.observe.metrics import ApiMetrics
from streams.recall.core import open_core
from streams.records import Recommendation
from streams.settings import Settings
from tests.integration.conftest import (
    Reader,
    answers,
    stream_model_items,
    train_small_model,
)
from tests.integration.panels import ROOT, Panels, Traffic, expected, query

pytestmark = pytest.mark.integration


@pytest.fixture()
def core_settings(core_settings: Settings) -> Settings:
    """The shared stack settings, with the worker logging JSON lines."""
    return core_settings.model_copy(update={"log_format": "json"})


@dataclass
class Api:
    url: str
    stop: Callable[[], None]


@pytest.fixture()
def api(worker: Settings) -> Iterator[Api]:
    """The API on a real uvicorn server, on the worker's Milvus collection and model dir,
    sampling every 1 s and looking for a newer model every 1 s; `stop()` ends the server."""
    (port,) = free_ports(1)
    stop = threading.Event()
    with open_core(worker, with_history=False) as core:
        metrics, readiness = ApiMetrics(), api_readiness(core)
        watch_metrics(core, metrics, readiness, stop)
        watch_models(core, stop)
        server = uvicorn.Server(uvicorn.Config(create_api(core, metrics, readiness),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()

        def end() -> None:
            server.should_exit = True
            thread.join(timeout=10)

        try:
            wait_until("uvicorn", lambda: server.started, 20)
            yield Api(f"http://127.0.0.1:{port}", end)
        finally:
            stop.set()
            end()
            readiness.close()


@pytest.fixture()
def prometheus_bin() -> str:
    """The `prometheus` binary, or a skip: asked before the worker starts, so a machine without
    it skips instead of stopping a worker that is still loading."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no `prometheus` binary on PATH (Debian: apt-get install prometheus)")
    return binary


@pytest.fixture()
def prometheus(prometheus_bin: str, worker: Settings, api: Api, tmp_path: Path
               ) -> Iterator[str]:
    """Prometheus scraping the worker and the API every second; yields its base URL.

    The config is deploy/prometheus/prometheus.yml with the targets (compose service names)
    replaced by the local ones, and a 1 s interval."""
    binary = prometheus_bin
    (port,) = free_ports(1)
    jobs = [{"job_name": "recall-worker", "static_configs": [
                {"targets": [f"127.0.0.1:{worker.worker_web_port}"]}]},
            {"job_name": "recall-api", "static_configs": [
                {"targets": [api.url.removeprefix("http://")]}]}]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": jobs}
    deployed = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    assert all(f"job_name: {job['job_name']}" in deployed for job in jobs)
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("prometheus", lambda: answers(f"{url}/-/ready"), 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_every_dashboard_panel_moves_on_the_event_it_shows(
        prometheus_bin: str, stack: LocalStack, worker: Settings, api: Api, prometheus: str,
        tmp_path: Path) -> None:
    worker_url = f"http://127.0.0.1:{worker.worker_web_port}"
    old_version, ids, vectors = stream_model_items(worker)
    wait_until("worker ready", lambda: answers(f"{worker_url}/readyz"), 30)
    checks = httpx.get(f"{worker_url}/readyz", timeout=10).json()["checks"]
    assert checks == {"kafka": "ok", "redis": "ok", "milvus": "ok", "model": "ok"}
    assert httpx.get(f"{worker_url}/router/").status_code == 404  # Faust's debug pages are off
    ready = httpx.get(f"{api.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"milvus": "ok", "model": "ok"}
    exposition = httpx.get(f"{worker_url}/metrics").text
    assert "faust_topic_messages_sent_total" in exposition  # Faust's own sensor, same registry

    traffic = Traffic(worker, api.url, ids, vectors)

    def total(expr: str) -> float:
        return sum(float(r["value"][1]) for r in query(prometheus, expr))

    def restart_stopped() -> None:
        for server in ("kafka", "redis", "milvus"):
            if not stack.running(server):
                stack.start_server(server)

    lag = f'sum(recall_consumer_lag{{topic="{worker.clicks_topic}"}})'
    probe_user = 95_000

    def recovered() -> None:
        """Every server up again, and a click sent now comes out as a recommendation."""
        nonlocal probe_user
        started = time.monotonic()
        wait_until("every server up again", lambda: total("min(recall_server_up)") == 1, 60)
        probe_user += 1
        recs = Reader(worker, worker.recs_topic, Recommendation)
        try:
            traffic.click(probe_user, traffic.items[0])
            wait_until("a recommendation after the outage",
                       lambda: any(r.user_id == probe_user for r in recs.drain()), 90)
        finally:
            recs.consumer.close()
        wait_until("consumer lag 0", lambda: total(lag) == 0, 30)
        print(f"recovered: {time.monotonic() - started:.1f} s")

    panels = Panels(prometheus, expected(worker, old_version, "?"))
    try:
        # traffic: throughput, latency, dead letters, fallbacks; the old model everywhere
        traffic.rounds()
        panels.wait("traffic")
        wait_until("consumer lag 0", lambda: total(lag) == 0 and len(query(prometheus, lag)) == 1,
                   20)
        assert total("sum(recall_clicks_consumed_total)") >= traffic.sent
        assert total('sum(recall_dead_letters_total{reason="not_json"})') >= 3
        assert total('sum(recall_api_requests_total{path="/recall",status="200"})') == 9
        assert total('max(recall_milvus_items{job="recall-worker"})') >= len(ids)
        topics = {r["metric"]["topic"] for r in query(prometheus, "recall_consumer_lag")}
        assert topics == {worker.clicks_topic, worker.items_topic}

        # Milvus away while clicks arrive: retries, an outage, lag, Milvus unreachable
        stack.stop_server("milvus")
        try:
            traffic.clicks()
            panels.wait("milvus away")
            assert httpx.get(f"{api.url}/readyz", timeout=10).status_code == 503
        finally:
            restart_stopped()
        recovered()
        stack.stop_server("redis")  # the next batch waits for Redis
        try:
            traffic.clicks()
            panels.wait("redis away")
        finally:
            restart_stopped()
        recovered()

        # a newer model: both processes switch, the old version's series goes stale
        train_small_model(Path(worker.model_dir), seed=1)
        new_version = (Path(worker.model_dir) / "LATEST").read_text().strip()
        assert new_version > old_version
        panels.want = expected(worker, new_version, new_version)
        panels.wait("reload")
        versions = {r["metric"]["version"] for r in query(prometheus, "recall_model_info")}
        assert versions == {new_version}

        # every rate still moves, on the new model, after the outages
        consumed = total("sum(recall_clicks_consumed_total)")
        traffic.rounds(2)
        panels.wait("traffic")
        wait_until("the new clicks counted",
                   lambda: total("sum(recall_clicks_consumed_total)") >= consumed + 44, 30)

        # last, as tansu loses every topic and offset on a restart: a batch held by Milvus,
        # the broker killed, Milvus back: the batch now retries on the broker
        retries = 'sum(recall_retries_total{server="milvus"})'
        before = total(retries)
        stack.stop_server("milvus")
        try:
            traffic.clicks()
            wait_until("a batch held by Milvus", lambda: total(retries) > before, 30)
            stack.stop_server("kafka", kill=True)
            stack.start_server("milvus")
            panels.wait("kafka away")
        finally:
            restart_stopped()
    finally:
        traffic.close()

    api.stop()
    panels.wait("api stopped")
    assert not panels.unmoved()

    # RECALL_LOG_FORMAT=json: Faust's lines and ours are JSON objects; a dead letter's line
    # says where the event was
    lines = [line for line in (tmp_path / "worker.log").read_text().splitlines()
             if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert any(e["logger"].startswith("faust.") for e in events)
    bad = [e for e in events
           if e["message"].startswith("dead letter") and "not JSON" in e["message"]]
    assert bad and all(e["topic"] == worker.clicks_topic and e["partition"] >= 0
                       and e["offset"] >= 0 for e in bad)
    retried = [e for e in events if e["message"].startswith("batch of")]
    assert retried and all(e["topic"] == worker.clicks_topic for e in retried)
