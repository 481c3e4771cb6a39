"""HTTP API with the four calls of the PaddleRec/Milvus service: insert, recall, count, drop."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from typing import Annotated

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from streams.core import Core, open_core
from streams.settings import Settings

log = logging.getLogger(__name__)

ItemId = Annotated[StrictInt, Field(gt=0)]


class RecallRequest(BaseModel):
    """`hist_item`: one click history (item ids, oldest first) per row to recall for."""

    model_config = ConfigDict(extra="forbid")
    top_k: Annotated[StrictInt, Field(ge=1, le=1000)] = 50
    hist_item: Annotated[list[Annotated[list[ItemId], Field(min_length=1)]], Field(min_length=1)]


class Candidates(BaseModel):
    item_ids: list[int]
    scores: list[float]
    source: str


class RecallResponse(BaseModel):
    model_version: str
    results: list[Candidates]


def create_api(core: Core) -> FastAPI:
    """The FastAPI app over an open core; interactive docs at /docs."""
    api = FastAPI(title="Streaming recall", version="1.0",
                  description="MIND multi-interest recall over Milvus (insert/recall/count/drop).")
    limit = core.settings.max_api_batch

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model_version": core.model.version}

    @api.post("/insert")
    def insert() -> dict[str, int]:
        """Load the current model's item vectors into Milvus."""
        return {"inserted": core.load_items()}

    @api.post("/recall", response_model=RecallResponse)
    def recall(request: RecallRequest) -> RecallResponse:
        """One candidate list per history row: 4 interests, one Milvus search, merged top_k."""
        if len(request.hist_item) > limit:
            rows = len(request.hist_item)
            raise HTTPException(413, f"at most {limit} rows per request, got {rows}")
        found = core.recaller.recall(request.hist_item, request.top_k)
        version = found[0].model_version if found else core.model.version
        return RecallResponse(
            model_version=version,
            results=[Candidates(item_ids=c.item_ids, scores=c.scores, source=c.source)
                     for c in found],
        )

    @api.get("/count")
    def count() -> dict[str, int]:
        """How many items Milvus holds."""
        return {"count": core.index.count()}

    @api.post("/drop")
    def drop() -> dict[str, bool]:
        """Remove every item from Milvus."""
        core.index.drop()
        return {"dropped": True}

    return api


def watch_models(core: Core, stop: threading.Event) -> threading.Thread:
    """Hot reload in the API process too: poll for a newer export every reload_interval_s."""

    def loop() -> None:
        while not stop.wait(core.settings.reload_interval_s):
            try:
                core.reload_model()
            except Exception as exc:
                log.error("model reload failed, keeping %s: %r", core.model.version, exc)

    thread = threading.Thread(target=loop, name="model-reload", daemon=True)
    thread.start()
    return thread


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m streams.api", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="HTTP recall API; every RECALL_* environment variable applies.")
    parser.add_argument("--host", default=defaults.api_host, help="env RECALL_API_HOST")
    parser.add_argument("--port", type=int, default=defaults.api_port, help="env RECALL_API_PORT")
    args = parser.parse_args(argv)
    settings = defaults.model_copy(update={"api_host": args.host, "api_port": args.port})
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    with open_core(settings, with_history=False) as core:
        watch_models(core, stop)
        try:
            uvicorn.run(create_api(core), host=settings.api_host, port=settings.api_port)
        finally:
            stop.set()


if __name__ == "__main__":
    main()
