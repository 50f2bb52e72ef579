"""Configuration of the live targets: M3, Amazon SP-API and the state store.

Sources, later wins: ``HOME/config.toml``, then ``M3SYNC_<SECTION>_<KEY>`` environment
variables. Nothing falls back to the sandbox: a section that is not configured stays
unconfigured, and `Settings.require_m3` / `require_amazon` raise a `ConfigurationError`
saying exactly which TOML key or environment variable to set.

``HOME/config.toml``::

    [m3]
    ionapi = "m3.ionapi"          # relative to HOME; or base_url + user + password (Basic)
    profile = "cloudsuite"        # the default; "brief" only for tenants mapping the brief's names
    cono = "100"
    divi = "AAA"
    tenant = "ACME_PRD"           # optional, the .ionapi's "ti" otherwise
    rate_type = 1                 # CRTP sent on every voucher line (optional)

    [m3.divisions]                # marketplace code -> M3 division (others: [m3] divi)
    US = "100"
    UK = "200"

    [m3.rates.400]                # optional fixed rates (ARAT) into division 400's local currency
    EUR = "11.4523"

    [amazon]
    refresh_token = "prefect-secret:amazon-refresh-token"   # a Prefect Secret block
    lwa_app_id = "amzn1.application-oa2-client.…"
    lwa_client_secret = { secret_block = "amazon-lwa-secret" }
    marketplaces = ["ATVPDKIKX0DER"]
    seller_id = "A1SELLER"
    # endpoint: derived from the marketplaces' region unless set; token_url: Amazon's LWA
    # orders_api = "v0"           # Orders API version read; default "2026-01-01" (v0 is deprecated)

    # Selling in several regions: Amazon issues one refresh token per region, so give each
    # region its own table (and leave refresh_token/marketplaces/endpoint out of [amazon]):
    [amazon.na]
    refresh_token = "prefect-secret:amazon-refresh-na"
    marketplaces = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
    [amazon.eu]
    refresh_token = "prefect-secret:amazon-refresh-eu"
    marketplaces = ["A1PA6795UKMFR9"]            # endpoint optional, as above

    [state]
    url = "postgresql+psycopg://sync@db/m3sync"   # default: sqlite at HOME/state.sqlite

    [runner]                      # where the settlement flow's per-settlement tasks run (default: threads)
    dask_address = "tcp://scheduler:8786"   # an existing Dask cluster (pip install 'm3-amazon-sync[dask]')
    # or: dask_workers = 2                  # a local cluster of that many worker processes, for the run

    [settlement]                  # what settle does with orders M3 has no document for
    refunds_without_credit = "hold"   # or "returns": post to sales returns with the VAT reversal
    missing_invoices = "hold"         # or "suspense": post the sales to a suspense account
    not_settled_after_days = 30       # the workbook's Exceptions list M3 invoices no settlement paid after this

    [reports]                     # where settle's workbooks go (--report PATH wins)
    location = "s3://bucket/m3sync"   # default HOME/reports; a folder, any fsspec URL, or
                                      # "block:remote-file-system/my-reports" (a Prefect filesystem block)

    [m3sync]
    environment = "production"    # names this home's Prefect artifacts (settlement-summary-production);
                                  # default "live", and "sandbox" for --sandbox runs

    [tax]                          # tax per marketplace (reconciliation/tax_profiles.yaml): overrides
    seller = "outside_eu_uk"       # optional: a registration other than "established in each marketplace's country"
    [tax.DE]
    facilitator = true             # every order; "auto" (shipped): orders with withheld tax; false: none
    fee_vat = { treatment = "included", rate = "0.19", vat_code = "21" }   # at every date
    # or dated treatments: [[tax.DE.fee_vat]] tables, each after the first with from = 2024-08-01

``[tax]`` is read from the file only (nested tables have no environment variables) and kept as
written: the domain (``reconciliation.tax``) checks it, naming the key of a bad value.

Secret values (``[m3] password``, ``[amazon] refresh_token``, ``lwa_client_secret``) are
`Secret` objects: their repr is ``'***'``; a Prefect Secret block reference is only loaded
when ``.reveal()`` is called.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, get_args

from connectors.amazon.client import DEFAULT_DEADLINE_S
from connectors.amazon.config import (
    DEFAULT_ORDERS_API_VERSION,
    LWA_TOKEN_URL,
    MARKETPLACE_REGIONS,
    ORDERS_API_VERSIONS,
    REGIONS,
)
from connectors.amazon.documents import DocumentLimits
from connectors.home import resolve_home as resolve_home  # defined where the command line reads it cheaply
from connectors.redact import redact_text, redact_url
from reconciliation.marketplaces import MARKETPLACES

CONFIG_FILE = "config.toml"
ENV_PREFIX = "M3SYNC_"
SECRET_BLOCK_PREFIX = "prefect-secret:"
DEFAULT_TOKEN_URL = LWA_TOKEN_URL
M3Profile = Literal["brief", "cloudsuite"]
M3_PROFILES: tuple[M3Profile, ...] = get_args(M3Profile)
# [m3] customer_ledger: settle the Amazon invoices in M3's customer ledger (ARS040MI payments)
# or only in the GL (their invoices post to a GL clearing account); auto asks M3 at start-up.
CustomerLedgerMode = Literal["auto", "allocate", "gl-clearing"]
CUSTOMER_LEDGER_MODES: tuple[CustomerLedgerMode, ...] = get_args(CustomerLedgerMode)
# The one definition of which M3 transactions are used when nothing says otherwise. A live M3
# gets the standard CloudSuite transactions: the brief's names (OIS100MI/AddHead, MMS080MI/LstItemBal,
# GLS200MI/Add) do not exist in standard M3 and are used only when chosen explicitly. The sandbox
# serves both; `m3sync demo` and `--sandbox` use SANDBOX_M3_PROFILE unless an [m3] section
# is configured.
DEFAULT_M3_PROFILE: M3Profile = "cloudsuite"
SANDBOX_M3_PROFILE: M3Profile = "brief"

# SP-API regions, their endpoints and the LWA token URL are defined once, in connectors.amazon.config
# (a marketplace's region in turn comes from the one marketplace table, reconciliation.marketplaces).
AMAZON_REGIONS: tuple[str, ...] = tuple(REGIONS)


class ConfigurationError(Exception):
    """Configuration is missing or wrong. The message says what to set, and where.

    ``path``/``line`` are set when the problem is inside a config file.
    """

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path, self.line = path, line


SecretResolver = Callable[[str], str]


def prefect_secret(block_name: str) -> str:
    """Load a Prefect ``Secret`` block's value (needs a reachable Prefect API)."""
    from prefect.blocks.system import Secret as PrefectSecret  # import lazily: slow, optional

    try:
        value = PrefectSecret.load(block_name).get()  # type: ignore[union-attr]  # sync caller: a block
    except Exception as exc:  # noqa: BLE001 - any failure means "configure the block"
        raise ConfigurationError(
            f"Prefect Secret block {block_name!r} could not be loaded ({type(exc).__name__}); "
            f"create it with `prefect block create secret` or in the Prefect UI"
        ) from None
    return value if isinstance(value, str) else str(value)


class Secret:
    """A secret value, or a reference to a Prefect Secret block resolved on `reveal`.

    ``str()``, ``repr()`` and f-strings never show the value; ``origin`` says where it was
    configured. Deliberately not a dataclass: ``dataclasses.asdict`` would copy the value
    out. Immutable.
    """

    __slots__ = ("_value", "block", "origin", "_resolver")
    _value: str | None
    block: str | None
    origin: str
    _resolver: SecretResolver

    def __init__(
        self,
        value: str | None = None,
        *,
        block: str | None = None,
        origin: str = "",
        resolver: SecretResolver = prefect_secret,
    ) -> None:
        if (value is None) == (block is None):
            raise ValueError("a Secret holds either a value or a Prefect Secret block name")
        for name, item in (("_value", value), ("block", block), ("origin", origin), ("_resolver", resolver)):
            object.__setattr__(self, name, item)

    @classmethod
    def literal(cls, value: str, origin: str = "") -> Secret:
        return cls(value, origin=origin)

    @classmethod
    def from_block(cls, name: str, origin: str = "", resolver: SecretResolver = prefect_secret) -> Secret:
        return cls(block=name, origin=origin, resolver=resolver)

    def reveal(self) -> str:
        """The secret itself: hand it to the client that needs it, never to a log."""
        if self._value is not None:
            return self._value
        assert self.block is not None
        return self._resolver(self.block)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self._value, self.block) == (other._value, other.block)

    def __hash__(self) -> int:
        return hash((self._value, self.block))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (Dask, process pools) keeps the value; only text renderings hide it.
        return (_rebuild_secret, (self._value, self.block, self.origin, self._resolver))

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret('***')" if self.block is None else f"Secret('***', block={self.block!r})"


def _rebuild_secret(value: str | None, block: str | None, origin: str, resolver: SecretResolver) -> Secret:
    return Secret(value, block=block, origin=origin, resolver=resolver)


@dataclass(frozen=True)
class M3Settings:
    """How to reach M3. Either ``ionapi`` (an ION API .ionapi file: OAuth2 through the
    gateway) or ``base_url`` + ``user`` + ``password`` (HTTP Basic, on-prem/direct).
    ``base_url`` alongside ``ionapi`` overrides the file's ``iu``. ``cono``/``divi``: company
    and division sent with each call (None: the user's defaults). ``tenant``: overrides the
    .ionapi's ``ti``. ``profile``: which M3 transactions the connector uses."""

    ionapi: Path | None = None
    base_url: str | None = None
    user: str | None = None
    password: Secret | None = None
    profile: M3Profile = DEFAULT_M3_PROFILE
    cono: str | None = None
    divi: str | None = None
    tenant: str | None = None
    # Seconds: one MI call's answer; how long to await the voucher of a GLS840 batch before
    # reporting the settlement "submitted"; how long an unanswered write may still commit in M3.
    timeout_seconds: float = 30.0
    voucher_wait_seconds: float = 60.0
    settle_seconds: float = 120.0
    customer_ledger: CustomerLedgerMode = "auto"
    receivable_account: str = "1510"  # the account M3's invoices of the Amazon customers debit
    # allocate: the settlement's receivable lines go here; the customer payment clears it
    payment_clearing_account: str = "1519"
    # allocate: an invoice paid within this of its amount (either way, in the settlement's
    # currency) is paid in full and the difference written off (payment_differences); 0: never
    payment_write_off: Decimal = Decimal("0.05")

    @property
    def auth_mode(self) -> Literal["ionapi", "basic"]:
        return "ionapi" if self.ionapi is not None else "basic"


@dataclass(frozen=True)
class AmazonRegionSettings:
    """One region's authorisation: its refresh token, host and the marketplaces sold there."""

    region: str  # na / eu / fe
    refresh_token: Secret
    endpoint: str
    marketplaces: tuple[str, ...]


@dataclass(frozen=True)
class AmazonSettings:
    """Selling Partner API credentials (LWA app, shared by all regions) and one account per
    region. ``refresh_token``/``endpoint`` are the single account's (an error with several)."""

    lwa_app_id: str
    lwa_client_secret: Secret
    accounts: tuple[AmazonRegionSettings, ...]
    token_url: str = DEFAULT_TOKEN_URL
    seller_id: str | None = None
    deadline_seconds: float = DEFAULT_DEADLINE_S  # an unreachable Amazon fails an operation after this
    max_document_bytes: int = DocumentLimits.max_download_bytes  # report documents: download and inflate bound
    orders_api_version: str = DEFAULT_ORDERS_API_VERSION  # [amazon] orders_api (confirmShipment stays on v0)

    @property
    def marketplaces(self) -> tuple[str, ...]:
        return tuple(m for account in self.accounts for m in account.marketplaces)

    def _single(self) -> AmazonRegionSettings:
        if len(self.accounts) != 1:
            raise ConfigurationError(
                f"{len(self.accounts)} Amazon regions are configured "
                f"({', '.join(a.region for a in self.accounts)}): use .accounts"
            )
        return self.accounts[0]

    @property
    def refresh_token(self) -> Secret:
        return self._single().refresh_token

    @property
    def endpoint(self) -> str:
        return self._single().endpoint


@dataclass(frozen=True)
class RunnerSettings:
    """``[runner]``: where the settlement flow runs its per-settlement tasks. Neither key: the
    flow's own thread pool; ``dask_address``: an existing Dask scheduler (``tcp://host:8786``);
    ``dask_workers``: a local Dask cluster of that many single-threaded worker processes,
    started for the run and stopped after it. ``origin``: where the choice was configured."""

    dask_address: str | None = None
    dask_workers: int | None = None
    origin: str = ""

    @property
    def uses_dask(self) -> bool:
        return self.dask_address is not None or self.dask_workers is not None


@dataclass(frozen=True)
class SettlementSettings:
    """``[settlement]``: the user's choices for orders M3 has no invoice or credit note for, as
    written (the settlement flow checks the values: ``flows.connections.invoice_policy``)."""

    refunds_without_credit: str | None = None
    missing_invoices: str | None = None
    # Days after its date an M3 invoice no settlement paid is an exception (None: the workbook's default).
    not_settled_after_days: int | None = None
    origins: Mapping[str, str] = field(default_factory=dict)  # key -> where it was set, for messages


@dataclass(frozen=True)
class ReportsSettings:
    """``[reports] location`` as written (``flows.reports`` checks it) and where it was set, for messages."""

    location: str | None = None
    origin: str = ""


@dataclass(frozen=True)
class LedgerSettings:
    """Where and how vouchers are booked: ``[m3.divisions]`` routes a marketplace (its code: US,
    UK, DE, ...) to an M3 division, the others go to ``[m3] divi`` (or the M3 user's default);
    ``[m3] rate_type`` is sent as CRTP on every line; ``[m3.rates.<division>]`` fixes the rate
    (ARAT) of a currency into that division's local currency, else M3 takes its own rate.
    ``origins``: where each routed marketplace was configured (for messages)."""

    divisions: Mapping[str, str] = field(default_factory=dict)
    rate_type: int | None = None
    rates: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)  # (division, currency) -> rate
    origins: Mapping[str, str] = field(default_factory=dict)

    def division_for(self, marketplace_code: str | None, default: str) -> str:
        """The division a settlement of ``marketplace_code`` posts to."""
        return self.divisions.get(marketplace_code or "", default)

    def rate_for(self, division: str, currency: str) -> Decimal | None:
        return self.rates.get((division, currency))

    def routed(self) -> dict[str, str]:
        """Where each routed division is configured -> the division (for the start-up check)."""
        return {self.origins.get(code, f"[m3.divisions] {code}"): divi for code, divi in self.divisions.items()}


@dataclass(frozen=True)
class Settings:
    """Everything configured under one home. ``m3``/``amazon`` are None when not configured
    (``problems`` then says why, per section); use `require_m3`/`require_amazon`.
    ``state_url`` is any SQLAlchemy URL (its password is masked in the repr)."""

    m3: M3Settings | None
    amazon: AmazonSettings | None
    state_url: str
    home: Path
    problems: Mapping[str, str] = field(default_factory=dict)
    state_url_origin: str = "the state database URL"  # where it was configured, for messages
    runner: RunnerSettings = field(default_factory=RunnerSettings)  # [runner]: where settlement tasks run
    settlement: SettlementSettings = field(default_factory=SettlementSettings)
    tax: Mapping[str, Any] = field(default_factory=dict)  # the [tax] table as written (reconciliation.tax checks it)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    reports: ReportsSettings = field(default_factory=ReportsSettings)
    environment: str | None = None  # [m3sync] environment, lowercase-dashed (artifact keys); None: not set

    def __repr__(self) -> str:
        return (
            f"Settings(m3={self.m3!r}, amazon={self.amazon!r}, state_url={redact_text(self.state_url)!r}, "
            f"home={self.home!r}, problems={self.problems!r})"
        )

    def require_m3(self) -> M3Settings:
        if self.m3 is None:
            raise ConfigurationError(self.problems.get("m3", "M3 is not configured"))
        return self.m3

    def require_amazon(self) -> AmazonSettings:
        if self.amazon is None:
            raise ConfigurationError(self.problems.get("amazon", "Amazon is not configured"))
        return self.amazon


# -- reading --------------------------------------------------------------------------

# The tool's own section: its keys' variables are M3SYNC_<KEY> (M3SYNC_ENVIRONMENT).
OWN_SECTION = "m3sync"


_Kind = Literal["str", "secret", "path", "list", "table"]
_SCHEMA: dict[str, dict[str, _Kind]] = {
    "m3": {
        "ionapi": "path",
        "base_url": "str",
        "user": "str",
        "password": "secret",
        "profile": "str",
        "cono": "str",
        "divi": "str",
        "tenant": "str",
        "timeout_seconds": "str",
        "voucher_wait_seconds": "str",
        "settle_seconds": "str",
        "customer_ledger": "str",
        "receivable_account": "str",
        "payment_clearing_account": "str",
        "payment_write_off": "str",
        "rate_type": "str",
        "divisions": "table",  # [m3.divisions]: marketplace code = "division"
        "rates": "table",  # [m3.rates.<division>]: currency = "rate"
    },
    "amazon": {
        "refresh_token": "secret",
        "lwa_app_id": "str",
        "lwa_client_secret": "secret",
        "endpoint": "str",
        "token_url": "str",
        "seller_id": "str",
        "marketplaces": "list",
        "deadline_seconds": "str",
        "max_document_bytes": "str",
        "orders_api": "str",
    },
    **{
        f"amazon.{region}": {"refresh_token": "secret", "endpoint": "str", "marketplaces": "list"}
        for region in AMAZON_REGIONS
    },
    "runner": {"dask_address": "str", "dask_workers": "str"},
    "state": {"url": "str"},
    "settlement": {"refunds_without_credit": "str", "missing_invoices": "str", "not_settled_after_days": "str"},
    "reports": {"location": "str"},
    OWN_SECTION: {"environment": "str"},
}


TAX_SECTION = "tax"  # [tax] and [tax.XX]: see the module docstring


def env_var(section: str, key: str) -> str:
    """The environment variable for ``[section] key``: ``M3SYNC_M3_IONAPI``, ``M3SYNC_STATE_URL``,
    ``M3SYNC_ENVIRONMENT`` for ``[m3sync] environment``."""
    if section == OWN_SECTION:
        return f"{ENV_PREFIX}{key.upper()}"
    return f"{ENV_PREFIX}{section.upper().replace('.', '_')}_{key.upper()}"


@dataclass(frozen=True)
class _Raw:
    """One configured value and where it came from (for messages)."""

    value: Any
    origin: str
    from_file: bool


def decode_error_position(exc: UnicodeDecodeError) -> tuple[int, int]:
    """1-based line and column (in bytes) of the first byte that is not valid in the text's encoding."""
    data = bytes(exc.object)
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    return data.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except UnicodeDecodeError as exc:
        line, column = decode_error_position(exc)
        raise ConfigurationError(
            f"{path}:{line}:{column}: not UTF-8 text; TOML files must be saved as UTF-8", path=path, line=line
        ) from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise ConfigurationError(
            f"{path}: malformed TOML: {exc}", path=path, line=int(found.group(1)) if found else None
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the configuration file ({exc.strerror})", path=path) from None


def _collect(path: Path, document: Mapping[str, Any], env: Mapping[str, str]) -> dict[tuple[str, str], _Raw]:
    found: dict[tuple[str, str], _Raw] = {}
    for section, table in document.items():
        if section == TAX_SECTION and isinstance(table, dict):
            continue  # kept as written; load_settings hands it on
        if section not in _SCHEMA or not isinstance(table, dict):
            raise ConfigurationError(
                f"{path}: unknown section [{section}]; known sections: "
                + ", ".join(f"[{name}]" for name in (*_SCHEMA, TAX_SECTION)),
                path=path,
            )
        for key, value in table.items():
            if section == "amazon" and key in AMAZON_REGIONS and isinstance(value, dict):
                found.update(_collect(path, {f"amazon.{key}": value}, {}))  # [amazon.na] etc.
                continue
            if key not in _SCHEMA[section]:
                raise ConfigurationError(
                    f"{path}: unknown key {key!r} in [{section}]; known keys: {', '.join(_SCHEMA[section])}",
                    path=path,
                )
            found[(section, key)] = _Raw(value, f"[{section}] {key} in {path}", True)
    for section, keys in _SCHEMA.items():
        for key in keys:
            name = env_var(section, key)
            if env.get(name, "").strip():  # an empty variable counts as unset
                found[(section, key)] = _Raw(env[name].strip(), name, False)
    return found


class _Section:
    """Typed access to one section's raw values, collecting problems instead of raising so
    one message can name everything that is missing."""

    def __init__(self, name: str, raw: Mapping[tuple[str, str], _Raw], home: Path, resolver: SecretResolver) -> None:
        self.name, self._raw, self._home, self._resolver = name, raw, home, resolver
        self.problems: list[str] = []

    def given(self, key: str) -> bool:
        return (self.name, key) in self._raw

    def where(self, key: str) -> str:
        return f"[{self.name}] {key} in {self._home / CONFIG_FILE} or {env_var(self.name, key)}"

    def text(self, key: str) -> str | None:
        raw = self._raw.get((self.name, key))
        if raw is None:
            return None
        if isinstance(raw.value, bool) or not isinstance(raw.value, (str, int)):
            self.problems.append(f"{raw.origin} must be a string, got {type(raw.value).__name__}")
            return None
        return str(raw.value)  # TOML integers (cono = 100) become identifiers: strings

    def secret(self, key: str) -> Secret | None:
        raw = self._raw.get((self.name, key))
        if raw is None:
            return None
        value = raw.value
        if isinstance(value, dict):
            block = value.get("secret_block")
            if set(value) != {"secret_block"} or not isinstance(block, str) or not block:
                self.problems.append(f'{raw.origin} must be a string or {{ secret_block = "NAME" }}')
                return None
            return Secret.from_block(block, raw.origin, self._resolver)
        if not isinstance(value, str):
            self.problems.append(f"{raw.origin} must be a string, got {type(value).__name__}")
            return None
        if value.startswith(SECRET_BLOCK_PREFIX):
            return Secret.from_block(value.removeprefix(SECRET_BLOCK_PREFIX), raw.origin, self._resolver)
        return Secret.literal(value, raw.origin)

    def path(self, key: str) -> Path | None:
        raw = self._raw.get((self.name, key))
        text = self.text(key)
        if raw is None or text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute():  # relative to HOME in the file, to the cwd in the environment
            path = (self._home / path) if raw.from_file else path.absolute()
        if not path.is_file():
            self.problems.append(f"{raw.origin}: file {path} does not exist")
            return None
        return path

    def items(self, key: str) -> tuple[str, ...]:
        raw = self._raw.get((self.name, key))
        if raw is None:
            return ()
        value = raw.value
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, list) or not all(isinstance(part, str) for part in parts):
            self.problems.append(f"{raw.origin} must be a list of strings (or a comma-separated string)")
            return ()
        return tuple(part.strip() for part in parts if part.strip())

    def seconds(self, key: str, default: float) -> float:
        raw = self._raw.get((self.name, key))
        if raw is None:
            return default
        try:
            value = float(raw.value) if not isinstance(raw.value, bool) else -1.0
        except (TypeError, ValueError):
            value = -1.0
        if not (0 <= value < 86400):  # also refuses nan
            self.problems.append(f"{raw.origin} must be a number of seconds (0 to 86400), got {raw.value!r}")
            return default
        return value

    def url(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and not value.startswith(("https://", "http://")):
            self.problems.append(
                f"{self._raw[(self.name, key)].origin} must be an http(s) URL, got {redact_url(value)!r}"
            )
            return None
        return value.rstrip("/") if value else value

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [key for key in keys if not self.given(key)]


def _m3_settings(section: _Section, home: Path) -> M3Settings | None:
    if not (section.given("ionapi") or section.given("base_url")):
        section.problems.append(
            f'M3 is not configured: set [m3] ionapi = "path/to/file.ionapi" in {home / CONFIG_FILE} '
            f"or {env_var('m3', 'ionapi')} (or base_url, user and password for HTTP Basic: "
            f"{env_var('m3', 'base_url')}, {env_var('m3', 'user')}, {env_var('m3', 'password')}), "
            f"or use --sandbox"
        )
        return None
    ionapi = section.path("ionapi")
    base_url = section.url("base_url")
    if not section.given("ionapi"):
        for key in section.missing(["user", "password"]):
            section.problems.append(f"M3 HTTP Basic needs {key}: set {section.where(key)}")
    profile = section.text("profile") or DEFAULT_M3_PROFILE
    if profile not in M3_PROFILES:
        section.problems.append(f"{section.where('profile')} must be one of {', '.join(M3_PROFILES)}, got {profile!r}")
    cono = section.text("cono")
    if cono is not None and not (cono.isdigit() and len(cono) <= 3):
        section.problems.append(f"{section.where('cono')} must be an M3 company number (1-3 digits), got {cono!r}")
    user, password = section.text("user"), section.secret("password")
    divi, tenant = section.text("divi"), section.text("tenant")
    waits = {
        key: section.seconds(key, getattr(M3Settings, key))
        for key in ("timeout_seconds", "voucher_wait_seconds", "settle_seconds")
    }
    ledger = section.text("customer_ledger") or M3Settings.customer_ledger
    if ledger not in CUSTOMER_LEDGER_MODES:
        section.problems.append(
            f"{section.where('customer_ledger')} must be one of {', '.join(CUSTOMER_LEDGER_MODES)}, got {ledger!r}"
        )
    accounts = {
        key: section.text(key) or getattr(M3Settings, key) for key in ("receivable_account", "payment_clearing_account")
    }
    for key, account in accounts.items():
        if len(account) > 10:
            section.problems.append(f"{section.where(key)} must be an M3 account (at most 10 characters)")
    write_off = _write_off_limit(section)
    if section.problems:
        return None
    return M3Settings(
        customer_ledger=ledger,  # type: ignore[arg-type]  # checked above
        payment_write_off=write_off,
        receivable_account=accounts["receivable_account"],
        payment_clearing_account=accounts["payment_clearing_account"],
        ionapi=ionapi,
        base_url=base_url,
        user=user,
        password=password,
        profile=profile,  # type: ignore[arg-type]  # checked above
        cono=cono,
        divi=divi,
        tenant=tenant,
        **waits,
    )


def _amazon_account(section: _Section, region: str | None) -> AmazonRegionSettings | None:
    """One region's account from ``section`` ([amazon] alone, or [amazon.<region>]); problems are
    collected on ``section``. ``region`` None: told by the marketplaces."""
    for key in section.missing(["refresh_token", "marketplaces"]):
        section.problems.append(f"Amazon needs {key}: set {section.where(key)}")
    refresh_token, marketplaces = section.secret("refresh_token"), section.items("marketplaces")
    if section.given("marketplaces") and not marketplaces and not section.problems:
        section.problems.append(f"{section.where('marketplaces')} lists no marketplace ids")
    regions = sorted({MARKETPLACE_REGIONS[m] for m in marketplaces if m in MARKETPLACE_REGIONS})
    if len(regions) > 1:
        tables = ", ".join(f"[amazon.{r}]" for r in regions)
        variables = ", ".join(env_var(f"amazon.{r}", "refresh_token") for r in regions)
        section.problems.append(
            f"marketplaces {', '.join(marketplaces)} belong to regions {', '.join(regions)}: Amazon issues one "
            f"refresh token per region, so configure one account per region ({tables} with refresh_token and "
            f"marketplaces, or {variables}); one [amazon] endpoint ({env_var('amazon', 'endpoint')}) cannot "
            f"serve them all"
        )
    elif region is not None and regions and regions != [region]:
        section.problems.append(
            f"{section.where('marketplaces')}: {', '.join(marketplaces)} are not "
            f"{region.upper()} marketplaces (they belong to {regions[0]})"
        )
    region = region or (regions[0] if regions else None)
    endpoint = section.url("endpoint")
    if endpoint is None and marketplaces and not section.given("endpoint") and len(regions) <= 1:
        if region is not None:
            endpoint = REGIONS[region].endpoint
        else:
            section.problems.append(
                f"cannot tell the SP-API endpoint for marketplaces {', '.join(marketplaces)}: "
                f"set {section.where('endpoint')} (e.g. {REGIONS['na'].endpoint})"
            )
    if section.problems or refresh_token is None or endpoint is None:
        return None
    return AmazonRegionSettings(
        region=region or "custom", refresh_token=refresh_token, endpoint=endpoint, marketplaces=marketplaces
    )


def _amazon_settings(sections: Mapping[str, _Section], home: Path) -> AmazonSettings | None:
    """``[amazon]`` (the LWA app, seller and optionally one region's account) and ``[amazon.<region>]``
    tables (one account each); all problems are collected on the ``amazon`` section."""
    section = sections["amazon"]
    regional = [
        sections[f"amazon.{r}"]
        for r in AMAZON_REGIONS
        if any(sections[f"amazon.{r}"].given(k) for k in _SCHEMA[f"amazon.{r}"])
    ]
    single_keys = ("refresh_token", "marketplaces", "endpoint")
    app_keys = ["lwa_app_id", "lwa_client_secret"]
    if not regional and all(not section.given(k) for k in [*app_keys, "refresh_token", "marketplaces"]):
        required = ["refresh_token", "lwa_app_id", "lwa_client_secret", "marketplaces"]
        section.problems.append(
            f"Amazon is not configured: set [amazon] {', '.join(required)} in {home / CONFIG_FILE} "
            f"or {', '.join(env_var('amazon', key) for key in required)}, or use --sandbox"
        )
        return None
    for key in section.missing(app_keys):
        section.problems.append(f"Amazon needs {key}: set {section.where(key)}")
    accounts: list[AmazonRegionSettings | None] = []
    if regional:
        mixed = [k for k in single_keys if section.given(k)]
        if mixed:
            section.problems.append(
                f"{section.where(mixed[0])} is set together with [{regional[0].name}]: with one table per "
                f"region, put refresh_token, marketplaces and endpoint in the region tables only"
            )
        for table in regional:
            accounts.append(_amazon_account(table, table.name.split(".", 1)[1]))
            section.problems.extend(table.problems)
            table.problems.clear()
    else:
        accounts.append(_amazon_account(section, None))
    client_secret = section.secret("lwa_client_secret")
    token_url = section.url("token_url") or DEFAULT_TOKEN_URL
    lwa_app_id, seller_id = section.text("lwa_app_id"), section.text("seller_id")
    deadline = _positive(section, "deadline_seconds", float, AmazonSettings.deadline_seconds)
    max_document_bytes = _positive(section, "max_document_bytes", int, AmazonSettings.max_document_bytes)
    orders_api = section.text("orders_api") or DEFAULT_ORDERS_API_VERSION
    if orders_api not in ORDERS_API_VERSIONS:
        section.problems.append(
            f"{section.where('orders_api')} must be one of {', '.join(ORDERS_API_VERSIONS)}, got {orders_api!r}"
        )
    if section.problems or client_secret is None or lwa_app_id is None or None in accounts:
        return None
    return AmazonSettings(
        lwa_app_id=lwa_app_id,
        lwa_client_secret=client_secret,
        accounts=tuple(a for a in accounts if a is not None),
        token_url=token_url,
        seller_id=seller_id,
        deadline_seconds=deadline,
        max_document_bytes=max_document_bytes,
        orders_api_version=orders_api,
    )


def _runner_settings(section: _Section, raw: Mapping[tuple[str, str], _Raw]) -> RunnerSettings:
    address = section.text("dask_address")
    workers = _positive(section, "dask_workers", int, None)
    if address is not None and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", address.strip()):
        section.problems.append(
            f"{raw[('runner', 'dask_address')].origin} must be a Dask scheduler address such as "
            f"tcp://scheduler:8786, got {redact_url(address)!r}"
        )
        address = None
    if address is not None and workers is not None:
        section.problems.append(
            f"{raw[('runner', 'dask_address')].origin} and {raw[('runner', 'dask_workers')].origin}: "
            "choose one, an existing Dask cluster or a local one"
        )
    given = [raw[("runner", key)].origin for key in ("dask_address", "dask_workers") if ("runner", key) in raw]
    return RunnerSettings(dask_address=address and address.strip(), dask_workers=workers, origin=", ".join(given))


def _settlement_settings(section: _Section, raw: Mapping[tuple[str, str], _Raw]) -> SettlementSettings:
    keys = ("refunds_without_credit", "missing_invoices")
    values = {key: section.text(key) for key in keys}
    origins = {key: raw[("settlement", key)].origin for key in keys if ("settlement", key) in raw}
    days = _positive(section, "not_settled_after_days", int, None)
    return SettlementSettings(**values, not_settled_after_days=days, origins=origins)


def _reports_settings(section: _Section, raw: Mapping[tuple[str, str], _Raw]) -> ReportsSettings:
    location = section.text("location")
    if location is not None and not location.strip():
        section.problems.append(f"{raw[('reports', 'location')].origin} is empty: leave it out for HOME/reports")
        location = None
    origin = raw[("reports", "location")].origin if location is not None else ""
    return ReportsSettings(location.strip() if location is not None else None, origin)


def environment_name(text: str) -> str:
    """``text`` as Prefect artifact keys take it: lowercase letters, digits and single dashes
    (``"Production EU"`` -> ``"production-eu"``); empty when nothing of it is left."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _environment(section: _Section) -> str | None:
    text = section.text("environment")
    if text is None:
        return None
    name = environment_name(text)
    if not name:
        section.problems.append(f"{section.where('environment')} must contain letters or digits, got {text!r}")
        return None
    return name


def _positive(section: _Section, key: str, kind: Callable[[str], Any], default: Any) -> Any:
    """A positive number setting (TOML number or numeric string); problems are named."""
    raw = section._raw.get((section.name, key))
    if raw is None:
        return default
    try:
        value = None if isinstance(raw.value, bool) else kind(str(raw.value).strip())
    except ValueError:
        value = None
    if value is None or not value > 0:
        section.problems.append(f"{raw.origin} must be a positive number, got {raw.value!r}")
        return default
    return value


_MARKETPLACE_CODES = tuple(dict.fromkeys(m.code for m in MARKETPLACES))


def _table(raw: _Raw, problems: list[str]) -> dict[str, Any]:
    """A TOML table, or (from the environment) ``"KEY=VALUE,KEY=VALUE"``."""
    if isinstance(raw.value, dict):
        return dict(raw.value)
    if isinstance(raw.value, str):
        pairs = [part.split("=", 1) for part in raw.value.split(",") if part.strip()]
        if all(len(pair) == 2 for pair in pairs):
            return {key.strip(): value.strip() for key, value in pairs}
    problems.append(f"{raw.origin} must be a table (or KEY=VALUE,KEY=VALUE), got {raw.value!r}")
    return {}


def _entry_origin(raw: _Raw, table: str, key: str) -> str:
    """Where one entry of a table was configured: ``[m3.divisions] UK in /home/config.toml``."""
    if raw.from_file:
        return f"[{table}] {key} in {raw.origin.split(' in ', 1)[1]}"
    return f"{raw.origin} ({key})"


def _ledger_settings(raw: Mapping[tuple[str, str], _Raw]) -> LedgerSettings:
    """``[m3.divisions]``, ``[m3] rate_type`` and ``[m3.rates.<division>]``; any problem is a
    ConfigurationError naming the key (posting to a wrong legal entity is never a default)."""
    problems: list[str] = []
    divisions: dict[str, str] = {}
    origins: dict[str, str] = {}
    if ("m3", "divisions") in raw:
        table_raw = raw[("m3", "divisions")]
        for code, divi in _table(table_raw, problems).items():
            where = _entry_origin(table_raw, "m3.divisions", code)
            if code not in _MARKETPLACE_CODES:
                problems.append(f"{where}: {code!r} is not a marketplace code (known: {', '.join(_MARKETPLACE_CODES)})")
            elif isinstance(divi, bool) or not isinstance(divi, (str, int)) or not 1 <= len(str(divi)) <= 3:
                problems.append(f"{where} must be an M3 division (1-3 characters), got {divi!r}")
            else:
                divisions[code], origins[code] = str(divi), where
    rate_type = None
    if ("m3", "rate_type") in raw:
        value = raw[("m3", "rate_type")]
        text = str(value.value).strip() if not isinstance(value.value, bool) else ""
        if text.isdigit() and 0 < int(text) < 100:
            rate_type = int(text)
        else:
            problems.append(f"{value.origin} must be an M3 exchange rate type 1..99 (CRTP), got {value.value!r}")
    rates: dict[tuple[str, str], Decimal] = {}
    if ("m3", "rates") in raw:
        table_raw = raw[("m3", "rates")]
        for divi, currencies in _table(table_raw, problems).items():
            if isinstance(currencies, str):  # environment: "400:EUR=11.4523"
                divi, _, currency = divi.partition(":")
                currencies = {currency: currencies}
            if not isinstance(currencies, dict):
                problems.append(f'{table_raw.origin}: [m3.rates.{divi}] must be a table of currency = "rate"')
                continue
            for currency, rate in currencies.items():
                where = _entry_origin(table_raw, f"m3.rates.{divi}", currency)
                try:
                    # A TOML float is binary: only a string (or an integer) is the exact rate.
                    fixed: Decimal | None = None if isinstance(rate, (bool, float)) else Decimal(str(rate).strip())
                except InvalidOperation:
                    fixed = None
                if fixed is None or not fixed.is_finite() or fixed <= 0 or len(currency) != 3:
                    problems.append(
                        f"{where} must be a currency code = a positive rate written as a "
                        f'string (e.g. EUR = "11.4523"), got {rate!r}'
                    )
                else:
                    rates[(divi, currency)] = fixed
    if problems:
        raise ConfigurationError("; ".join(problems))
    return LedgerSettings(divisions=divisions, rate_type=rate_type, rates=rates, origins=origins)


def _write_off_limit(section: _Section) -> Decimal:
    """``[m3] payment_write_off``: an amount written as a string ("0.05"), exact; "0" disables."""
    text = section.text("payment_write_off")
    if text is None:
        return M3Settings.payment_write_off
    try:
        limit = Decimal(text.strip())
    except InvalidOperation:
        limit = Decimal(-1)
    if not limit.is_finite() or limit < 0:
        section.problems.append(
            f"{section.where('payment_write_off')} must be an amount of at least 0 written as a string "
            f'(e.g. "0.05"; "0" writes nothing off), got {text!r}'
        )
        return M3Settings.payment_write_off
    return limit


def load_settings(
    home: Path,
    env: Mapping[str, str] = os.environ,
    *,
    secret_resolver: SecretResolver = prefect_secret,
    require: Iterable[Literal["m3", "amazon"]] = (),
) -> Settings:
    """Read ``home/config.toml`` and ``M3SYNC_*`` overrides.

    Raises `ConfigurationError` for a malformed or unreadable file, unknown sections/keys,
    a bad state URL, or when a section named in ``require`` is not (fully) configured.
    Other sections' problems surface when `Settings.require_m3`/`require_amazon` is called.
    ``secret_resolver`` loads Prefect Secret blocks; it is only called on `Secret.reveal`.
    """
    home = Path(home)
    config_path = home / CONFIG_FILE
    document = _read_toml(config_path)
    raw = _collect(config_path, document, env)
    sections = {name: _Section(name, raw, home, secret_resolver) for name in _SCHEMA}
    m3 = _m3_settings(sections["m3"], home)
    ledger = _ledger_settings(raw)
    amazon = _amazon_settings(sections, home)
    state_url = sections["state"].text("url")
    state_origin = raw[("state", "url")].origin if state_url is not None else "the default state database"
    if state_url is not None:
        check_state_url(state_url, state_origin, driver=False)  # the driver is checked when a run needs it
    state_url = state_url or f"sqlite:///{(home / 'state.sqlite').absolute()}"
    runner = _runner_settings(sections["runner"], raw)
    settlement = _settlement_settings(sections["settlement"], raw)
    reports = _reports_settings(sections["reports"], raw)
    environment = _environment(sections[OWN_SECTION])
    # Every run reads these: a problem is reported now.
    for name in ("state", "settlement", "runner", "reports", OWN_SECTION):
        if sections[name].problems:
            raise ConfigurationError("; ".join(sections[name].problems))
    problems = {name: "; ".join(section.problems) for name, section in sections.items() if section.problems}
    settings = Settings(
        m3=m3,
        amazon=amazon,
        state_url=state_url,
        home=home,
        problems=problems,
        state_url_origin=state_origin,
        runner=runner,
        settlement=settlement,
        tax=document.get(TAX_SECTION, {}),
        ledger=ledger,
        reports=reports,
        environment=environment,
    )
    for name in require:
        (settings.require_m3 if name == "m3" else settings.require_amazon)()
    return settings


# pip packages of the database drivers SQLAlchemy's dialects import, where the names differ.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
}


def check_state_url(
    url: str, origin: str = "the state database URL", *, driver: bool = True, reachable: bool = True
) -> None:
    """Raise ConfigurationError (one line, userinfo masked) unless ``url`` is a SQLAlchemy URL whose
    database driver is installed (``driver=False``: the URL only) and, for a database server
    (not SQLite) with ``reachable``, a connection to it can be made; ``origin`` says where it was configured."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = redact_url(url)
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(f"{origin}: {shown} names a database SQLAlchemy does not know") from None
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            f"{origin}: {shown} is not a database URL (e.g. sqlite:////path/state.sqlite "
            "or postgresql+psycopg://user@host/db)"
        ) from None
    if not driver:
        return
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (exc.name or parsed.get_driver_name()).split(".")[0]
        # A bare postgresql:// means SQLAlchemy's psycopg2 dialect; the project's extra brings psycopg 3.
        psycopg3 = " (or write postgresql+psycopg:// to use psycopg 3)" if module == "psycopg2" else ""
        raise ConfigurationError(
            f"{origin} {shown} needs the {module} database driver, which is not installed: "
            f"pip install '{_DRIVER_PACKAGES.get(module, module)}'{psycopg3}"
        ) from None
    if reachable and parsed.get_backend_name() != "sqlite":
        from connectors.state import connection_problem

        problem = connection_problem(url)
        if problem is not None:
            raise ConfigurationError(f"{origin} {shown}: cannot connect to the database ({problem})")
