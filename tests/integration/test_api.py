"""The HTTP API (insert/recall/count/drop) on real Milvus and a trained model."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from streams.api.main import create_api
from streams.recall.core import Core, open_core
from streams.settings import Settings
from streams.stores.history import ClickAt

pytestmark = pytest.mark.integration


def token_client(app: FastAPI) -> TestClient:
    """A client that sends the token the app made at start (no RECALL_API_TOKEN configured)."""
    token = app.state.api_token
    return TestClient(app, headers={"Authorization": f"Bearer {token.get_secret_value()}"})


@pytest.fixture()
def api(core_settings: Settings) -> Iterator[tuple[TestClient, Core]]:
    with open_core(core_settings, with_history=False) as core, \
            token_client(create_api(core)) as c:
        yield c, core
        core.index.destroy()


def confirm(core: Core) -> dict[str, str]:
    """The body /drop needs: the collection's name."""
    return {"confirm": core.settings.milvus_collection}


def test_insert_count_recall_drop(api: tuple[TestClient, Core]) -> None:
    client, core = api
    ids, _ = core.model.item_table()
    assert client.post("/insert").json() == {"inserted": len(ids)}
    assert client.get("/count").json() == {"count": len(ids)}
    rows = [[int(ids[0]), int(ids[1])], [int(ids[2])]]
    body = client.post("/recall", json={"top_k": 20, "hist_item": rows}).json()
    assert body["model_version"] == core.model.version
    assert len(body["results"]) == 2
    direct = core.recaller.recall(rows, 20)
    for got, want in zip(body["results"], direct, strict=True):
        assert got["item_ids"] == want.item_ids and len(got["item_ids"]) == 20
        assert got["scores"] == pytest.approx(want.scores)
        assert got["channels"] == want.channels  # no Redis here: MIND and the model's popular
        assert set(got["channels"]) <= {"mind", "popular"} and "mind" in got["channels"]
        assert all((n >= 0) == (c == "mind")
                   for n, c in zip(got["interests"], got["channels"], strict=True))
    assert client.post("/drop", json=confirm(core)).json() == {"dropped": True}
    assert client.get("/count").json() == {"count": 0}


def test_drop_without_the_collections_name_removes_nothing(
        api: tuple[TestClient, Core]) -> None:
    client, core = api
    inserted = client.post("/insert").json()["inserted"]
    name = core.settings.milvus_collection
    for body in (None, {}, {"confirm": ""}, {"confirm": "items-typo"}, {"confirm": name.upper()}):
        refused = client.post("/drop", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert f'send {{"confirm": "{name}"}}' in refused.json()["detail"], refused.text
    assert client.post("/drop", json={"confirm": name, "all": True}).status_code == 422
    assert client.get("/count").json() == {"count": inserted}  # nothing was dropped
    assert client.post("/drop", json={"confirm": name}).json() == {"dropped": True}
    assert client.get("/count").json() == {"count": 0}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"top_k": 10, "hist_item": []}, 422, "at least 1"),
        ({"top_k": 10, "hist_item": [[]]}, 422, "at least 1"),
        ({"top_k": 10, "hist_item": [["a"]]}, 422, "integer"),
        ({"top_k": 10, "hist_item": [[1.5]]}, 422, "integer"),
        ({"top_k": 0, "hist_item": [[1]]}, 422, "greater than or equal to 1"),
        ({"top_k": 5000, "hist_item": [[1]]}, 422, "less than or equal to 1000"),
        ({"top_k": 10, "hist_item": [[1]] * 2000}, 413, "at most 1024 rows"),
        ({"top_k": 10, "hist_item": [[-1]]}, 422, "greater than 0"),
        ({"top_k": 10, "hist_item": [[2**63]]}, 422, "less than or equal to 9223372036854775807"),
        ({"top_k": 10, "hist_item": [[1, 2**70]]}, 422, "less than or equal to"),
        ({"top_k": 10, "hist_item": [[1]] + [list(range(1, 20_001))]}, 422,
         "hist_item[1]: at most 200 item ids per row, got 20000"),
        ({"top_k": 2**64, "hist_item": [[1]]}, 422, "less than or equal to 1000"),
        ({"top_k": 1000, "hist_item": [[1]] * 101}, 413, "RECALL_MAX_API_RESULTS"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    api: tuple[TestClient, Core], body: dict[str, object], status: int, needle: str
) -> None:
    client, _ = api
    response = client.post("/recall", json=body)
    assert response.status_code == status
    assert needle in response.text


def test_user_ids_leave_out_each_users_seen_items(core_settings: Settings) -> None:
    # MIND alone: the clicks below would move the co-occurrence channel's lists too
    settings = core_settings.model_copy(update={"max_user_id": 1000, "channels": "mind"})
    with open_core(settings) as core, token_client(create_api(core)) as client:
        store = core.history
        assert store is not None
        try:
            store.flush()
            core.load_items()
            ids = [int(i) for i in core.model.item_table()[0]]
            rows = [ids[:2], ids[:2]]
            plain = core.recaller.recall(rows, 20)[0].item_ids
            seen = plain[:15]  # user 7 clicked the 15 best candidates of the row
            store.append([ClickAt(7, item, 1.0 + n, 0, n) for n, item in enumerate(seen)])
            body = {"top_k": 20, "hist_item": rows, "user_ids": [7, 8]}
            got = [r["item_ids"] for r in client.post("/recall", json=body).json()["results"]]
            assert len(got[0]) == 20 and not set(got[0]) & {*seen, *rows[0]}
            assert got[0][:5] == plain[15:20]
            assert got[1] == plain  # user 8 has seen nothing
            without = client.post("/recall", json={"top_k": 20, "hist_item": rows}).json()
            assert [r["item_ids"] for r in without["results"]] == [plain, plain]
            for users, needle in (([7], "one per row of hist_item (2), got 1"),
                                  ([7, 1001], "user ids must be at most 1000, got 1001"),
                                  ([7, 0], "greater than 0")):
                response = client.post("/recall", json={"hist_item": rows, "user_ids": users})
                assert response.status_code == 422 and needle in response.text, response.text
        finally:
            store.flush()
            core.index.destroy()


def test_user_ids_without_redis_change_nothing(api: tuple[TestClient, Core]) -> None:
    client, core = api
    client.post("/insert")
    rows = [[int(core.model.item_table()[0][0])]]
    body = client.post("/recall", json={"top_k": 10, "hist_item": rows, "user_ids": [3]}).json()
    assert body["results"][0]["item_ids"] == core.recaller.recall(rows, 10)[0].item_ids


def test_docs_are_served(api: tuple[TestClient, Core]) -> None:
    client, _ = api
    assert client.get("/docs").status_code == 200
    assert "/recall" in client.get("/openapi.json").json()["paths"]


def test_the_inputs_of_the_report_get_4xx_never_500(api: tuple[TestClient, Core]) -> None:
    """ids 2**63 and 2**70, a 20,000-item row, a 50 MB body (sized and chunked)."""
    client, _ = api
    for row in ([2**63], [2**70], list(range(1, 20_001))):
        assert client.post("/recall", json={"hist_item": [row]}).status_code == 422
    big = json.dumps({"top_k": 10, "hist_item": [[1] * 25_000_000]}).encode()  # 50 MB
    assert len(big) >= 50_000_000
    response = client.post("/recall", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413

    def chunked() -> Iterator[bytes]:
        yield b'{"hist_item": [['
        for _ in range(50_000):
            yield b"1," * 500
        yield b"1]]}"

    response = client.post("/recall", content=chunked(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_max_item_id_setting_bounds_ids(core_settings: Settings) -> None:
    settings = core_settings.model_copy(update={"max_item_id": 10_000, "max_api_history": 3})
    with open_core(settings, with_history=False) as core, TestClient(create_api(core)) as client:
        try:
            ok = client.post("/recall", json={"hist_item": [[1, 10_000]]})
            assert ok.status_code == 200
            too_big = client.post("/recall", json={"hist_item": [[1, 10_001]]})
            assert too_big.status_code == 422 and "at most 10000" in too_big.text
            assert client.post("/recall", json={"hist_item": [[1, 2, 3, 4]]}).status_code == 422
        finally:
            core.index.destroy()


TOKEN = "tok-5f1e2d3c4b5a"


@pytest.fixture()
def guarded(core_settings: Settings, caplog: pytest.LogCaptureFixture,
            request: pytest.FixtureRequest) -> Iterator[TestClient]:
    settings = core_settings.model_copy(
        update={"api_token": SecretStr(TOKEN), "api_token_all": request.param})
    caplog.set_level(logging.DEBUG)
    with open_core(settings, with_history=False) as core, TestClient(create_api(core)) as c:
        try:
            yield c
        finally:
            core.index.destroy()


BEARER = {"Authorization": f"Bearer {TOKEN}"}
KEY = {"X-API-Key": TOKEN}
RECALL = {"hist_item": [[1, 2]]}


@pytest.mark.parametrize("guarded", [False], indirect=True)
def test_token_protects_insert_and_drop(guarded: TestClient, core_settings: Settings,
                                        caplog: pytest.LogCaptureFixture) -> None:
    client = guarded
    for path in ("/insert", "/drop"):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}):
            response = client.post(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/count").json() == {"count": 0}  # nothing was inserted
    assert client.post("/insert", headers=BEARER).json()["inserted"] > 0
    assert client.post("/recall", json=RECALL).status_code == 200  # reads stay open
    assert client.get("/count").json()["count"] > 0
    drop = {"confirm": core_settings.milvus_collection}  # guarded's collection
    assert client.post("/drop", headers=KEY, json=drop).json() == {"dropped": True}
    assert TOKEN not in caplog.text
    assert "is not set" not in caplog.text


@pytest.mark.parametrize("guarded", [True], indirect=True)
def test_token_all_protects_every_call_but_health(guarded: TestClient,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    client = guarded
    assert client.get("/health").status_code == 200
    assert client.get("/count").status_code == 401
    assert client.post("/recall", json=RECALL).status_code == 401
    assert client.get("/count", headers=KEY).status_code == 200
    assert client.post("/recall", json=RECALL, headers=BEARER).status_code == 200
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    for path, method in (("/insert", "post"), ("/drop", "post"), ("/recall", "post"),
                         ("/count", "get")):
        assert {"bearer": []} in schema["paths"][path][method]["security"], path
    assert "security" not in schema["paths"]["/health"]["get"]
    assert TOKEN not in caplog.text and TOKEN not in json.dumps(schema)


def test_without_a_configured_token_the_api_makes_one_and_logs_it_once(
        core_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    assert core_settings.api_token is None and core_settings.api_auth == "token"
    caplog.set_level(logging.DEBUG)
    with open_core(core_settings, with_history=False) as core:
        try:
            app = create_api(core)
            token = app.state.api_token.get_secret_value()
            assert len(token) >= 40
            assert create_api(core).state.api_token.get_secret_value() != token  # per start
            with TestClient(app) as client:
                for path in ("/insert", "/drop"):
                    refused = client.post(path, json=confirm(core))
                    assert refused.status_code == 401, (path, refused.text)
                assert client.get("/count").json() == {"count": 0}  # reads stay open
                auth = {"Authorization": f"Bearer {token}"}
                assert client.post("/insert", headers=auth).json()["inserted"] > 0
                assert client.post("/drop", headers=auth, json=confirm(core)).json() == \
                    {"dropped": True}
        finally:
            core.index.destroy()
    assert caplog.text.count(token) == 1  # the start's one line, nowhere else
    assert "RECALL_API_TOKEN is not set: this run's API token is " + token in caplog.text


def test_auth_off_opens_the_mutating_calls(core_settings: Settings,
                                           caplog: pytest.LogCaptureFixture) -> None:
    settings = core_settings.model_copy(update={"api_auth": "off"})
    with open_core(settings, with_history=False) as core, TestClient(create_api(core)) as c:
        try:
            assert c.app.state.api_token is None  # type: ignore[attr-defined]
            assert c.post("/insert").json()["inserted"] > 0
            assert c.post("/drop").status_code == 422  # the confirmation still applies
            assert c.post("/drop", json=confirm(core)).json() == {"dropped": True}
            assert "security" not in c.get("/openapi.json").json()["paths"]["/drop"]["post"]
        finally:
            core.index.destroy()
    assert "RECALL_API_AUTH=off: /insert, /drop need no token" in caplog.text
