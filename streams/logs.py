"""Log formats: text lines, or one JSON object per line (RECALL_LOG_FORMAT=json).

Event-related lines pass `extra={"topic": ..., "partition": ..., "offset": ...}` (see
`event_fields` and `batch_fields`); the JSON formatter writes every such extra field as a key
of the line's object, next to time, level, logger and message.
"""

from __future__ import annotations

import json
import logging
import logging.config
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class Located(Protocol):
    """Anything that knows where it was read from (streams.worker.pipeline.RawMessage)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


def event_fields(message: Located) -> dict[str, Any]:
    """`extra=` for a line about one event."""
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}


def batch_fields(messages: Sequence[Located]) -> dict[str, Any]:
    """`extra=` for a line about a batch: the first event's place and each partition's range."""
    if not messages:
        return {}
    ranges: dict[int, list[int]] = {}
    for m in messages:
        low_high = ranges.setdefault(m.partition, [m.offset, m.offset])
        low_high[0], low_high[1] = min(low_high[0], m.offset), max(low_high[1], m.offset)
    return {**event_fields(messages[0]),
            "offsets": {str(p): f"{lo}-{hi}" for p, (lo, hi) in sorted(ranges.items())}}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, message, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for stderr in `log_format` ("text" or "json")."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def configure(log_format: str, level: str = "INFO") -> None:
    """Set up the root logger (entry points only)."""
    logging.config.dictConfig(logging_config(log_format, level))
