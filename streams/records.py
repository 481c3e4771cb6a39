"""Typed records of every topic, shared by producers, consumers and agents: fields named once."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

import faust

from streams.errors import BadEvent

R = TypeVar("R", bound="Wire")


class Wire(faust.Record, abstract=True, include_metadata=False, serializer="json"):
    """Base record: plain JSON on the wire, strict parsing from raw bytes."""

    @classmethod
    def parse(cls: type[R], raw: bytes | str | dict[str, Any] | None) -> R:
        """Decode and validate one message value; raise BadEvent with the reason."""
        if raw is None:
            raise BadEvent("empty message value")
        if isinstance(raw, dict):
            data = raw
        else:
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadEvent(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadEvent(f"expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls._options.fields)
        if unknown:
            raise BadEvent(f"unknown fields {sorted(unknown)}")
        try:
            record = cls(**data)
        except TypeError as exc:
            raise BadEvent(f"missing or wrong fields: {exc}") from None
        record.check()
        return record

    def check(self) -> None:
        """Raise BadEvent when a field holds an impossible value."""

    def to_bytes(self) -> bytes:
        return json.dumps(self.asdict(), separators=(",", ":")).encode()


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise BadEvent(f"{name} must be positive, got {value}")


class Click(Wire):
    """One click: user `user_id` clicked item `item_id` at unix time `ts` (seconds)."""

    user_id: int
    item_id: int
    ts: float

    def check(self) -> None:
        _positive_int("user_id", self.user_id)
        _positive_int("item_id", self.item_id)
        if isinstance(self.ts, bool) or not isinstance(self.ts, int | float):
            raise BadEvent(f"ts must be a number, got {self.ts!r}")
        if not math.isfinite(self.ts) or self.ts < 0:
            raise BadEvent(f"ts must be a finite non-negative number, got {self.ts!r}")


class ItemEmbedding(Wire):
    """An item's vector to upsert into Milvus, or its removal when `deleted` is true."""

    item_id: int
    vector: list[float] | None = None
    deleted: bool = False

    def check(self) -> None:
        _positive_int("item_id", self.item_id)
        if not isinstance(self.deleted, bool):
            raise BadEvent(f"deleted must be a boolean, got {self.deleted!r}")
        if self.deleted:
            return
        if not isinstance(self.vector, list) or not self.vector:
            raise BadEvent("vector must be a non-empty list of numbers unless deleted")
        for x in self.vector:
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise BadEvent(f"vector holds a non-finite or non-number value {x!r}")


class Recommendation(Wire):
    """The top-k candidates recalled for a user right after one of their clicks."""

    user_id: int
    item_ids: list[int]
    scores: list[float]
    model_version: str
    click_item: int
    click_ts: float
    emit_ts: float
    history: list[int]
    click_partition: int = -1  # where the click was in the clicks topic: (partition, offset)
    click_offset: int = -1  # identifies it, so consumers can drop redelivered duplicates


class DeadLetter(Wire):
    """A message that could not be processed (or sent): where it came from, why, and a bounded
    excerpt of it; `size` is the original value's length in bytes, `truncated` whether the
    excerpt is shorter than the value (non-UTF-8 bytes appear as \\xNN escapes)."""

    topic: str
    partition: int
    offset: int
    reason: str
    size: int
    excerpt: str
    truncated: bool
