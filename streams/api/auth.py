"""Who may change state through the API: the token, where it comes from, how it is shown.

RECALL_API_AUTH=token (the default): the calls that change state (/insert, /drop and the live
page's POST /live/clicks) need the API token; with RECALL_API_TOKEN_ALL the reading calls too.
The token is RECALL_API_TOKEN, or, when that is unset, a new one made at start with
`secrets.token_urlsafe` (Jupyter's approach), which the API logs once and nowhere else.
`make run`'s launcher makes the token itself and hands it to the API in its environment, so it
can print it in its Ready message instead. RECALL_API_AUTH=off opens every call.

The live page gets the token from its link's fragment (`/live#token=<token>`): a fragment never
reaches the server, so no access log holds it; the page keeps it in the tab's sessionStorage,
removes it from the address bar and sends it as `X-API-Key` (a header, so no cookie a
cross-site request could ride on).
"""

from __future__ import annotations

import logging
import secrets
from typing import TypeVar

from pydantic import SecretStr

from streams.settings import ApiSettings

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 43 URL-safe characters
S = TypeVar("S", bound=ApiSettings)


def new_token() -> SecretStr:
    """A fresh random token (256 bits), URL-safe so it fits a link's fragment."""
    return SecretStr(secrets.token_urlsafe(TOKEN_BYTES))


def with_token(settings: S) -> tuple[S, bool]:
    """`settings` with an API token: its own, or a new one when auth is on and none is set;
    True when the token is new (the caller shows it, once)."""
    if settings.api_auth == "off" or settings.api_token is not None:
        return settings, False
    return settings.model_copy(update={"api_token": new_token()}), True


def required_token(settings: ApiSettings) -> SecretStr | None:
    """The token the API checks; None with RECALL_API_AUTH=off."""
    if settings.api_auth == "off":
        return None
    if settings.api_token is None:
        raise ValueError("api_auth=token without a token: pass the settings through with_token")
    return settings.api_token


def live_link(settings: ApiSettings, token: SecretStr | None) -> str:
    """The live page's address, with the token in its fragment when there is one."""
    url = f"http://{settings.api_host}:{settings.api_port}/live"
    return url if token is None else f"{url}#token={token.get_secret_value()}"


def announce(settings: ApiSettings, generated: bool) -> None:
    """The API's one log line at start about who may call it (the only place a generated
    token is written)."""
    mutating = "/insert, /drop" + (" and /live/clicks" if settings.live_page else "")
    if settings.api_auth == "off":
        log.warning("RECALL_API_AUTH=off: %s need no token; anyone who reaches %s:%d can "
                    "change or empty the index", mutating, settings.api_host, settings.api_port)
        return
    needs = "every call but health, metrics and docs" if settings.api_token_all else mutating
    if not generated:
        log.info("API token (RECALL_API_TOKEN) required for %s", needs)
        return
    token = required_token(settings)
    assert token is not None
    page = f"; live page: {live_link(settings, token)}" if settings.live_page else ""
    log.warning("RECALL_API_TOKEN is not set: this run's API token is %s (needed for %s; send "
                "'Authorization: Bearer <token>' or 'X-API-Key: <token>')%s",
                token.get_secret_value(), needs, page)
