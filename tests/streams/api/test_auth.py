"""Where the API token comes from and the one line that shows a generated one."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from streams.api.auth import announce, live_link, required_token, with_token
from streams.settings import ApiSettings, Settings


def test_a_token_is_made_only_when_auth_is_on_and_none_is_set() -> None:
    made, generated = with_token(ApiSettings())
    assert generated and made.api_token is not None
    token = made.api_token.get_secret_value()
    assert len(token) >= 40 and token.replace("-", "").replace("_", "").isalnum()
    assert with_token(ApiSettings())[0].api_token != made.api_token  # new each time
    assert token not in repr(made) and token not in made.model_dump_json()
    own = ApiSettings(api_token=SecretStr("mine"))
    assert with_token(own) == (own, False)
    off = ApiSettings(api_auth="off")
    assert with_token(off) == (off, False) and required_token(off) is None


def test_settings_keep_their_class() -> None:
    made, _ = with_token(Settings())
    assert isinstance(made, Settings)


def test_auth_is_token_unless_set_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ApiSettings().api_auth == "token"
    monkeypatch.setenv("RECALL_API_AUTH", "off")
    assert ApiSettings().api_auth == "off"
    monkeypatch.setenv("RECALL_API_AUTH", "none")
    with pytest.raises(ValueError, match="api_auth"):
        ApiSettings()


def test_required_token_refuses_settings_that_skipped_with_token() -> None:
    with pytest.raises(ValueError, match="with_token"):
        required_token(ApiSettings())


def test_live_link_carries_the_token_in_its_fragment() -> None:
    settings = ApiSettings(api_port=8123)
    assert live_link(settings, None) == "http://127.0.0.1:8123/live"
    assert live_link(settings, SecretStr("t0k")) == "http://127.0.0.1:8123/live#token=t0k"


def test_a_generated_token_is_announced_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    made, generated = with_token(ApiSettings(live_page=True))
    announce(made, generated)
    token = required_token(made)
    assert token is not None
    assert len(caplog.records) == 1
    assert "RECALL_API_TOKEN is not set" in caplog.text and "/live/clicks" in caplog.text
    assert f"live page: http://127.0.0.1:8000/live#token={token.get_secret_value()}" \
        in caplog.text


def test_a_configured_token_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    announce(ApiSettings(api_token=SecretStr("configured-secret")), False)
    assert "configured-secret" not in caplog.text and "required for /insert, /drop" in caplog.text


def test_auth_off_warns(caplog: pytest.LogCaptureFixture) -> None:
    announce(ApiSettings(api_auth="off", api_token=SecretStr("ignored-secret")), False)
    assert "RECALL_API_AUTH=off" in caplog.text and "ignored-secret" not in caplog.text
