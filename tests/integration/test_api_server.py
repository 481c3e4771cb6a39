"""The API behind a real uvicorn server: 50 MB bodies, sized or chunked, are refused early."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from harness.stack.servers import free_ports
from streams.api.main import create_api
from streams.recall.core import open_core
from streams.settings import Settings

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
        assert client.post("/drop", headers={"X-API-Key": TOKEN}).json() == {"dropped": True}
        assert client.post("/recall", json={"hist_item": [[2**63]]}).status_code == 422
        assert client.post("/recall", json={"hist_item": [[1, 2]]}).status_code == 200
