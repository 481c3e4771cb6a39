"""docker-compose.yml: valid against the Compose spec, complete, configured only via Settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
EXPECTED = {"kafka", "kafka-init", "redis", "etcd", "minio", "milvus", "worker", "api"}
FIELDS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_valid_against_compose_spec(compose: dict[str, Any]) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"Compose JSON schema not found at {SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_expected_service_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= EXPECTED
    assert services["worker"]["command"] == ["python", "-m", "streams.worker"]
    assert services["api"]["command"] == ["python", "-m", "streams.api"]
    assert services["milvus"]["command"] == ["milvus", "run", "standalone"]
    assert "apache/kafka" in services["kafka"]["image"]
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "--appendonly" in services["redis"]["command"]


def test_recall_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = set(re.findall(r"\bRECALL_([A-Z0-9_]+)", text))
    assert used, "the compose file configures nothing through RECALL_*"
    assert used <= FIELDS, f"not Settings fields: {sorted(used - FIELDS)}"
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if key.startswith("RECALL_"):
                field = key.removeprefix("RECALL_").lower()
                Settings.model_validate({field: value})  # the value parses as that field
                assert value, f"{name}: empty {key}"


def test_worker_and_api_point_at_compose_hosts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("worker", "api"):
        env = env_of(services[name])
        assert env["RECALL_KAFKA_BOOTSTRAP"].split(":")[0] == "kafka"
        assert urlparse(env["RECALL_REDIS_URL"]).hostname == "redis"
        assert urlparse(env["RECALL_MILVUS_URI"]).hostname == "milvus"
        assert env["RECALL_MODEL_DIR"] == "/models"
        assert any(v.split(":")[0] == "model" and v.endswith(":/models")
                   for v in services[name]["volumes"])
        conditions = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert conditions["redis"] == conditions["milvus"] == "service_healthy"
    assert services["worker"]["depends_on"]["kafka-init"]["condition"] == (
        "service_completed_successfully")


def test_healthchecks_and_gpu_reservation(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("kafka", "redis", "etcd", "minio", "milvus", "api"):
        assert services[name]["healthcheck"]["test"], name
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert services["worker"]["build"]["args"]["PADDLE_PACKAGE"] == "paddlepaddle-gpu"
    assert env_of(services["worker"])["RECALL_DEVICE"] == "gpu"
    assert "model" in compose["volumes"]


def test_topic_init_creates_every_topic(compose: dict[str, Any]) -> None:
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    for field in ("clicks_topic", "recs_topic", "items_topic", "dead_letter_topic"):
        assert f"$$RECALL_{field.upper()}" in script


def test_dockerfile_chooses_paddle_build() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG PADDLE_PACKAGE=paddlepaddle" in text
    assert '"${PADDLE_PACKAGE}==${PADDLE_VERSION}"' in text
