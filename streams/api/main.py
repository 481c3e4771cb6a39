"""HTTP API with the four calls of the PaddleRec/Milvus service: insert, recall, count, drop."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from streams import logs
from streams.api.auth import announce, required_token, with_token
from streams.api.guard import BodyLimit, TokenGate, add_error_handlers, token_dependency
from streams.api.live import LivePage
from streams.api.observe import add_observability, api_readiness, watch_metrics
from streams.observe.health import Readiness
from streams.observe.metrics import ApiMetrics
from streams.recall.core import Core, open_core
from streams.settings import INT64_MAX, Settings
from streams.stores.history import HistoryStore, UserState

log = logging.getLogger(__name__)
TOKEN_HELP = (" Calls marked with a lock need `Authorization: Bearer <token>` or"
              " `X-API-Key: <token>` (RECALL_API_TOKEN, or the token the API logged or"
              " `make run` printed at start); use Authorize above.")

Id = Annotated[StrictInt, Field(gt=0, le=INT64_MAX)]


class RecallRequest(BaseModel):
    """`hist_item`: one click history (item ids, oldest first) per row to recall for;
    `user_ids` (optional): the user of each row, whose seen items are then never returned.

    Limits from the settings: RECALL_MAX_API_BATCH rows and RECALL_MAX_API_RESULTS rows x top_k
    (413 past them), RECALL_MAX_API_HISTORY ids per row, ids up to RECALL_MAX_ITEM_ID and
    RECALL_MAX_USER_ID, one user id per row (422).
    """

    model_config = ConfigDict(extra="forbid")
    top_k: Annotated[StrictInt, Field(ge=1, le=1000)] = 50
    hist_item: Annotated[list[Annotated[list[Id], Field(min_length=1)]], Field(min_length=1)]
    user_ids: list[Id] | None = None


def check_limits(request: RecallRequest, settings: Settings) -> None:
    """The settings' bounds on a parsed request: 413 for too many rows or results, else 422."""
    rows = len(request.hist_item)
    if rows > settings.max_api_batch:
        raise HTTPException(413, f"at most {settings.max_api_batch} rows per request, got {rows}")
    if rows * request.top_k > settings.max_api_results:
        raise HTTPException(413, f"rows x top_k is {rows * request.top_k}, at most "
                                 f"{settings.max_api_results} per request (RECALL_MAX_API_RESULTS)")
    for n, row in enumerate(request.hist_item):
        if len(row) > settings.max_api_history:
            raise HTTPException(422, f"hist_item[{n}]: at most {settings.max_api_history} item "
                                     f"ids per row, got {len(row)}")
        if max(row) > settings.max_item_id:
            raise HTTPException(422, f"hist_item[{n}]: item ids must be at most "
                                     f"{settings.max_item_id}, got {max(row)}")
    users = request.user_ids
    if users is not None:
        if len(users) != rows:
            raise HTTPException(422, f"user_ids: one per row of hist_item ({rows}), "
                                     f"got {len(users)}")
        if users and max(users) > settings.max_user_id:
            raise HTTPException(422, f"user_ids: user ids must be at most "
                                     f"{settings.max_user_id}, got {max(users)}")


def exclusions(request: RecallRequest, history: HistoryStore | None) -> list[list[int]] | None:
    """Per row, the items never returned: the user's seen items (one Redis pipeline) and the
    row itself; None (each row alone) without `user_ids` or without Redis."""
    if request.user_ids is None or history is None:
        return None
    seen = history.seen(request.user_ids)  # empty lists, no round trip: seen items off
    return [UserState(row, seen[user]).excluded()
            for row, user in zip(request.hist_item, request.user_ids, strict=True)]


class DropRequest(BaseModel):
    """`confirm`: the name of the Milvus collection to empty (RECALL_MILVUS_COLLECTION), so a
    stray POST cannot wipe the index, token or not."""

    model_config = ConfigDict(extra="forbid")
    confirm: str = Field("", max_length=255, description="the collection's name")


def check_drop(body: DropRequest | None, collection: str) -> None:
    """422 unless the body names the collection /drop would empty."""
    if body is None or body.confirm != collection:
        given = "no body" if body is None else f"confirm {body.confirm!r}"
        raise HTTPException(422, f"/drop removes every item of the collection {collection!r}; "
                                 f'send {{"confirm": "{collection}"}} to do it (got {given})')


class CandidateList(BaseModel):
    item_ids: list[int]
    scores: list[float]
    source: str
    interests: list[int] = Field(
        description="per item, the interest (0..K-1) whose search found it; -1: another channel "
        "or the popular fallback")
    channels: list[str] = Field(
        description="per item, the channel that recalled it: mind, cooccur or popular")


class RecallResponse(BaseModel):
    model_version: str
    results: list[CandidateList]


def create_api(core: Core, metrics: ApiMetrics | None = None,
               readiness: Readiness | None = None, live: LivePage | None = None) -> FastAPI:
    """The FastAPI app over an open core; interactive docs at /docs; the live page with `live`.

    With RECALL_API_AUTH=token and no RECALL_API_TOKEN, a token is made here and logged once;
    `api.state.api_token` holds the token the app checks (None with auth off)."""
    settings, generated = with_token(core.settings)
    token = required_token(settings)
    announce(settings, generated)
    metrics = metrics if metrics is not None else ApiMetrics()
    guard: list[Any] = [] if token is None else [Depends(token_dependency(token))]
    mutating = guard
    reading = guard if settings.api_token_all else []
    api = FastAPI(title="Streaming recall", version="1.0",
                  description="MIND multi-interest recall over Milvus (insert/recall/count/drop)."
                              + ("" if token is None else TOKEN_HELP),
                  lifespan=live.lifespan if live is not None else None)
    api.state.api_token = token
    api.add_middleware(BodyLimit, limit=settings.max_api_body_bytes)
    add_error_handlers(api)

    @api.get("/health")
    def health() -> dict[str, str]:
        """Liveness; never needs the token."""
        return {"status": "ok", "model_version": core.model.version}

    @api.post("/insert", dependencies=mutating)
    def insert() -> dict[str, int]:
        """Load the current model's item vectors into Milvus."""
        return {"inserted": core.load_items()}

    @api.post("/recall", response_model=RecallResponse, dependencies=reading)
    def recall(request: RecallRequest) -> RecallResponse:
        """One candidate list per history row: MIND (4 interests, one Milvus search) fused
        with the live co-occurrence and popularity channels (RECALL_CHANNELS), top_k.

        The row's own items are never returned. With `user_ids` (one per row) and
        RECALL_EXCLUDE_SEEN on, an API that reads Redis (RECALL_LIVE_PAGE) also leaves out
        every item that user has seen (its last RECALL_SEEN_MAX distinct clicks, as the
        stream does); elsewhere `user_ids` are checked and change nothing.
        """
        check_limits(request, settings)
        timings: dict[str, float] = {}
        found = core.recaller.recall(request.hist_item, request.top_k, timings=timings,
                                     exclude=exclusions(request, core.history))
        metrics.observe_stages(timings)
        metrics.recalled(sum(c.source == "popular" for c in found), sum(c.skipped for c in found))
        version = found[0].model_version if found else core.model.version
        return RecallResponse(
            model_version=version,
            results=[CandidateList(item_ids=c.item_ids, scores=c.scores, source=c.source,
                                interests=c.interests, channels=c.channels) for c in found],
        )

    @api.get("/count", dependencies=reading)
    def count() -> dict[str, int]:
        """How many items Milvus holds."""
        return {"count": core.index.count()}

    @api.post("/drop", dependencies=mutating)
    def drop(body: DropRequest | None = None) -> dict[str, bool]:
        """Remove every item from Milvus; the body must name the collection:
        `{"confirm": "<RECALL_MILVUS_COLLECTION>"}` (else 422, nothing removed)."""
        check_drop(body, core.index.collection)
        core.index.drop()
        return {"dropped": True}

    if live is not None:
        api.include_router(live.router(reading, mutating))

    if token is not None:  # outermost: no body is read for a caller without it
        paths = {route.path for route in api.routes
                 if isinstance(route, APIRoute) and route.dependencies == guard}
        api.add_middleware(TokenGate, token=token, paths=paths)
    add_observability(api, core, metrics, readiness or api_readiness(core))
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
    parser.add_argument("--live", action=argparse.BooleanOptionalAction,
                        default=defaults.live_page,
                        help="serve the live page /live (env RECALL_LIVE_PAGE)")
    parser.add_argument("--item-titles", default=defaults.item_titles,
                        help="CSV of item titles for the live page (env RECALL_ITEM_TITLES)")
    args = parser.parse_args(argv)
    settings = defaults.model_copy(update={"api_host": args.host, "api_port": args.port,
                                           "live_page": args.live,
                                           "item_titles": args.item_titles})
    logs.configure(settings.log_format)
    stop = threading.Event()
    # Redis: the live page reads histories, and /recall's user_ids read the users' seen items
    with open_core(settings, with_history=settings.live_page or settings.exclude_seen) as core:
        metrics, readiness = ApiMetrics(), api_readiness(core)
        live = LivePage.from_core(core) if settings.live_page else None
        watch_models(core, stop)
        watch_metrics(core, metrics, readiness, stop)
        try:
            uvicorn.run(create_api(core, metrics, readiness, live), host=settings.api_host,
                        port=settings.api_port, log_config=logs.logging_config(settings.log_format))
        finally:
            stop.set()
            readiness.close()


if __name__ == "__main__":
    main()
