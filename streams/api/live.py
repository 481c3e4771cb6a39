"""The live page (`/live` on the API, with RECALL_LIVE_PAGE=true): the system thinking, per user.

A person picks a user (or plays one by clicking catalog items: the clicks go to the clicks topic
like any producer's, so the worker updates the history in Redis and publishes a
recommendation) and sees the user's last clicks from Redis, the K interest vectors each with its
own nearest items, the merged candidates marked by the interest each came from, and a live tail
of the recommendations topic with click-to-recommendation latency. The page is one HTML file
with a small script (`live_page.html`) that polls the JSON routes below.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from streams.api.live_feed import FeedEntry, LiveKafka
from streams.errors import ServiceUnavailable
from streams.recall.core import Core
from streams.recall.recaller import Candidates
from streams.settings import INT64_MAX
from streams.stores.history import UserState

log = logging.getLogger(__name__)

PAGE = FilePath(__file__).with_name("live_page.html")
Id = Annotated[StrictInt, Field(gt=0, le=INT64_MAX)]


def read_titles(path: str | FilePath | None) -> dict[int, str]:
    """Item titles from a CSV whose first column is the item id and one column is `title`
    (MovieLens `movies.csv`); {} without a file."""
    if path is None:
        return {}
    titles: dict[int, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        if "title" not in header:
            raise ValueError(f"{path}: no 'title' column in the header {header}")
        column = header.index("title")
        for row in reader:
            if len(row) > column and row[0].strip().isdigit():
                titles[int(row[0])] = row[column]
    log.info("live page: %d item titles from %s", len(titles), path)
    return titles


class LiveClick(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    item_id: Id


def channels(found: Candidates) -> list[str]:
    """Each candidate's channel (a list from before channels existed: MIND's or popular)."""
    return found.channels or [found.source] * len(found.item_ids)


class LivePage:
    """The page's views over the shared core (model, Redis history, Milvus) and `LiveKafka`."""

    def __init__(self, core: Core, kafka: LiveKafka, titles: dict[int, str]) -> None:
        if core.history is None:
            raise ValueError("the live page reads histories: open the core with_history=True")
        self.core, self.kafka, self.titles = core, kafka, titles
        self.history = core.history

    @classmethod
    def from_core(cls, core: Core) -> LivePage:
        return cls(core, LiveKafka(core.settings), read_titles(core.settings.item_titles))

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self.kafka.start()
        try:
            yield
        finally:
            await self.kafka.close()

    def item(self, item_id: int, **extra: Any) -> dict[str, Any]:
        return {"id": item_id, "title": self.titles.get(item_id, f"item {item_id}"), **extra}

    def items(self, ids: Sequence[int], scores: Sequence[float]) -> list[dict[str, Any]]:
        return [self.item(i, score=round(s, 4)) for i, s in zip(ids, scores, strict=True)]

    def user(self, user_id: int, k: int) -> dict[str, Any]:
        """History (Redis, oldest first), interests with their own items, merged candidates;
        the user's seen items are excluded as the worker excludes them."""
        history = self.history.get([user_id])[user_id]
        seen = self.history.seen([user_id])[user_id]  # what the worker excludes too
        insight = self.core.recaller.inspect(history, k, UserState(history, seen).excluded())
        merged = insight.merged
        interests = [] if merged.source == "popular" else [
            {"index": n, "norm": round(float(np.linalg.norm(vector)), 4),
             "items": self.items(*insight.per_interest[n])}
            for n, vector in enumerate(insight.vectors)]
        return {
            "user_id": user_id, "model_version": merged.model_version, "source": merged.source,
            "history": [self.item(i) for i in history], "skipped": merged.skipped,
            "interests": interests,
            "candidates": [self.item(i, score=round(s, 4), interest=n, channel=c)
                           for i, s, n, c in zip(merged.item_ids, merged.scores,
                                                 merged.interests, channels(merged), strict=True)],
        }

    def catalog(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Items of the model to click: the most popular, or those whose title or id matches."""
        query = query.strip().lower()
        if not query:
            return [self.item(i) for i in self.core.model.popular(limit)]
        ids, _ = self.core.model.item_table()
        found = [self.item(int(i)) for i in ids
                 if query == str(i) or query in self.titles.get(int(i), "").lower()]
        return found[:limit]

    def entry(self, entry: FeedEntry, top: int = 5) -> dict[str, Any]:
        rec = entry.record
        interests = rec.interests or [-1] * len(rec.item_ids)
        names = rec.channels or ["mind"] * len(rec.item_ids)
        return {
            "seq": entry.seq, "user_id": rec.user_id, "click": self.item(rec.click_item),
            "latency_ms": round(entry.latency_ms, 1), "model_version": rec.model_version,
            "partition": entry.partition, "offset": entry.offset,
            "items": [self.item(i, interest=n, channel=c) for i, n, c
                      in zip(rec.item_ids[:top], interests[:top], names[:top], strict=True)],
        }

    def router(self, reading: list[Any], mutating: list[Any]) -> APIRouter:
        """The page and its JSON routes; `reading` / `mutating` are the API's token guards."""
        router = APIRouter(prefix="/live", tags=["live page"])

        @router.get("", response_class=HTMLResponse, include_in_schema=False)
        def page() -> str:
            return PAGE.read_text(encoding="utf-8")

        @router.get("/users/{user_id}", dependencies=reading)
        def user(user_id: Annotated[int, Path(gt=0, le=INT64_MAX)],
                 k: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
            """A user's last clicks, interests (each with its nearest items) and candidates."""
            return self.user(user_id, k)

        @router.get("/catalog", dependencies=reading)
        def catalog(q: Annotated[str, Query(max_length=100)] = "",
                    limit: Annotated[int, Query(ge=1, le=200)] = 40) -> list[dict[str, Any]]:
            """Items to click: the most popular, or matches of `q` in titles and ids."""
            return self.catalog(q, limit)

        @router.get("/feed", dependencies=reading)
        def feed(after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
            """Recommendations seen on the topic after sequence number `after`, oldest first."""
            return {"connected": self.kafka.connected, "last": self.kafka.seq,
                    "entries": [self.entry(e) for e in self.kafka.after(after)]}

        @router.post("/clicks", dependencies=mutating,
                     responses={503: {"description": "the broker is not reachable"}})
        async def click(body: LiveClick) -> dict[str, Any]:
            """Send a click for a user to the clicks topic (as producers.click would)."""
            if not self.kafka.connected:
                raise ServiceUnavailable("the live page is not connected to the broker yet")
            sent, partition, offset = await self.kafka.send_click(body.user_id, body.item_id)
            return {"user_id": sent.user_id, "item_id": sent.item_id, "ts": sent.ts,
                    "partition": partition, "offset": offset}

        return router

