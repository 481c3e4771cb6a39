"""What stands between the network and the API's handlers: body size, token, error answers.

- `BodyLimit`: 413 for a body over `max_api_body_bytes` before anything parses it (by its
  Content-Length, and by counting the bytes of a chunked body as they arrive).
- `TokenGate` + `token_dependency`: `Authorization: Bearer <token>` or `X-API-Key: <token>`,
  compared in constant time; 401 with `WWW-Authenticate` otherwise, before the body is read.
  The dependency declares the OpenAPI security schemes, so /docs has an Authorize button.
- `add_error_handlers`: server outages answer 503 (with Retry-After), bad requests 422; the
  exception text goes to the log, never the token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import SecretStr
from pymilvus import MilvusException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams import errors
from streams.errors import BadRequest, RecallError

log = logging.getLogger(__name__)

BEARER = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="Authorization: Bearer <RECALL_API_TOKEN>")
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey",
                       description="X-API-Key: <RECALL_API_TOKEN>")
RETRY_AFTER_S = "1"
OUTAGES = (*errors.OUTAGES, MilvusException)  # the API's own reads also meet raw Milvus errors


def _json(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: reads at most `limit` body bytes, answers 413 past that, replays the rest.

    The whole (bounded) body is buffered before the app runs, so a handler never sees a
    partial body and the answer comes before any JSON parsing.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _json(400, "invalid Content-Length")(scope, receive, send)
                return
            if int(length) > self.limit:
                await self._too_large(scope, receive, send)
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # http.disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over {self.limit} bytes (RECALL_MAX_API_BODY_BYTES)"
        await _json(413, detail, {"Connection": "close"})(scope, receive, send)


def token_matches(authorization: str | None, api_key: str | None, expected: bytes) -> bool:
    """Whether a bearer credential or an X-API-Key equals the token (constant-time compare)."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    given = [credentials if scheme.lower() == "bearer" and credentials else None, api_key]
    # compare every candidate, so the time taken does not say which header was tried
    return any([hmac.compare_digest(g.encode(), expected) for g in given if g is not None])


def _unauthorized() -> HTTPException:
    return HTTPException(401, "missing or wrong API token",
                         headers={"WWW-Authenticate": 'Bearer realm="recall"'})


def token_dependency(token: SecretStr) -> Callable[..., None]:
    """A FastAPI dependency that accepts the token as a bearer token or an X-API-Key header."""
    expected = token.get_secret_value().encode()

    def require_token(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        api_key: Annotated[str | None, Security(API_KEY)],
    ) -> None:
        authorization = f"Bearer {bearer.credentials}" if bearer is not None else None
        if not token_matches(authorization, api_key, expected):
            raise _unauthorized()

    return require_token


class TokenGate:
    """ASGI middleware: 401 on `paths` before the body is read or parsed (FastAPI parses a JSON
    body before it runs dependencies); the dependency stays for the OpenAPI security schemes."""

    def __init__(self, app: ASGIApp, token: SecretStr, paths: set[str]) -> None:
        self.app, self.paths = app, paths
        self._expected = token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            headers = Headers(scope=scope)
            if not token_matches(headers.get("authorization"), headers.get("x-api-key"),
                                 self._expected):
                error = _unauthorized()
                await _json(401, error.detail, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def add_error_handlers(api: FastAPI) -> None:
    """Outages -> 503 with Retry-After; BadRequest -> 422; other RecallErrors -> 503 or 500."""

    async def outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: backing server unavailable: %s", request.method, request.url.path,
                    exc)
        return _json(503, "a backing server (Milvus, Redis or Kafka) is unavailable; "
                          "retry later", {"Retry-After": RETRY_AFTER_S})

    async def recall_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, BadRequest):
            return _json(422, str(exc))
        if errors.classify(exc).retriable:
            return await outage(request, exc)
        log.error("%s %s failed: %r", request.method, request.url.path, exc)
        return _json(500, f"internal error ({type(exc).__name__})")

    handlers: dict[Any, Any] = {RecallError: recall_error}
    handlers.update({kind: outage for kind in OUTAGES})
    for kind, handler in handlers.items():
        api.add_exception_handler(kind, handler)
