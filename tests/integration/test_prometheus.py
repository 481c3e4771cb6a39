"""A real Prometheus scrapes a worker process and an API server; every dashboard query has data.

Needs the `prometheus` binary (Debian: `apt-get install prometheus`); skipped without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from kafka import KafkaProducer

from harness.stack.launch import wait_until
from harness.stack.servers import free_ports
from streams.api.main import create_api
from streams.api.observe import api_readiness, watch_metrics
from streams.observe.metrics import ApiMetrics
from streams.recall.core import open_core
from streams.settings import Settings
from tests.integration.conftest import stream_model_items

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "recall.json"


@pytest.fixture()
def core_settings(core_settings: Settings) -> Settings:
    """The shared stack settings, with the worker logging JSON lines."""
    return core_settings.model_copy(update={"log_format": "json"})


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


@pytest.fixture()
def api_url(worker: Settings) -> Iterator[str]:
    """The API on a real uvicorn server, on the worker's Milvus collection, sampling every 1 s."""
    (port,) = free_ports(1)
    stop = threading.Event()
    with open_core(worker, with_history=False) as core:
        metrics, readiness = ApiMetrics(), api_readiness(core)
        watch_metrics(core, metrics, readiness, stop)
        server = uvicorn.Server(uvicorn.Config(create_api(core, metrics, readiness),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_until("uvicorn", lambda: server.started, 20)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop.set()
            server.should_exit = True
            thread.join(timeout=10)
            readiness.close()


@pytest.fixture()
def prometheus(worker: Settings, api_url: str, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping the worker and the API every second; yields its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no `prometheus` binary on PATH (Debian: apt-get install prometheus)")
    (port,) = free_ports(1)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "recall-worker", "static_configs": [
                {"targets": [f"127.0.0.1:{worker.worker_web_port}"]}]},
            {"job_name": "recall-api", "static_configs": [
                {"targets": [api_url.removeprefix("http://")]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("prometheus", lambda: _ok(f"{url}/-/ready"), 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def send_clicks(settings: Settings, items: list[int]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=1)
    now = time.time()
    for n in range(60):
        value = {"user_id": 80_001 + n % 6, "item_id": items[n % len(items)], "ts": now}
        producer.send(settings.clicks_topic, key=b"8", value=json.dumps(value).encode())
    producer.send(settings.clicks_topic, key=b"8", value=b"{not json")
    producer.send(settings.clicks_topic, key=b"8",
                  value=json.dumps({"user_id": 80_001, "item_id": 10**6, "ts": now}).encode())
    producer.flush()
    producer.close()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_prometheus_scrapes_worker_and_api_for_every_dashboard_query(
        worker: Settings, api_url: str, prometheus: str, tmp_path: Path) -> None:
    worker_url = f"http://127.0.0.1:{worker.worker_web_port}"
    _, ids, _ = stream_model_items(worker)
    send_clicks(worker, [int(i) for i in ids[:20]])
    with httpx.Client(base_url=api_url, timeout=30) as api:
        for n in range(5):
            assert api.post("/recall", json={"hist_item": [[int(ids[n])], [10**6]]}).is_success
        assert api.get("/healthz").json()["status"] == "ok"
        ready = api.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"milvus": "ok",
                                                                        "model": "ok"}
    assert httpx.get(f"{worker_url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{worker_url}/router/").status_code == 404  # Faust's debug pages are off
    wait_until("worker ready", lambda: _ok(f"{worker_url}/readyz"), 30)
    checks = httpx.get(f"{worker_url}/readyz", timeout=10).json()["checks"]
    assert checks == {"kafka": "ok", "redis": "ok", "milvus": "ok", "model": "ok"}

    exposition = httpx.get(f"{worker_url}/metrics").text
    print("\n".join(line for line in exposition.splitlines()
                    if line.startswith(("recall_", "faust_messages_received_per_topic"))))
    assert "faust_topic_messages_sent_total" in exposition  # Faust's own sensor, same registry

    queries = dashboard_queries()
    assert len(queries) >= 20
    empty = list(queries)
    deadline = time.monotonic() + 40
    while empty and time.monotonic() < deadline:
        empty = [(title, expr) for title, expr in empty if not query(prometheus, expr)]
        time.sleep(1)
    assert not empty, f"dashboard queries without data: {empty}"

    # the values move with what was sent
    def total(expr: str) -> float:
        return sum(float(r["value"][1]) for r in query(prometheus, expr))

    assert total("sum(recall_clicks_consumed_total)") >= 61
    assert total("sum(recall_recommendations_published_total)") >= 61
    assert total('sum(recall_dead_letters_total{reason="not_json"})') >= 1
    assert total("sum(recall_history_items_without_vector_total)") >= 1
    assert total('sum(recall_api_requests_total{path="/recall",status="200"})') == 5
    assert total('max(recall_milvus_items{job="recall-worker"})') >= len(ids)
    assert total('min(recall_server_up{job="recall-worker"})') == 1
    lag = f'sum(recall_consumer_lag{{topic="{worker.clicks_topic}"}})'
    wait_until("consumer lag 0", lambda: total(lag) == 0 and len(query(prometheus, lag)) == 1, 20)
    topics = {r["metric"]["topic"] for r in query(prometheus, "recall_consumer_lag")}
    assert topics == {worker.clicks_topic, worker.items_topic}

    # RECALL_LOG_FORMAT=json: Faust's lines and ours are JSON objects; a dead letter's line
    # says where the event was
    lines = [line for line in (tmp_path / "worker.log").read_text().splitlines()
             if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert any(e["logger"].startswith("faust.") for e in events)
    (bad,) = [e for e in events
              if e["message"].startswith("dead letter") and "not JSON" in e["message"]]
    assert bad["topic"] == worker.clicks_topic and bad["partition"] >= 0 and bad["offset"] >= 0
