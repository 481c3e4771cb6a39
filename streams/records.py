"""Typed records of every topic, shared by producers, consumers and agents: fields named once."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
import numpy as np
import orjson

from streams.errors import BadEvent

R = TypeVar("R", bound="Wire")
INT64_MAX = 2**63 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Limits:
    """What an input record may hold, checked before any state changes (see Settings)."""

    max_user_id: int = INT64_MAX
    max_item_id: int = INT64_MAX
    max_future_s: float = 300.0  # a click's ts may be at most this far ahead of `clock()`
    max_age_s: float | None = None  # and, when set, at most this far behind it
    max_vector_norm: float = 1000.0
    dim: int | None = None  # expected item-vector length, when known
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @classmethod
    def from_settings(cls, settings: Any, dim: int | None = None) -> Limits:
        return cls(settings.max_user_id, settings.max_item_id, settings.max_click_future_s,
                   settings.max_click_age_s, settings.max_vector_norm, dim)


DEFAULT_LIMITS = Limits()


class Wire(faust.Record, abstract=True, include_metadata=False, serializer="json"):
    """Base record: plain JSON on the wire, strict parsing from raw bytes."""

    max_bytes = 1 << 20  # larger values are rejected before parsing

    @classmethod
    def parse(cls: type[R], raw: bytes | str | dict[str, Any] | None,
              limits: Limits = DEFAULT_LIMITS) -> R:
        """Decode and validate one message value; raise BadEvent with the reason."""
        if raw is None:
            raise BadEvent("empty message value")
        if isinstance(raw, dict):
            data = raw
        else:
            if len(raw) > cls.max_bytes:
                raise BadEvent(f"value of {len(raw)} bytes is over the {cls.max_bytes} allowed")
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise BadEvent(f"not JSON: {exc!s:.200}") from None
        if not isinstance(data, dict):
            raise BadEvent(f"expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls._options.fields)
        if unknown:
            raise BadEvent(f"unknown fields {sorted(unknown)}")
        fields = list(cls._options.fields)
        missing = [f for f in fields if f not in data and f not in cls._options.defaults]
        if missing:
            raise BadEvent(f"missing field{'s' * (len(missing) > 1)} {', '.join(missing)} "
                           f"({cls.__name__} fields: {', '.join(fields)})")
        try:
            record = cls(**data)
        except TypeError as exc:  # not expected after the checks above; still the user's fault
            raise BadEvent(f"wrong fields for a {cls.__name__}: {exc!s:.200}") from None
        record.check(limits)
        return record

    def check(self, limits: Limits = DEFAULT_LIMITS) -> None:
        """Raise BadEvent when a field holds an impossible value."""

    def to_bytes(self) -> bytes:
        """Compact JSON (orjson: ~10x faster than json.dumps for a recommendation). A value
        orjson refuses (a lone surrogate in a string) falls back to json.dumps' escapes."""
        data = self.asdict()
        try:
            return orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError
            return json.dumps(data, separators=(",", ":")).encode()


def _show(value: Any) -> str:
    """A value for an error message, cut short (a bad message can hold anything)."""
    text = repr(value)
    return text if len(text) <= 50 else text[:50] + "..."


def _id(name: str, value: Any, largest: int) -> None:
    """Ids are integers in 1..largest (at most int64: Redis, the model and Milvus hold int64)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent(f"{name} must be an integer, got {_show(value)}")
    if value <= 0:
        raise BadEvent(f"{name} must be positive, got {_show(value)}")
    if value > largest:
        raise BadEvent(f"{name} must be at most {largest}, got {_show(value)}")


def _finite(value: Any) -> float:
    """A JSON number as a finite float, or BadEvent (huge ints overflow float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEvent(f"expected a number, got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadEvent(f"expected a finite number, got {_show(value)}")
    return number


class Click(Wire):
    """One click: user `user_id` clicked item `item_id` at unix time `ts` (seconds)."""

    user_id: int
    item_id: int
    ts: float

    max_bytes = 4096

    def check(self, limits: Limits = DEFAULT_LIMITS) -> None:
        _id("user_id", self.user_id, limits.max_user_id)
        _id("item_id", self.item_id, limits.max_item_id)
        if isinstance(self.ts, bool) or not isinstance(self.ts, int | float):
            raise BadEvent(f"ts must be a number, got {_show(self.ts)}")
        bad_ts = f"ts must be a finite non-negative number, got {_show(self.ts)}"
        try:
            ts = _finite(self.ts)
        except BadEvent:
            raise BadEvent(bad_ts) from None
        if ts < 0:
            raise BadEvent(bad_ts)
        now = limits.clock()
        if ts > now + limits.max_future_s:
            raise BadEvent(f"ts {_show(self.ts)} is more than {limits.max_future_s:g}s ahead of "
                           f"the worker's clock ({now:.3f})")
        if limits.max_age_s is not None and ts < now - limits.max_age_s:
            raise BadEvent(f"ts {_show(self.ts)} is more than {limits.max_age_s:g}s older than "
                           f"the worker's clock ({now:.3f})")


class ItemEmbedding(Wire):
    """An item's vector to upsert into Milvus, or its removal when `deleted` is true."""

    item_id: int
    vector: list[float] | None = None
    deleted: bool = False

    max_bytes = 1 << 18

    def check(self, limits: Limits = DEFAULT_LIMITS) -> None:
        _id("item_id", self.item_id, limits.max_item_id)
        if not isinstance(self.deleted, bool):
            raise BadEvent(f"deleted must be a boolean, got {_show(self.deleted)}")
        if self.deleted:
            return
        if not isinstance(self.vector, list) or not self.vector:
            raise BadEvent("vector must be a non-empty list of numbers unless deleted")
        if limits.dim is not None and len(self.vector) != limits.dim:
            raise BadEvent(f"vector has {len(self.vector)} dimensions, expected {limits.dim}")
        for x in self.vector:
            try:
                value = _finite(x)
            except BadEvent:
                raise BadEvent(f"vector holds a non-finite or non-number {_show(x)}") from None
            if abs(value) > FLOAT32_MAX:
                raise BadEvent(f"vector value {_show(x)} overflows float32")
        norm = float(np.linalg.norm(np.asarray(self.vector, dtype=np.float64)))
        if norm == 0.0:
            raise BadEvent("vector is all zeros")
        if not norm <= limits.max_vector_norm:
            raise BadEvent(f"vector norm {norm:.4g} is over the {limits.max_vector_norm:g} allowed")


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
    interests: list[int] | None = None  # per item: index of the interest that recalled it
    # (0..K-1; -1 for a popular fallback); None in records of workers older than the field
    channels: list[str] | None = None  # per item: the channel that recalled it ("mind",
    # "cooccur", "next", "popular"); None in records of workers older than the field
    channel_lists: dict[str, list[int]] | None = None  # each channel's own list, best first
    # (only with RECALL_RECORD_CHANNEL_LISTS)
    counts_ts: float | None = None  # data time of the newest click in the co-occurrence
    # counts this list was made from (None: no cooccur channel)


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
