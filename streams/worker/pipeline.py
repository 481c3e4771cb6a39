"""Batch steps run off the event loop: clicks -> histories -> recall -> records; items -> Milvus."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from streams.errors import BadEvent
from streams.recall.fused import FusedRecaller
from streams.recall.recaller import Recaller
from streams.records import (
    DEFAULT_LIMITS,
    Click,
    DeadLetter,
    ItemEmbedding,
    Limits,
    Recommendation,
    Wire,
)
from streams.stores.history import ClickAt, UserState
from streams.worker.epochs import LogEpochs

log = logging.getLogger(__name__)

KeyValue = tuple[bytes | None, bytes]


@dataclass(frozen=True)
class RawMessage:
    """One consumed Kafka message, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Output:
    """What a batch produced: records for the output topic and for the dead-letter topic."""

    records: list[KeyValue] = field(default_factory=list)
    dead: list[KeyValue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # added to the worker's stats
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage of the step
    epochs: dict[int, str] = field(default_factory=dict)  # partition -> epoch of its 1st click


class History(Protocol):
    """What the pipeline needs of streams.stores.history.HistoryStore."""

    def append_seen(self, clicks: Sequence[ClickAt]) -> Mapping[int, UserState]: ...


class Index(Protocol):
    """What the item pipeline needs of streams.stores.index.ItemIndex."""

    def upsert(self, ids: Sequence[int], vectors: np.ndarray) -> object: ...

    def delete(self, ids: Sequence[int]) -> None: ...


MAX_REASON_CHARS = 500
MAX_KEY_BYTES = 256
DEFAULT_EXCERPT_BYTES = 1024


def excerpt(data: bytes, limit: int) -> tuple[str, bool]:
    """The first `limit` bytes as text (bad UTF-8 as \\xNN) and whether anything was cut."""
    return data[:limit].decode("utf-8", errors="backslashreplace"), len(data) > limit


def dead_letter(message: RawMessage, reason: str,
                excerpt_bytes: int = DEFAULT_EXCERPT_BYTES) -> KeyValue:
    """Log a bad message with topic, partition and offset, and build its bounded dead letter.

    Whatever the message, the record stays small: the reason is cut at MAX_REASON_CHARS, the
    value at `excerpt_bytes` (at most ~5 JSON characters a byte) and the key at MAX_KEY_BYTES.
    """
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "...(cut)"
    log.warning(
        "dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason,
        extra={"topic": message.topic, "partition": message.partition, "offset": message.offset},
    )
    value = message.value or b""
    text, truncated = excerpt(value, excerpt_bytes)
    record = DeadLetter(message.topic, message.partition, message.offset, reason, len(value),
                        text, truncated)
    key = message.key[:MAX_KEY_BYTES] if message.key else message.key
    return key, record.to_bytes()


def parse_all(
    messages: Sequence[RawMessage], kind: type[Wire], out: Output,
    limits: Limits = DEFAULT_LIMITS, excerpt_bytes: int = DEFAULT_EXCERPT_BYTES,
) -> list[tuple[RawMessage, Any]]:
    """Parse each message as `kind`; bad ones go to `out.dead`, valid ones are returned in order."""
    good = []
    for message in messages:
        try:
            good.append((message, kind.parse(message.value, limits)))
        except BadEvent as exc:
            out.dead.append(dead_letter(message, str(exc), excerpt_bytes))
    return good


def rounded(scores: Sequence[float], decimals: int = 6) -> list[float]:
    """Scores cut to `decimals` places for the wire (numpy: ~7x faster than round() each)."""
    return np.round(np.asarray(scores, dtype=np.float64), decimals).tolist()


class ClickPipeline:
    """One micro-batch of clicks: one Redis script, one model call, one Milvus search (one more
    when a user's seen items leave its first lists short: `Recaller.deepen`).

    Every click is validated before any state changes, so a rejected click never reaches Redis.
    A user's candidates never hold an item the user has seen (the store's seen items, kept when
    RECALL_EXCLUDE_SEEN is on, and the history). The same script call counts co-occurrences
    when the store keeps them; the recaller then reads them once for the batch.
    """

    def __init__(self, history: History, recaller: Recaller | FusedRecaller,
                 limits: Limits = DEFAULT_LIMITS, epochs: LogEpochs | None = None,
                 excerpt_bytes: int = DEFAULT_EXCERPT_BYTES,
                 channel_lists: bool = False) -> None:
        if channel_lists and isinstance(recaller, FusedRecaller) and not recaller.channel_lists:
            raise ValueError("records with channel lists need a recaller that keeps them "
                             "(FusedRecaller(channel_lists=True); RECALL_RECORD_CHANNEL_LISTS)")
        self.history = history
        self.recaller = recaller
        self.channel_lists = channel_lists  # records carry each channel's own list
        self.limits = limits
        self.epochs = epochs
        self.excerpt_bytes = excerpt_bytes

    def _epochs(self, messages: Sequence[RawMessage], out: Output) -> list[str]:
        if self.epochs is None or not messages:
            return [""] * len(messages)
        resets = self.epochs.resets
        epochs = self.epochs.epochs(messages[0].topic,
                                    [(m.partition, m.offset) for m in messages])
        if self.epochs.resets > resets:
            out.counts["broker_resets"] = self.epochs.resets - resets
        for m, epoch in zip(messages, epochs, strict=True):
            out.epochs.setdefault(m.partition, epoch)
        return epochs

    def process(self, messages: Sequence[RawMessage]) -> Output:
        out = Output()
        started = time.perf_counter()
        epoch = dict(zip(((m.partition, m.offset) for m in messages),
                         self._epochs(messages, out), strict=True))
        clicks = [
            ClickAt(c.user_id, c.item_id, float(c.ts), m.partition, m.offset,
                    epoch[m.partition, m.offset])
            for m, c in parse_all(messages, Click, out, self.limits, self.excerpt_bytes)
        ]
        parsed = time.perf_counter()
        out.timings["parse"] = parsed - started
        if not clicks:
            return out
        states = self.history.append_seen(clicks)  # user -> history and seen items
        out.timings["redis"] = time.perf_counter() - parsed
        users = sorted(states)
        recalled = self.recaller.recall([states[u].history for u in users], timings=out.timings,
                                        exclude=[states[u].excluded() for u in users])
        candidates = dict(zip(users, recalled, strict=True))
        out.counts["history_items_without_vector"] = sum(c.skipped for c in recalled)
        out.counts["popular_fallbacks"] = sum(c.source == "popular" for c in recalled)
        scores = {u: rounded(c.scores) for u, c in candidates.items()}  # once per user
        emitted = time.time()
        for click in clicks:
            found = candidates[click.user_id]
            record = Recommendation(
                user_id=click.user_id,
                item_ids=found.item_ids,
                scores=scores[click.user_id],
                model_version=found.model_version,
                click_item=click.item_id,
                click_ts=click.ts,
                emit_ts=emitted,
                history=states[click.user_id].history,
                click_partition=click.partition,
                click_offset=click.offset,
                interests=found.interests,
                channels=found.channels,
                channel_lists=found.channel_lists if self.channel_lists else None,
                counts_ts=found.counts_ts,
            )
            out.records.append((str(click.user_id).encode(), record.to_bytes()))
        return out


def latest_items(items: Sequence[ItemEmbedding], dim: int
                 ) -> tuple[list[int], np.ndarray, list[int]]:
    """(upserted ids, their vectors [M, D] float32, deleted ids): last record per item wins."""
    latest = {item.item_id: item for item in items}  # in offset order
    upserts = [item for item in latest.values() if not item.deleted]
    vectors = np.asarray([item.vector for item in upserts], dtype=np.float32).reshape(-1, dim)
    deletes = [i for i, item in latest.items() if item.deleted]
    return [item.item_id for item in upserts], vectors, deletes


class ItemPipeline:
    """One batch of item embeddings for the group: upserts and deletes in Milvus.

    Vectors are checked first (length `limits.dim`, finite in float32, non-zero, norm bounded):
    one vector of huge values would otherwise top every user's candidates. Each worker's model
    gets every streamed vector from its own reader of the whole topic (streams/worker/item_feed.py).
    """

    def __init__(self, index: Index, limits: Limits,
                 excerpt_bytes: int = DEFAULT_EXCERPT_BYTES) -> None:
        if limits.dim is None:
            raise ValueError("ItemPipeline needs limits.dim, the model's vector length")
        self.index = index
        self.limits = limits
        self.excerpt_bytes = excerpt_bytes

    def process(self, messages: Sequence[RawMessage]) -> Output:
        out = Output()
        assert self.limits.dim is not None
        parsed = parse_all(messages, ItemEmbedding, out, self.limits, self.excerpt_bytes)
        ids, vectors, deletes = latest_items([item for _, item in parsed], self.limits.dim)
        if ids:
            self.index.upsert(ids, vectors)
        if deletes:
            self.index.delete(deletes)
        return out
