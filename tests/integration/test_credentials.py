"""Credentials reach a real password-protected Redis (requirepass + an ACL user) from Settings."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from harness.stack.servers import free_ports, redis_bin
from streams.errors import InvalidRequest
from streams.recall.core import open_core
from streams.settings import Settings
from streams.stores.history import ClickAt, HistoryStore

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-pw-6a1f"
USER, USER_PASSWORD = "recall", "recall-pw-93c2"


@pytest.fixture(scope="module")
def protected_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis-server with requirepass and a `recall` user limited to hist:* and co:* keys (the
    histories and the co-occurrence counts); yields its URL."""
    (port,) = free_ports(1)
    data = tmp_path_factory.mktemp("redis-auth")
    command = [redis_bin(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(data), "--requirepass", ADMIN_PASSWORD,
               "--user", USER, "on", f">{USER_PASSWORD}", "~hist:*", "~co:*", "+@all"]
    log = open(Path(data) / "redis.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        admin = redis.Redis(port=port, password=ADMIN_PASSWORD)
        deadline = time.monotonic() + 10
        while True:
            try:
                admin.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        admin.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_history_store_logs_in_with_user_and_password(protected_redis: str) -> None:
    store = HistoryStore(protected_redis, username=USER, password=SecretStr(USER_PASSWORD))
    try:
        store.start()
        assert store.append([ClickAt(1, 42, 1.0, 0, 0)]) == {1: [42]}
        assert store.get([1]) == {1: [42]}
    finally:
        store.close()


@pytest.mark.parametrize(("username", "password"), [
    (None, None), (USER, "wrong"), (None, "wrong"),
])
def test_history_store_without_the_right_credentials_fails_at_start(
        protected_redis: str, username: str | None, password: str | None) -> None:
    store = HistoryStore(protected_redis, username=username,
                         password=SecretStr(password) if password else None)
    try:
        with pytest.raises(InvalidRequest) as info:  # refused credentials are no outage
            store.start()
        assert not info.value.retriable
    finally:
        store.close()


def test_open_core_passes_redis_credentials_from_settings_and_logs_no_secret(
        protected_redis: str, core_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = core_settings.model_copy(update={
        "redis_url": protected_redis, "redis_username": USER,
        "redis_password": SecretStr(USER_PASSWORD)})
    with open_core(settings) as core:
        try:
            assert core.history is not None
            assert core.history.append([ClickAt(7, 3, 1.0, 0, 1)]) == {7: [3]}
        finally:
            core.index.destroy()
    in_url = core_settings.model_copy(update={
        "redis_url": protected_redis.replace("//", f"//{USER}:{USER_PASSWORD}@")})
    with open_core(in_url) as core:
        try:
            assert core.history is not None and core.history.get([7]) == {7: [3]}
        finally:
            core.index.destroy()
    assert f"{USER}:***@127.0.0.1" in caplog.text
    assert USER_PASSWORD not in caplog.text
