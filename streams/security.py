"""Client credentials from Settings, in one place: Kafka (kafka-python and Faust), Redis, Milvus.

Secrets stay `SecretStr` in Settings and are unwrapped only here, into the keyword arguments of a
client constructor; nothing here logs them. `redact_url` is for log lines that name a server.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from faust.auth import Credentials, SASLCredentials, SSLCredentials

from streams.settings import KafkaSettings, RedisSettings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _check_kafka(settings: KafkaSettings) -> tuple[bool, bool]:
    """(uses SASL, uses TLS); raises ValueError naming the RECALL_* variable that is wrong."""
    protocol = settings.kafka_security_protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"RECALL_KAFKA_SECURITY_PROTOCOL must be one of {PROTOCOLS}, "
                         f"got {protocol!r}")
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    if sasl:
        if settings.kafka_sasl_mechanism not in MECHANISMS:
            raise ValueError(f"RECALL_KAFKA_SASL_MECHANISM must be one of {MECHANISMS}, "
                             f"got {settings.kafka_sasl_mechanism!r}")
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise ValueError(f"{protocol} needs RECALL_KAFKA_SASL_USERNAME and "
                             "RECALL_KAFKA_SASL_PASSWORD")
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise ValueError("RECALL_KAFKA_SSL_CERTFILE and RECALL_KAFKA_SSL_KEYFILE go together")
    return sasl, tls


def kafka_python_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Security keyword arguments for kafka-python's KafkaProducer / KafkaConsumer."""
    sasl, tls = _check_kafka(settings)
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if sasl:
        assert settings.kafka_sasl_password is not None  # checked above
        kwargs.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    if tls:
        files = {"ssl_cafile": settings.kafka_ssl_cafile,
                 "ssl_certfile": settings.kafka_ssl_certfile,
                 "ssl_keyfile": settings.kafka_ssl_keyfile}
        kwargs.update({key: path for key, path in files.items() if path is not None})
    return kwargs


def kafka_ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A verifying client TLS context: the CA bundle (or the system's), the client cert if set."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile is not None:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return context


def faust_broker_credentials(settings: KafkaSettings) -> Credentials | None:
    """`broker_credentials` for faust.App: SASL and/or TLS per the settings, None for PLAINTEXT."""
    sasl, tls = _check_kafka(settings)
    context = kafka_ssl_context(settings) if tls else None
    if sasl:
        assert settings.kafka_sasl_password is not None  # checked above
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def aiokafka_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Security keyword arguments for aiokafka's AIOKafkaConsumer (TLS as an SSL context)."""
    kwargs = kafka_python_kwargs(settings)
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        kwargs.pop(name, None)
    if settings.kafka_security_protocol.endswith("SSL"):
        kwargs["ssl_context"] = kafka_ssl_context(settings)
    return kwargs


def redis_kwargs(settings: RedisSettings) -> dict[str, Any]:
    """username/password for redis.Redis.from_url (credentials inside the URL win over these)."""
    kwargs: dict[str, Any] = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password is not None:
        kwargs["password"] = settings.redis_password.get_secret_value()
    return kwargs


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
