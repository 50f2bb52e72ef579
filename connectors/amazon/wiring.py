"""Build python-amazon-sp-api clients aimed at one account, without process-wide side effects.

The library reads its host from a ``Marketplaces`` enum (or ``SP_API_DEFAULT_MARKETPLACE``,
which silently overrides the argument), its LWA URL from class attributes of
``AccessTokenClient`` and caches tokens in a module-level dict keyed by the refresh token
only. Each connector therefore gets: a duck-typed marketplace, a token-client subclass made
at runtime with the account's token URL and its own cache, the endpoint re-set on every
client after construction, and one httpx client whose hooks fix the Host header (the
library sends ``endpoint[8:]``, wrong for ``http://``) and record each response's status,
because the library turns a 429/5xx without an ``errors`` body into an empty success.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.base._transport_httpx import HttpxTransport

from connectors.amazon.config import AmazonAccount

ClientT = TypeVar("ClientT")

# LWA access tokens live one hour; refresh a minute early so a token never expires mid-call.
_TOKEN_EXPIRY_MARGIN_S = 60.0
_DEFAULT_TOKEN_LIFETIME_S = 3600.0


@dataclass(frozen=True)
class AccountMarketplace:
    """What ``sp_api.base.Client`` reads from a ``Marketplaces`` member (sp-api.md §7.1)."""

    endpoint: str
    marketplace_id: str
    region: str


class TokenCache:
    """Access tokens of one account, honouring ``expires_in``; never shared between accounts."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[dict[str, Any], float]] = {}
        self.fetches = 0  # how many times the token endpoint was asked (observability, tests)

    def get_or_fetch(self, key: str, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] > self._clock():
                return entry[0]
        token = fetch()
        lifetime = float(token.get("expires_in") or _DEFAULT_TOKEN_LIFETIME_S)
        with self._lock:
            self.fetches += 1
            self._entries[key] = (token, self._clock() + max(0.0, lifetime - _TOKEN_EXPIRY_MARGIN_S))
        return token

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __repr__(self) -> str:  # tokens are secrets
        return f"TokenCache(entries={len(self._entries)}, fetches={self.fetches})"


def token_client_class(token_url: str, cache: TokenCache) -> type[AccessTokenClient]:
    """A subclass of the library's token client bound to ``token_url`` and ``cache``."""
    parts = urlsplit(token_url)

    class AccountAccessTokenClient(AccessTokenClient):
        scheme = f"{parts.scheme}://"
        host = parts.netloc
        path = parts.path or "/"

        def _token_url(self) -> str:
            query = f"?{parts.query}" if parts.query else ""
            return f"{self.scheme}{self.host}{self.path}{query}"

        def get_auth(self) -> AccessTokenResponse:
            token = cache.get_or_fetch(
                self._get_cache_key(), lambda: self._request(self._token_url(), self.data, self.headers)
            )
            return AccessTokenResponse(**token)

        def get_grantless_auth(self, scope: str = "sellingpartnerapi::notifications") -> AccessTokenResponse:
            token = cache.get_or_fetch(
                self._get_cache_key(scope),
                lambda: self._request(self._token_url(), self.grantless_data(scope), self.headers),
            )
            return AccessTokenResponse(**token)

    return AccountAccessTokenClient


@dataclass(frozen=True)
class SeenResponse:
    status: int
    headers: httpx.Headers


class ResponseRecorder:
    """The last SP-API response seen on this thread (status and headers), via httpx hooks."""

    def __init__(self) -> None:
        self._local = threading.local()

    def reset(self) -> None:
        self._local.seen = None

    @property
    def last(self) -> SeenResponse | None:
        return getattr(self._local, "seen", None)

    def on_request(self, request: httpx.Request) -> None:
        # The library sends Host = endpoint[8:] ("27.0.0.1:8765" for http://); use the real one.
        request.headers["host"] = request.url.netloc.decode("ascii")

    def on_response(self, response: httpx.Response) -> None:
        self._local.seen = SeenResponse(response.status_code, response.headers)


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One verified TLS context for every httpx client we (and the library) create: loading the
    CA bundle costs ~0.2 s, and a connector would otherwise load it eight times."""
    return httpx.create_ssl_context()


def build_http_client(recorder: ResponseRecorder, timeout: float | httpx.Timeout) -> httpx.Client:
    return httpx.Client(
        timeout=timeout,
        verify=tls_context(),
        event_hooks={"request": [recorder.on_request], "response": [recorder.on_response]},
    )


def build_client(
    client_cls: Callable[..., ClientT],
    account: AccountMarketplace,
    *,
    credentials: dict[str, str],
    token_class: type[AccessTokenClient],
    http_client: httpx.Client,
    **kwargs: Any,
) -> ClientT:
    """Construct a library client, then pin it to ``account`` whatever the environment says."""
    client = client_cls(
        marketplace=account,
        credentials=credentials,
        auth_token_client_class=token_class,
        verify=tls_context(),
        **kwargs,
    )
    # SP_API_DEFAULT_MARKETPLACE replaces the marketplace argument inside __init__: undo it here.
    client.endpoint = account.endpoint  # type: ignore[attr-defined]
    client.marketplace_id = account.marketplace_id  # type: ignore[attr-defined]
    client.region = account.region  # type: ignore[attr-defined]
    own_transport = client._transport  # type: ignore[attr-defined]
    own_transport.close()  # the library built its own httpx client; ours carries the hooks
    client._transport = HttpxTransport(client=http_client)  # type: ignore[attr-defined]
    return client


def library_credentials(account: AmazonAccount) -> dict[str, str]:
    return {
        "refresh_token": account.refresh_token,
        "lwa_app_id": account.lwa_app_id,
        "lwa_client_secret": account.lwa_client_secret,
    }
