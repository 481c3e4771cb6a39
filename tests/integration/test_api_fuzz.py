"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

Every operation, with inputs that fit the schema and inputs that do not, on the real core
(trained model, Milvus): no answer may be a 5xx. Three ways in: auth off (RECALL_API_AUTH=off);
token required on every call and sent; token required and not sent (a 401 is fine, a 5xx is
not).

schemathesis' own pytest wiring (`schema.parametrize`, `from_fixture`) reads a private pytest
attribute that pytest 9 removed, so each operation's Hypothesis strategy is driven directly.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from streams.api.main import create_api
from streams.recall.core import open_core
from streams.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "fuzz-7d0c4e1a9b"
MODES: dict[str, tuple[SecretStr | None, dict[str, str]]] = {
    "open": (None, {}),
    "token-sent": (SecretStr(TOKEN), {"Authorization": f"Bearer {TOKEN}"}),
    "token-missing": (SecretStr(TOKEN), {}),
}
EXAMPLES = 60  # per operation with a body (POST /recall, POST /drop) and generation mode
NO_BODY_EXAMPLES = 5  # the others vary only in headers; /insert upserts the whole item table
OPERATIONS = {"GET /health", "POST /insert", "POST /recall", "GET /count", "POST /drop",
              "GET /healthz", "GET /readyz"}


def fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str],
                   statuses: list[int]) -> None:
    examples = EXAMPLES if len(operation.body) else NO_BODY_EXAMPLES

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        if mode == GenerationMode.POSITIVE:
            raise  # only an operation without inputs has no invalid one (GET /health)


@pytest.mark.parametrize("mode", list(MODES))
def test_no_input_gets_a_server_error(core_settings: Settings, mode: str) -> None:
    token, headers = MODES[mode]
    fuzz = core_settings.model_copy(update={
        "api_auth": "off" if token is None else "token", "api_token": token,
        "api_token_all": True})
    statuses: dict[str, list[int]] = {}
    with open_core(fuzz, with_history=False) as core:
        try:
            schema = schemathesis.openapi.from_asgi("/openapi.json", create_api(core))
            started = time.monotonic()
            for result in schema.get_all_operations():
                assert isinstance(result, Ok), result  # Err: an operation's schema is invalid
                operation = result.ok()
                seen = statuses.setdefault(operation.label, [])
                for generation in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz_operation(operation, generation, headers, seen)
            print(f"{mode}: {sum(map(len, statuses.values()))} calls "
                  f"in {time.monotonic() - started:.1f}s")
        finally:
            core.index.destroy()
    assert set(statuses) == OPERATIONS
    recall = statuses["POST /recall"]
    if mode == "token-missing":
        assert set(recall) == {401}
    else:  # the generated inputs reached the handler: answers and validation errors both
        assert 200 in recall and 422 in recall, recall
