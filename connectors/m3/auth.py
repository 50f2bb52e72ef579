"""ION API credentials (.ionapi) and the two ways M3 authenticates: OAuth2 and HTTP Basic.

The OAuth2 flow is the backend-service one (m3-api.md §3): resource-owner password grant with
the service account keys, the token cached until shortly before it expires, refreshed with the
refresh token when one was issued, and revoked on close. Secrets never reach a repr or a log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from connectors.m3.errors import M3AuthError, M3Unavailable

log = logging.getLogger(__name__)

_REQUIRED_KEYS = ("ti", "ci", "cs", "iu", "pu", "ot", "saak", "sask")


@dataclass(frozen=True)
class IonApiCredentials:
    """The keys of a backend-service ``.ionapi`` file that this connector uses."""

    ti: str  # tenant
    ci: str  # OAuth client id
    cs: str = field(repr=False)  # OAuth client secret
    iu: str  # ION API gateway base URL
    pu: str  # auth server base, ends with /as/
    ot: str  # token path (appended to pu)
    saak: str = field(repr=False)  # service account access key (OAuth username)
    sask: str = field(repr=False)  # service account secret key (OAuth password)
    or_: str = "revoke_token.oauth2"  # revoke path; "or" in the file (a Python keyword)

    @classmethod
    def from_file(cls, path: str | Path) -> IonApiCredentials:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise M3AuthError(f".ionapi file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise M3AuthError(
                f".ionapi file {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(raw, dict):
            raise M3AuthError(f".ionapi file {path} must hold a JSON object")
        missing = [key for key in _REQUIRED_KEYS if not isinstance(raw.get(key), str) or not raw.get(key)]
        if missing:
            hint = " (saak/sask only exist in Backend Service app files)" if {"saak", "sask"} & set(missing) else ""
            raise M3AuthError(f".ionapi file {path} lacks {', '.join(missing)}{hint}")
        return cls(
            ti=raw["ti"],
            ci=raw["ci"],
            cs=raw["cs"],
            iu=raw["iu"].rstrip("/"),
            pu=raw["pu"],
            ot=raw["ot"],
            saak=raw["saak"],
            sask=raw["sask"],
            or_=raw.get("or") or "revoke_token.oauth2",
        )

    @property
    def token_url(self) -> str:
        return _join(self.pu, self.ot)

    @property
    def revoke_url(self) -> str:
        return _join(self.pu, self.or_)

    @property
    def m3_base_url(self) -> str:
        """``iu/ti/M3``: the ION API gateway route to M3."""
        return f"{self.iu.rstrip('/')}/{self.ti}/M3"


def _join(base: str, path: str) -> str:
    return base if not path else (base if base.endswith("/") else base + "/") + path.lstrip("/")


@dataclass(frozen=True)
class _Token:
    access: str = field(repr=False)
    refresh: str | None = field(repr=False)
    expires_at: float  # time.monotonic() at which we stop using it


class IonApiOAuth(httpx.Auth):
    """httpx auth flow: Bearer token from the ION API token endpoint, cached and refreshed.

    Token calls go through a small client of their own (same transport and timeout as the M3
    client) so refreshing and revoking also work outside a request.
    """

    def __init__(
        self,
        credentials: IonApiCredentials,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self.grants: list[str] = []  # grant types used, in order (observable for tests/ops)

    def __repr__(self) -> str:
        return f"IonApiOAuth(tenant={self._credentials.ti!r}, token={'set' if self._token else 'none'})"

    # -- httpx.Auth ---------------------------------------------------------------------------
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self.access_token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            # Revoked or expired early on the server side: one forced refresh, one retry.
            self._invalidate(used)
            request.headers["Authorization"] = f"Bearer {self.access_token()}"
            yield request

    # -- token management ---------------------------------------------------------------------
    def access_token(self) -> str:
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.expires_at:
                token = self._renew(token)
                self._token = token
            return token.access

    def _invalidate(self, used: str) -> None:
        with self._lock:
            if self._token is not None and self._token.access == used:
                # Keep the refresh token; only force the access token to be renewed.
                self._token = _Token(access="", refresh=self._token.refresh, expires_at=float("-inf"))

    def _renew(self, previous: _Token | None) -> _Token:
        if previous is not None and previous.refresh:
            try:
                return self._grant({"grant_type": "refresh_token", "refresh_token": previous.refresh})
            except M3AuthError:
                log.info("ION API refresh token rejected; requesting a new token with the password grant")
        creds = self._credentials
        return self._grant({"grant_type": "password", "username": creds.saak, "password": creds.sask})

    def _grant(self, form: dict[str, str]) -> _Token:
        creds = self._credentials
        grant = form["grant_type"]
        body = {**form, "client_id": creds.ci, "client_secret": creds.cs}
        try:
            response = self._http.post(creds.token_url, data=body, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise M3Unavailable("ION API token endpoint", f"{origin(creds.token_url)} timed out") from None
        except httpx.TransportError as exc:
            raise M3Unavailable(
                "ION API token endpoint", f"connection to {origin(creds.token_url)} failed ({type(exc).__name__})"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise M3Unavailable("ION API token endpoint", f"HTTP {response.status_code}", status=response.status_code)
        if response.status_code != 200:
            raise M3AuthError(
                f"ION API token request ({grant} grant) refused: HTTP {response.status_code}{_oauth_error(response)}"
            )
        try:
            payload = response.json()
            access = payload["access_token"]
            lifetime = float(payload.get("expires_in", 7200))
        except (ValueError, KeyError, TypeError):
            raise M3AuthError(f"ION API token response ({grant} grant) has no access_token") from None
        self.grants.append(grant)
        # Renew a little early (10% of the lifetime, at most a minute) so a token never
        # expires between our check and M3's.
        margin = min(60.0, lifetime * 0.1)
        log.debug("ION API token obtained with the %s grant, valid %ss", grant, int(lifetime))
        return _Token(
            access=access, refresh=payload.get("refresh_token") or None, expires_at=self._clock() + lifetime - margin
        )

    def revoke(self) -> None:
        """Revoke the tokens we hold (best effort: a failed revoke is logged, not raised)."""
        with self._lock:
            token, self._token = self._token, None
        if token is None:
            return
        creds = self._credentials
        for value, hint in ((token.access, "access_token"), (token.refresh, "refresh_token")):
            if not value:
                continue
            try:
                response = self._http.post(
                    creds.revoke_url,
                    data={"token": value, "token_type_hint": hint, "client_id": creds.ci, "client_secret": creds.cs},
                )
                if response.status_code >= 400:
                    log.warning("ION API revoke of the %s answered HTTP %s", hint, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("ION API revoke of the %s failed: %s", hint, type(exc).__name__)

    def close(self) -> None:
        self.revoke()
        self._http.close()


def _oauth_error(response: httpx.Response) -> str:
    """The OAuth ``error`` code of a refused grant (never the body itself: it may echo input)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({error})" if isinstance(error, str) and error.isascii() and len(error) < 60 else ""


@dataclass(frozen=True)
class BasicCredentials:
    """On-premise M3 (direct MNE host): HTTP Basic user and password."""

    user: str
    password: str = field(repr=False)

    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.user, self.password)


def origin(url: str) -> str:
    """scheme://host:port of a URL for messages (never a path, user or password)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
