"""docker-compose.yml: valid against the Compose spec, complete, configured only via Settings,
only the API published, every credential from .env (placeholders in .env.example)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from streams.security import faust_broker_credentials, kafka_python_kwargs, redis_kwargs
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
EXPECTED = {"kafka", "kafka-init", "redis", "etcd", "minio", "milvus", "worker", "api",
            "prometheus", "grafana"}
DEPLOY = ROOT / "deploy"
FIELDS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:\?|:-)([^}]*))?\}")
SECRET_KEY = re.compile(r"PASSWORD|TOKEN$|SECRET|ACCESS_KEY|REDISCLI_AUTH|JAAS")


def example_env() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (which fails when VAR is unset)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return VARIABLE.sub(one, text)


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


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
    assert "--appendonly" in " ".join(services["redis"]["command"])


def test_recall_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = set(re.findall(r"\bRECALL_([A-Z0-9_]+)", text))
    assert used, "the compose file configures nothing through RECALL_*"
    assert used <= FIELDS, f"not Settings fields: {sorted(used - FIELDS)}"
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if key.startswith("RECALL_"):
                field = key.removeprefix("RECALL_").lower()
                value = interpolate(value, example_env())
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
    for name in ("kafka", "redis", "etcd", "minio", "milvus", "worker", "api", "prometheus",
                 "grafana"):
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


def test_only_the_api_and_grafana_publish_a_port_on_loopback_by_default(
        compose: dict[str, Any]) -> None:
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"api", "grafana"}
    for service in compose["services"].values():
        assert "network_mode" not in service  # host networking would publish everything
    for name, expected in (("api", "127.0.0.1:8000:8000"), ("grafana", "127.0.0.1:3000:3000")):
        (port,) = compose["services"][name]["ports"]
        assert interpolate(port, {}) == expected
        assert interpolate(port, example_env()) == expected


def test_health_checks_use_healthz_and_readyz_and_prometheus_scrapes_both(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker, api = settings_of(services["worker"]), settings_of(services["api"])
    assert worker.worker_web_host == "0.0.0.0" and worker.worker_web_port > 0
    for name, port in (("worker", worker.worker_web_port), ("api", api.api_port)):
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://localhost:{port}/readyz" in probe, name
    assert scrape_targets() == {"recall-worker": [f"worker:{worker.worker_web_port}"],
                                "recall-api": [f"api:{api.api_port}"]}
    mounts = {volume.split(":")[0]: volume.split(":")[1]
              for name in ("prometheus", "grafana") for volume in services[name]["volumes"]}
    for source in mounts:
        if source.startswith("./"):
            assert (ROOT / source).exists(), source
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "recall.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "recall.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {datasource["uid"]}


def scrape_targets() -> dict[str, list[str]]:
    """host:port per Prometheus job: static targets, or DNS names (every replica) with a port."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {}
    for job in config["scrape_configs"]:
        if "dns_sd_configs" in job:
            (dns,) = job["dns_sd_configs"]
            assert dns["type"] == "A"
            targets[job["job_name"]] = [f"{name}:{dns['port']}" for name in dns["names"]]
        else:
            targets[job["job_name"]] = job["static_configs"][0]["targets"]
    return targets


def test_every_server_the_code_expects_is_a_service(compose: dict[str, Any]) -> None:
    """Each host the worker, the API, Milvus, Prometheus and Grafana are configured to reach
    is a service of the file, and every long-running service has a health check."""
    services = compose["services"]
    hosts = set()
    for name in ("worker", "api"):
        settings = settings_of(services[name])
        hosts |= {urlparse(settings.milvus_uri).hostname}
    worker = settings_of(services["worker"])
    hosts |= {worker.kafka_bootstrap.split(":")[0], urlparse(worker.redis_url).hostname}
    milvus = env_of(services["milvus"])
    hosts |= {milvus["ETCD_ENDPOINTS"].split(":")[0], milvus["MINIO_ADDRESS"].split(":")[0]}
    hosts |= {t.split(":")[0] for targets in scrape_targets().values() for t in targets}
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    hosts |= {urlparse(d["url"]).hostname for d in source["datasources"]}
    assert hosts == {"kafka", "redis", "milvus", "etcd", "minio", "worker", "api", "prometheus"}
    assert hosts | {"grafana"} <= set(services)
    for name, service in services.items():
        if service.get("restart") != "no":  # one-shot jobs and tools have nothing to probe
            assert service["healthcheck"]["test"], name


def test_workers_scale_out(compose: dict[str, Any]) -> None:
    """`docker compose up --scale worker=N`: nothing pins a worker to one container or port,
    and the clicks topic has partitions for several workers (README "Scale-out")."""
    services = compose["services"]
    for name, service in services.items():
        assert "container_name" not in service, name  # a fixed name forbids --scale
    worker = services["worker"]
    assert "ports" not in worker and "hostname" not in worker
    assert settings_of(worker).partitions >= 4
    assert env_of(worker)["RECALL_CONSUMER_GROUP"]  # one group for every replica
    script = "\n".join(services["kafka-init"]["command"])
    assert '"$$RECALL_ITEMS_TOPIC" 1 --config cleanup.policy=compact' in script
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    up = makefile[makefile.index("\nup:"):makefile.index("\ndown:")]
    assert "--scale worker=$(WORKERS)" in up and "up -d" in up and ".env" in up
    assert "$(COMPOSE) down" in makefile[makefile.index("\ndown:"):]


def test_no_literal_secret_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if SECRET_KEY.search(key):
                required = [m for m in VARIABLE.finditer(value) if m.group(2) == ":?"]
                assert required, f"{name}: {key} is not a required ${{VAR:?}} variable"
    text = "\n".join(strings(compose))
    for match in re.finditer(r'(?:password=|--requirepass )\\?"?([^"\\\s;]+)', text):
        assert match.group(1).startswith("$"), f"literal secret: {match.group(0)}"
    assert "minioadmin" not in COMPOSE.read_text(encoding="utf-8")


def test_every_variable_comes_from_the_env_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) == ":?"}
    example = example_env()
    assert required <= set(example), f"not in .env.example: {sorted(required - set(example))}"
    for name in required:
        if SECRET_KEY.search(name):
            assert example[name].startswith("change-me"), f"{name} is not a placeholder"
    with pytest.raises(KeyError, match="set RECALL_REDIS_PASSWORD in .env"):
        interpolate(text, {k: v for k, v in example.items() if k != "RECALL_REDIS_PASSWORD"})
    interpolate(text, example)  # complete with every variable of .env.example
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def settings_of(service: dict[str, Any]) -> Settings:
    env = {key.removeprefix("RECALL_").lower(): interpolate(value, example_env())
           for key, value in env_of(service).items() if key.startswith("RECALL_")}
    return Settings.model_validate(env)


def test_clients_get_the_credentials_they_use(compose: dict[str, Any]) -> None:
    services = compose["services"]
    example = example_env()
    worker = settings_of(services["worker"])
    assert kafka_python_kwargs(worker) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
        "sasl_plain_username": example["RECALL_KAFKA_SASL_USERNAME"],
        "sasl_plain_password": example["RECALL_KAFKA_SASL_PASSWORD"]}
    assert faust_broker_credentials(worker) is not None
    assert redis_kwargs(worker) == {"password": example["RECALL_REDIS_PASSWORD"]}
    milvus_token = f"root:{example['MILVUS_ROOT_PASSWORD']}"
    api = settings_of(services["api"])
    for settings in (worker, api):
        assert settings.milvus_token is not None
        assert settings.milvus_token.get_secret_value() == milvus_token
    assert api.api_token is not None
    assert api.api_token.get_secret_value() == example["RECALL_API_TOKEN"]
    for tool in ("publish-items", "replay", "follow"):
        assert kafka_python_kwargs(settings_of(services[tool]))["security_protocol"] == (
            "SASL_PLAINTEXT")


def test_servers_require_the_credentials(compose: dict[str, Any]) -> None:
    services = compose["services"]
    example = example_env()
    kafka = {k: interpolate(v, example) for k, v in env_of(services["kafka"]).items()}
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert "PLAIN" in kafka["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    jaas = kafka["KAFKA_LISTENER_NAME_CLIENT_PLAIN_SASL_JAAS_CONFIG"]
    user, password = example["RECALL_KAFKA_SASL_USERNAME"], example["RECALL_KAFKA_SASL_PASSWORD"]
    assert f'user_{user}="{password}"' in jaas and jaas.endswith(";")
    assert "--command-config" in " ".join(services["kafka-init"]["command"])
    redis = services["redis"]
    assert '--requirepass "$$REDISCLI_AUTH"' in " ".join(redis["command"])
    assert env_of(redis)["REDISCLI_AUTH"].startswith("${RECALL_REDIS_PASSWORD:?")
    milvus = env_of(services["milvus"])
    assert milvus["COMMON_SECURITY_AUTHORIZATIONENABLED"] == "true"
    assert milvus["COMMON_SECURITY_DEFAULTROOTPASSWORD"].startswith("${MILVUS_ROOT_PASSWORD:?")
