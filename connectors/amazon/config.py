"""Who we talk to on Amazon: one seller account in one region, its endpoint and LWA credentials.

Amazon authorises an app once per region (na, eu, fe) and hands out one refresh token per
region; each region has its own host. An ``AmazonAccount`` is therefore one region's
authorisation: its marketplaces must all belong to that region (``accounts.SellerAccounts``
holds one per region).

The endpoint and the LWA token URL are plain settings so the same connector runs against
Amazon's regional hosts in production and against the local SP-API sandbox in tests and
demos (nothing is switched by environment variables or module patching).

The one definition of Amazon's hosts: the SP-API regions (code, endpoint, AWS region) and the
LWA token URL live here and nowhere else; ``connectors.settings`` imports them to derive an
account's default endpoint. Which region a marketplace belongs to is not repeated here: it comes
from ``reconciliation.marketplaces.MARKETPLACES`` (the one marketplace table, a pure data module
with no network and no Prefect, so connectors, the settings layer, the domain and the sandbox
can all import it without breaking the layering).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from reconciliation.marketplaces import MARKETPLACES, REGION_EU, REGION_FE, REGION_NA

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"


@dataclass(frozen=True)
class Region:
    code: str  # na / eu / fe
    endpoint: str  # SP-API host for every marketplace of the region
    aws_region: str  # what python-amazon-sp-api calls "region"


def _region(code: str, aws_region: str) -> Region:
    code = code.lower()
    return Region(code, f"https://sellingpartnerapi-{code}.amazon.com", aws_region)


# Region code (na / eu / fe) -> its host; keyed by the marketplace table's region codes.
REGIONS: dict[str, Region] = {
    r.code: r
    for r in (_region(REGION_NA, "us-east-1"), _region(REGION_EU, "eu-west-1"), _region(REGION_FE, "us-west-2"))
}

# Amazon marketplace id -> region code, from the project's one marketplace table (a pure data
# module; importing it from a connector is the one exception to "connectors import no domain").
MARKETPLACE_REGIONS: dict[str, str] = {m.marketplace_id: m.region.lower() for m in MARKETPLACES}
if not set(MARKETPLACE_REGIONS.values()) <= REGIONS.keys():  # a region added to the table but not here
    raise ValueError(f"regions without an SP-API host: {sorted(set(MARKETPLACE_REGIONS.values()) - REGIONS.keys())}")

ORDERS_API_VERSIONS = ("v0", "2026-01-01")
# Orders v0 getOrders is deprecated (removal 2027-03-27): its successor is the default, v0 a setting.
DEFAULT_ORDERS_API_VERSION = "2026-01-01"


class AmazonConfigError(ValueError):
    """An account setting is missing or malformed; ``setting`` names which one."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"Amazon account setting {setting!r}: {problem}")
        self.setting = setting
        self.problem = problem


def region_for_marketplace(marketplace_id: str) -> Region:
    """The SP-API region serving ``marketplace_id``; unknown ids are an error, not a guess."""
    try:
        return REGIONS[MARKETPLACE_REGIONS[marketplace_id]]
    except KeyError:
        raise AmazonConfigError("marketplace_ids", f"unknown Amazon marketplace id {marketplace_id!r}") from None


def _check_url(setting: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AmazonConfigError(setting, f"expected an http(s) URL, got {url!r}")


@dataclass(frozen=True)
class AmazonAccount:
    """One selling-partner authorisation. Secrets never show in ``repr``."""

    endpoint: str
    seller_id: str
    marketplace_ids: tuple[str, ...]
    refresh_token: str = field(repr=False)
    lwa_app_id: str
    lwa_client_secret: str = field(repr=False)
    token_url: str = LWA_TOKEN_URL
    orders_api_version: str = DEFAULT_ORDERS_API_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))
        _check_url("endpoint", self.endpoint)
        _check_url("token_url", self.token_url)
        if isinstance(self.marketplace_ids, str):  # a lone id would iterate as characters
            object.__setattr__(self, "marketplace_ids", (self.marketplace_ids,))
        else:
            object.__setattr__(self, "marketplace_ids", tuple(self.marketplace_ids))
        if not self.marketplace_ids:
            raise AmazonConfigError("marketplace_ids", "at least one marketplace id is required")
        regions = sorted({MARKETPLACE_REGIONS[m] for m in self.marketplace_ids if m in MARKETPLACE_REGIONS})
        if len(regions) > 1:
            raise AmazonConfigError(
                "marketplace_ids",
                f"marketplaces span regions {', '.join(regions)}; Amazon "
                "issues one refresh token per region: configure one account per region",
            )
        for name in ("seller_id", "refresh_token", "lwa_app_id", "lwa_client_secret"):
            if not getattr(self, name):
                raise AmazonConfigError(name, "is empty")
        if self.orders_api_version not in ORDERS_API_VERSIONS:
            raise AmazonConfigError(
                "orders_api_version", f"{self.orders_api_version!r} is not one of {', '.join(ORDERS_API_VERSIONS)}"
            )

    @classmethod
    def for_marketplaces(
        cls,
        marketplace_ids: tuple[str, ...] | list[str],
        *,
        seller_id: str,
        refresh_token: str,
        lwa_app_id: str,
        lwa_client_secret: str,
        orders_api_version: str = DEFAULT_ORDERS_API_VERSION,
    ) -> AmazonAccount:
        """A production account: the endpoint follows from the marketplaces' (single) region."""
        regions = {region_for_marketplace(m).code for m in marketplace_ids}
        if len(regions) != 1:
            raise AmazonConfigError(
                "marketplace_ids", f"marketplaces span regions {sorted(regions)}; use one account per region"
            )
        return cls(
            endpoint=REGIONS[regions.pop()].endpoint,
            seller_id=seller_id,
            marketplace_ids=tuple(marketplace_ids),
            refresh_token=refresh_token,
            lwa_app_id=lwa_app_id,
            lwa_client_secret=lwa_client_secret,
            orders_api_version=orders_api_version,
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> AmazonAccount:
        """Build from a settings mapping (config file, sandbox credentials); names missing keys."""
        required = ("endpoint", "seller_id", "marketplace_ids", "refresh_token", "lwa_app_id", "lwa_client_secret")
        missing = [k for k in required if not values.get(k)]
        if missing:
            raise AmazonConfigError(missing[0], "is missing")
        marketplace_ids = values["marketplace_ids"]
        if isinstance(marketplace_ids, str):
            marketplace_ids = tuple(m.strip() for m in marketplace_ids.split(",") if m.strip())
        elif not isinstance(marketplace_ids, Iterable):
            raise AmazonConfigError("marketplace_ids", "must be a list or comma-separated text")
        return cls(
            endpoint=str(values["endpoint"]).rstrip("/"),
            seller_id=str(values["seller_id"]),
            marketplace_ids=tuple(str(m) for m in marketplace_ids),
            refresh_token=str(values["refresh_token"]),
            lwa_app_id=str(values["lwa_app_id"]),
            lwa_client_secret=str(values["lwa_client_secret"]),
            token_url=str(values.get("token_url") or LWA_TOKEN_URL),
            orders_api_version=str(values.get("orders_api_version") or DEFAULT_ORDERS_API_VERSION),
        )

    @property
    def region(self) -> str | None:
        """na / eu / fe: the region of the account's marketplaces (None if no id is known)."""
        return next((MARKETPLACE_REGIONS[m] for m in self.marketplace_ids if m in MARKETPLACE_REGIONS), None)

    @property
    def aws_region(self) -> str:
        """AWS region name the library wants (unused since SigV4 was dropped); us-east-1 if unknown."""
        code = MARKETPLACE_REGIONS.get(self.marketplace_ids[0])
        return REGIONS[code].aws_region if code else "us-east-1"
