"""The API's guard as a unit: body limit, token dependency and error answers on a tiny app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pymilvus import MilvusException

from streams.api.guard import BodyLimit, TokenGate, add_error_handlers, token_dependency
from streams.errors import BadRequest, ModelError, ServiceUnavailable

LIMIT = 2048
RAISES: dict[str, Exception] = {
    "unavailable": ServiceUnavailable("milvus search failed: gone"),
    "redis": redis.ConnectionError("Connection refused"),
    "milvus": MilvusException(message="server unavailable"),
    "timeout": TimeoutError("timed out"),
    "bad": BadRequest("item 0 is not a positive id"),
    "model": ModelError("model has dim 32"),
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()
    app.add_middleware(BodyLimit, limit=LIMIT)
    add_error_handlers(app)
    guard = [Depends(token_dependency(SecretStr("s3cret-token")))]
    app.add_middleware(TokenGate, token=SecretStr("s3cret-token"), paths={"/gated"})

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(body)}

    @app.post("/guarded", dependencies=guard)
    def guarded() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/gated", dependencies=guard)
    def gated(body: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(body)}

    @app.get("/raise/{name}")
    def fail(name: str) -> None:
        raise RAISES[name]

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_body_within_the_limit_reaches_the_handler(client: TestClient) -> None:
    assert client.post("/echo", json={"a": "x" * (LIMIT - 100)}).json() == {"keys": 1}


def test_body_over_the_limit_by_content_length_is_413(client: TestClient) -> None:
    response = client.post("/echo", content=b"{" + b" " * LIMIT + b"}",
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "RECALL_MAX_API_BODY_BYTES" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        for _ in range(1000):
            yield b" " * 1024

    response = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_body_limit_stops_reading_at_the_limit() -> None:
    """At the ASGI level: the app is never called and no chunk past the limit is asked for."""
    received, sent, called = [], [], []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b" " * 1024, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/echo", "headers": []}
    asyncio.run(BodyLimit(app, limit=LIMIT)(scope, receive, send))
    assert not called
    assert len(received) == LIMIT // 1024 + 1
    assert sent[0]["status"] == 413


def test_non_numeric_content_length_is_400(client: TestClient) -> None:
    response = client.post("/echo", content=b"{}", headers={"content-length": "x1",
                                                           "content-type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer wrong"}, 401),
    ({"Authorization": "Basic czNjcmV0LXRva2Vu"}, 401),
    ({"X-API-Key": "s3cret-token-"}, 401),
    ({"Authorization": "Bearer s3cret-token"}, 200),
    ({"X-API-Key": "s3cret-token"}, 200),
    ({"Authorization": "Bearer wrong", "X-API-Key": "s3cret-token"}, 200),
])
def test_token(client: TestClient, headers: dict[str, str], status: int) -> None:
    response = client.post("/guarded", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "s3cret" not in response.text


@pytest.mark.parametrize(("name", "status"), [
    ("unavailable", 503), ("redis", 503), ("milvus", 503), ("timeout", 503),
    ("bad", 422), ("model", 500),
])
def test_errors_map_to_status(client: TestClient, name: str, status: int) -> None:
    response = client.get(f"/raise/{name}")
    assert response.status_code == status
    if status == 503:
        assert response.headers["Retry-After"] == "1"
        assert "retry later" in response.json()["detail"]
    if name == "bad":
        assert response.json()["detail"] == "item 0 is not a positive id"


def test_gate_answers_401_before_parsing_the_body(client: TestClient) -> None:
    response = client.post("/gated", content=b"\x00not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/gated", json={"a": 1}, headers={"X-API-Key": "s3cret-token"}).json() == {
        "keys": 1}
    authorized = {"Authorization": "Bearer s3cret-token", "content-type": "application/json"}
    assert client.post("/gated", content=b"\x00", headers=authorized).status_code == 422
