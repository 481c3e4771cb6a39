"""The API behind a real uvicorn server: 50 MB bodies, sized or chunked, are refused early;
`python -m streams.api` started alone without RECALL_API_TOKEN makes a token and logs it once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from pymilvus import MilvusClient

from harness.stack.launch import to_env, wait_until
from harness.stack.servers import free_ports
from streams.api.main import create_api
from streams.recall.core import open_core
from streams.settings import Settings
from tests.integration.conftest import answers

pytestmark = pytest.mark.integration

TOKEN = "srv-0b7e5a3c"
BIG = 50_000_000


@pytest.fixture()
def base_url(core_settings: Settings) -> Iterator[str]:
    (port,) = free_ports(1)
    settings = core_settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    with open_core(settings, with_history=False) as core:
        server = uvicorn.Server(uvicorn.Config(create_api(core), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not server.started:
                assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            core.index.destroy()


def chunks() -> Iterator[bytes]:
    """A 50 MB JSON body without Content-Length (Transfer-Encoding: chunked)."""
    yield b'{"hist_item": [['
    for _ in range(BIG // 60_000):
        yield b"1," * 30_000
    yield b"1]]}"


def test_fifty_megabytes_get_413_before_they_are_read(base_url: str) -> None:
    body = b'{"hist_item": [[' + b"1," * (BIG // 2) + b'1]]}'
    for content in (body, chunks()):
        started = time.monotonic()
        response = httpx.post(f"{base_url}/recall", content=content, timeout=30,
                              headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert "RECALL_MAX_API_BODY_BYTES" in response.json()["detail"]
        assert time.monotonic() - started < 5


def test_token_and_limits_over_the_wire(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        refused = client.post("/drop")
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
        unconfirmed = client.post("/drop", headers={"X-API-Key": TOKEN})
        assert unconfirmed.status_code == 422 and "confirm" in unconfirmed.text
        assert client.post("/recall", json={"hist_item": [[2**63]]}).status_code == 422
        assert client.post("/recall", json={"hist_item": [[1, 2]]}).status_code == 200


def test_recall_api_alone_makes_a_token_logs_it_once_and_requires_it(
        core_settings: Settings, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECALL_")}
    env.update(to_env(core_settings.model_copy(update={"api_port": port})))
    assert "RECALL_API_TOKEN" not in env and env["RECALL_API_AUTH"] == "token"
    log_path = tmp_path / "api.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streams.api"], stdout=log,
                                stderr=subprocess.STDOUT, env=env)
        try:
            def alive() -> None:
                assert proc.poll() is None, log_path.read_text()[-3000:]

            wait_until("recall-api", lambda: answers(f"{base}/health"), 120, alive)
            found = re.search(r"this run's API token is (\S+) ", log_path.read_text())
            assert found, log_path.read_text()[-3000:]
            token = found.group(1)
            name = core_settings.milvus_collection
            with httpx.Client(base_url=base, timeout=60) as client:
                for path in ("/insert", "/drop"):
                    refused = client.post(path, json={"confirm": name})
                    assert refused.status_code == 401, (path, refused.text)
                assert client.get("/count").json() == {"count": 0}  # reading stays open
                auth = {"Authorization": f"Bearer {token}"}
                inserted = client.post("/insert", headers=auth).json()["inserted"]
                assert inserted > 0
                wrong = client.post("/drop", headers=auth, json={"confirm": "items"})
                assert wrong.status_code == 422 and name in wrong.json()["detail"]
                assert client.get("/count").json() == {"count": inserted}
                assert client.post("/drop", headers=auth, json={"confirm": name}).json() == \
                    {"dropped": True}
                assert client.get("/count").json() == {"count": 0}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            MilvusClient(core_settings.milvus_uri).drop_collection(core_settings.milvus_collection)
    assert log_path.read_text().count(token) == 1  # the start's line; no access log holds it
