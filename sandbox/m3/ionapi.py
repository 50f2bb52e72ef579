"""The sandbox's credentials and its ``.ionapi`` file (m3-api.md §3).

Credentials are generated when a sandbox folder's database is created (seed.py) and read
back from it, so every app instance on that folder accepts the same keys. Secrets are kept
out of ``repr``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .seed import seed_if_new
from .store import Store, Tx

TOKEN_PATH = "token.oauth2"
REVOKE_PATH = "revoke_token.oauth2"
AUTHORIZE_PATH = "authorization.oauth2"
DEFAULT_TENANT = "SANDBOX_TST"


@dataclass(frozen=True)
class SandboxCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    service_access_key: str = field(repr=False)
    service_secret_key: str = field(repr=False)
    basic_user: str = ""
    basic_password: str = field(default="", repr=False)


def read_credentials(tx: Tx) -> SandboxCredentials:
    names = ("client_id", "client_secret", "service_access_key", "service_secret_key", "basic_user", "basic_password")
    values = {name: tx.setting(name) for name in names}
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise RuntimeError(f"sandbox database has no credentials ({', '.join(missing)}); was it seeded?")
    return SandboxCredentials(**values)  # type: ignore[arg-type]


def sandbox_credentials(data_dir: Path, seed: int = 0) -> SandboxCredentials:
    """Credentials of the sandbox in ``data_dir`` (creating and seeding it if new)."""
    store = Store(data_dir)
    try:
        seed_if_new(store, seed)
        with store.transaction() as tx:
            return read_credentials(tx)
    finally:
        store.close()


def basic_auth_credentials(data_dir: Path, seed: int = 0) -> tuple[str, str]:
    """(user, password) for an app created with ``auth="basic"`` on ``data_dir``."""
    creds = sandbox_credentials(data_dir, seed)
    return creds.basic_user, creds.basic_password


def ionapi_document(base_url: str, tenant: str, creds: SandboxCredentials) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "ti": tenant,
        "cn": f"M3SYNC_{tenant}",
        "dt": "12",
        "ci": creds.client_id,
        "cs": creds.client_secret,
        "iu": base,
        "pu": f"{base}/{tenant}/as/",
        "oa": AUTHORIZE_PATH,
        "ot": TOKEN_PATH,
        "or": REVOKE_PATH,
        "ev": "SANDBOX",
        "v": "1.0",
        "saak": creds.service_access_key,
        "sask": creds.service_secret_key,
    }


def write_ionapi(path: Path, base_url: str, tenant: str, creds: SandboxCredentials) -> Path:
    """Write a Backend-Service ``.ionapi`` file for this sandbox; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ionapi_document(base_url, tenant, creds), indent=2), encoding="utf-8")
    try:
        path.chmod(0o600)  # it holds secrets
    except OSError:
        pass
    return path
