"""The HTTP API (insert/recall/count/drop) on real Milvus and a trained model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from streams.api import create_api
from streams.core import Core, open_core
from streams.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture()
def api(core_settings: Settings) -> Iterator[tuple[TestClient, Core]]:
    with open_core(core_settings, with_history=False) as core, TestClient(create_api(core)) as c:
        yield c, core
        core.index.destroy()


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
    assert client.post("/drop").json() == {"dropped": True}
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
    ],
)
def test_bad_requests_get_a_clear_4xx(
    api: tuple[TestClient, Core], body: dict[str, object], status: int, needle: str
) -> None:
    client, _ = api
    response = client.post("/recall", json=body)
    assert response.status_code == status
    assert needle in response.text


def test_docs_are_served(api: tuple[TestClient, Core]) -> None:
    client, _ = api
    assert client.get("/docs").status_code == 200
    assert "/recall" in client.get("/openapi.json").json()["paths"]
