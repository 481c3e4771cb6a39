"""streams.settings: one frozen class per concern, composed into Settings with RECALL_* names."""

from __future__ import annotations

import pydantic
import pytest

from harness.stack.settings import StackSettings
from streams import settings as module
from streams.settings import KafkaSettings, RecallEnv, Settings

CONCERNS = [cls for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, RecallEnv)
            and cls not in (RecallEnv, Settings)]


def test_concerns_split_every_field_once() -> None:
    assert len(CONCERNS) >= 7
    seen: dict[str, str] = {}
    for cls in CONCERNS:
        for name in cls.model_fields:
            assert name not in seen, f"{name} in {seen.get(name)} and {cls.__name__}"
            seen[name] = cls.__name__
    assert set(seen) == set(Settings.model_fields)


def test_each_concern_reads_the_same_recall_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_KAFKA_BOOTSTRAP", "broker:9093")
    monkeypatch.setenv("RECALL_TOP_K", "7")
    assert KafkaSettings().kafka_bootstrap == Settings().kafka_bootstrap == "broker:9093"
    assert Settings().top_k == 7


def test_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings().top_k = 3  # type: ignore[misc]


def test_a_copy_refuses_names_that_are_no_setting() -> None:
    assert Settings().model_copy(update={"top_k": 3}).top_k == 3
    with pytest.raises(TypeError, match="kafka_port"):
        Settings().model_copy(update={"kafka_port": 1})


def test_stack_ports_belong_to_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_REDIS_PORT", "6390")
    assert "redis_port" not in Settings.model_fields
    assert StackSettings().redis_port == 6390
