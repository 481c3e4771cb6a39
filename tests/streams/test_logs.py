"""streams.logs: one JSON object per line with the event's topic, partition and offset."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from streams.logs import JsonFormatter, batch_fields, logging_config
from streams.worker.pipeline import RawMessage, dead_letter


def record(logger: logging.Logger, fmt: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(fmt)
    logger.addHandler(handler)
    return handler, out


def test_dead_letter_lines_carry_topic_partition_offset_as_json() -> None:
    logger = logging.getLogger("streams.worker.pipeline")
    handler, out = record(logger, JsonFormatter())
    try:
        dead_letter(RawMessage("clicks", 2, 41, b"k", b"{oops"), 'not JSON: "quoted"\nnext')
    finally:
        logger.removeHandler(handler)
    (line,) = out.getvalue().splitlines()
    event = json.loads(line)
    assert (event["topic"], event["partition"], event["offset"]) == ("clicks", 2, 41)
    assert event["level"] == "WARNING" and event["logger"] == "streams.worker.pipeline"
    assert event["message"].startswith("dead letter clicks[2]@41: not JSON")
    assert event["ts"].endswith("+00:00")


def test_exceptions_and_batches() -> None:
    logger = logging.getLogger("test.logs")
    handler, out = record(logger, JsonFormatter())
    try:
        messages = [RawMessage("clicks", p, o, None, b"") for p, o in ((1, 5), (0, 9), (1, 7))]
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("batch failed", exc_info=True, extra=batch_fields(messages))
    finally:
        logger.removeHandler(handler)
    event = json.loads(out.getvalue())
    assert event["offsets"] == {"0": "9-9", "1": "5-7"}
    assert (event["topic"], event["partition"], event["offset"]) == ("clicks", 1, 5)
    assert "ValueError: boom" in event["exc"]
    assert batch_fields([]) == {}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logging_config_is_a_valid_dict_config(fmt: str) -> None:
    config = logging_config(fmt, "warning")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logging.config.dictConfig(config)
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter) == (fmt == "json")
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], _ = saved[0], None
        root.setLevel(saved[1])
