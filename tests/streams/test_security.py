"""Credentials from Settings: kafka-python and Faust arguments, Milvus token, no secret in reprs."""

from __future__ import annotations

from typing import Any

import certifi
import faust
import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol
from kafka import KafkaConsumer, KafkaProducer
from pydantic import SecretStr

from harness.stack.launch import to_env
from streams.security import (
    faust_broker_credentials,
    kafka_python_kwargs,
    redact_url,
    redis_kwargs,
)
from streams.settings import Settings
from streams.stores import index as index_module
from streams.stores.index import ItemIndex

SECRETS = {"kafka_sasl_password": "kafka-pw-1", "redis_password": "redis-pw-2",
           "milvus_token": "root:milvus-pw-3", "api_token": "api-token-4"}


def sasl(**extra: Any) -> Settings:
    return Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                    kafka_sasl_username="recall", kafka_sasl_password=SecretStr("kafka-pw-1"),
                    **extra)


def test_plaintext_needs_nothing() -> None:
    assert kafka_python_kwargs(Settings()) == {"security_protocol": "PLAINTEXT"}
    assert faust_broker_credentials(Settings()) is None


def test_sasl_plaintext_for_kafka_python_and_faust() -> None:
    kwargs = kafka_python_kwargs(sasl())
    assert kwargs == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                      "sasl_plain_username": "recall", "sasl_plain_password": "kafka-pw-1"}
    for client in (KafkaProducer, KafkaConsumer):  # every key is a real config key
        assert set(kwargs) <= set(client.DEFAULT_CONFIG)
    creds = faust_broker_credentials(sasl())
    assert isinstance(creds, SASLCredentials)
    assert creds.protocol == AuthProtocol.SASL_PLAINTEXT
    assert (creds.username, creds.password, creds.mechanism.value) == (
        "recall", "kafka-pw-1", "SCRAM-SHA-512")
    assert "kafka-pw-1" not in repr(creds)


def test_faust_turns_the_credentials_into_aiokafka_arguments() -> None:
    """What faust.App(broker_credentials=...) hands to aiokafka for the worker's clients."""
    app = faust.App("security-test", broker="kafka://127.0.0.1:1",
                    broker_credentials=faust_broker_credentials(sasl()))
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    assert {key: auth[key] for key in kafka_python_kwargs(sasl())} == kafka_python_kwargs(sasl())
    assert credentials_to_aiokafka_auth(faust_broker_credentials(Settings())) == {
        "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_and_ssl_verify_with_the_ca_file() -> None:
    settings = sasl(kafka_ssl_cafile=certifi.where()).model_copy(
        update={"kafka_security_protocol": "SASL_SSL"})
    assert kafka_python_kwargs(settings)["ssl_cafile"] == certifi.where()
    creds = faust_broker_credentials(settings)
    assert isinstance(creds, SASLCredentials) and creds.protocol == AuthProtocol.SASL_SSL
    assert creds.ssl_context is not None and creds.ssl_context.check_hostname
    tls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=certifi.where())
    assert kafka_python_kwargs(tls) == {"security_protocol": "SSL",
                                        "ssl_cafile": certifi.where()}
    assert isinstance(faust_broker_credentials(tls), SSLCredentials)


@pytest.mark.parametrize(("update", "needle"), [
    ({"kafka_security_protocol": "SASL"}, "RECALL_KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_sasl_mechanism": "GSSAPI"}, "RECALL_KAFKA_SASL_MECHANISM"),
    ({"kafka_sasl_password": None}, "RECALL_KAFKA_SASL_PASSWORD"),
    ({"kafka_ssl_certfile": "/tmp/cert.pem"}, "RECALL_KAFKA_SSL_KEYFILE"),
])
def test_incomplete_kafka_settings_fail_early(update: dict[str, Any], needle: str) -> None:
    settings = sasl().model_copy(update=update)
    with pytest.raises(ValueError, match=needle):
        kafka_python_kwargs(settings)
    with pytest.raises(ValueError, match=needle):
        faust_broker_credentials(settings)


def test_redis_credentials_and_redacted_urls() -> None:
    assert redis_kwargs(Settings()) == {}
    assert redis_kwargs(Settings(redis_username="app", redis_password=SecretStr("pw"))) == {
        "username": "app", "password": "pw"}
    assert redact_url("redis://app:pw@redis:6379/0") == "redis://app:***@redis:6379/0"
    assert redact_url("redis://:pw@redis/0") == "redis://:***@redis/0"
    assert redact_url("http://milvus:19530") == "http://milvus:19530"


def test_secrets_never_in_repr_str_or_json_but_reach_child_processes() -> None:
    settings = Settings.model_validate(SECRETS)
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        for secret in SECRETS.values():
            assert secret not in text
    env = to_env(settings)
    for name, secret in SECRETS.items():
        assert env[f"RECALL_{name.upper()}"] == secret


def test_item_index_hands_its_token_to_the_milvus_client(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class Client:  # only the calls start() makes
        def __init__(self, uri: str, **kwargs: Any) -> None:
            made.append({"uri": uri, **kwargs})

        def list_collections(self) -> list[str]:
            return ["items"]

        def has_collection(self, name: str) -> bool:
            return True

        def list_indexes(self, name: str, field_name: str) -> list[str]:
            return ["vector"]

        def load_collection(self, name: str) -> None:
            pass

    monkeypatch.setattr(index_module, "MilvusClient", Client)
    index = ItemIndex("http://milvus:19530", "items", 4, token=SecretStr("root:milvus-pw-3"))
    assert "milvus-pw-3" not in repr(vars(index))
    index.start()
    ItemIndex("http://milvus:19530", "items", 4).start()
    assert [m["token"] for m in made] == ["root:milvus-pw-3", ""]
