"""ION API OAuth2 (password and refresh grants, revoke) and HTTP Basic for the sandbox M3.

Only SHA-256 digests of tokens are stored, in the shared database, so instances on one
folder accept each other's tokens and a database dump holds no usable token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from .ionapi import SandboxCredentials, read_credentials
from .store import Store

REFRESH_LIFETIME = 24 * 3600  # [ours] refresh tokens live a day


@dataclass(eq=False)  # not frozen: raising sets __traceback__
class OAuthError(Exception):
    """An RFC 6749 error answer."""

    status: int
    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def parse_form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def basic_pair(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class Authenticator:
    def __init__(self, store: Store, token_lifetime: int) -> None:
        self._store = store
        self.token_lifetime = token_lifetime

    def _credentials(self) -> SandboxCredentials:
        with self._store.transaction() as tx:
            return read_credentials(tx)

    def _check_client(self, form: dict[str, str], authorization: str | None) -> SandboxCredentials:
        creds = self._credentials()
        client = basic_pair(authorization) or (form.get("client_id"), form.get("client_secret"))
        if not (_same(client[0], creds.client_id) and _same(client[1], creds.client_secret)):
            raise OAuthError(401, "invalid_client", "client authentication failed")
        return creds

    def _issue(self, refresh_token: str | None = None) -> dict[str, object]:
        now = time.time()
        access = secrets.token_urlsafe(32)
        rows = [(_digest(access), "access", now + self.token_lifetime)]
        if refresh_token is None:
            refresh_token = secrets.token_urlsafe(32)
            rows.append((_digest(refresh_token), "refresh", now + REFRESH_LIFETIME))
        with self._store.transaction() as tx:
            tx.conn.executemany("INSERT INTO tokens (digest, kind, expires) VALUES (?, ?, ?)", rows)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "refresh_token": refresh_token,
        }

    def token(self, form: dict[str, str], authorization: str | None) -> dict[str, object]:
        """The token endpoint (``pu + ot``): password or refresh_token grant."""
        grant = form.get("grant_type", "")
        if grant == "password":
            creds = self._check_client(form, authorization)
            if not (
                _same(form.get("username"), creds.service_access_key)
                and _same(form.get("password"), creds.service_secret_key)
            ):
                raise OAuthError(400, "invalid_grant", "service account credentials are wrong")
            return self._issue()
        if grant == "refresh_token":
            self._check_client(form, authorization)
            refresh = form.get("refresh_token", "")
            if not refresh or not self._valid(refresh, "refresh"):
                raise OAuthError(400, "invalid_grant", "refresh token is unknown, expired or revoked")
            return self._issue(refresh)
        if not grant:
            raise OAuthError(400, "invalid_request", "grant_type is missing")
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def revoke(self, form: dict[str, str], authorization: str | None) -> None:
        """Revoke endpoint (``pu + or``); unknown tokens are accepted silently (RFC 7009)."""
        self._check_client(form, authorization)
        token = form.get("token", "")
        if not token:
            raise OAuthError(400, "invalid_request", "token is missing")
        with self._store.transaction() as tx:
            tx.execute("UPDATE tokens SET revoked = 1 WHERE digest = ?", (_digest(token),))

    def _valid(self, token: str, kind: str) -> bool:
        with self._store.transaction() as tx:
            row = tx.one("SELECT expires, revoked FROM tokens WHERE digest = ? AND kind = ?", (_digest(token), kind))
        return row is not None and not row["revoked"] and row["expires"] > time.time()

    def bearer_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        return self._valid(authorization[7:].strip(), "access")

    def basic_ok(self, authorization: str | None) -> bool:
        pair = basic_pair(authorization)
        if pair is None:
            return False
        creds = self._credentials()
        return _same(pair[0], creds.basic_user) and _same(pair[1], creds.basic_password)
