"""What every handler shares: the store, the clock, limits, faults, and query helpers."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from reconciliation.marketplaces import MARKETPLACES

from .errors import invalid_input
from .faults import FaultPlan
from .ratelimit import RateLimiter
from .store import SpApiStore
from .timeutil import parse_iso

# The client adds its marketplace under all of these names (python-amazon-sp-api,
# sp_api/base/client.py); any may carry ids.
MARKETPLACE_PARAM_NAMES = ("MarketplaceIds", "MarketplaceId", "marketplace_ids", "marketplaceIds", "marketplaceId")


@dataclass
class RequestCount:
    """API calls per operation since the app started: answered (past the usage plan) and
    throttled (answered 429). Injected faults and refused tokens are in neither."""

    answered: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)

    def describe(self) -> dict[str, dict[str, int]]:
        return {"answered": dict(self.answered), "throttled": dict(self.throttled)}


@dataclass
class Sandbox:
    store: SpApiStore
    base_url: str
    now: Callable[[], datetime]
    limiter: RateLimiter
    faults: FaultPlan = field(default_factory=FaultPlan)
    order_items_page_size: int = 10
    restrict_pii: bool = True  # buyer PII only with a restricted data token, as Amazon
    region: str | None = None  # na / eu / fe: this host serves that region's marketplaces only
    document_url_base: str | None = None  # admin override of where document URLs point (tests)
    requests: RequestCount = field(default_factory=RequestCount)

    def serves(self, marketplace_id: str) -> bool:
        """Whether this host answers for ``marketplace_id`` (every one when region-less)."""
        return self.region is None or marketplace_id in region_marketplaces(self.region)

    def served_marketplaces(self) -> tuple[str, ...]:
        return () if self.region is None else region_marketplaces(self.region)

    def check_served(self, markets: list[str]) -> None:
        """Amazon's regional hosts refuse marketplace ids of another region."""
        foreign = [m for m in markets if not self.serves(m)]
        if foreign:
            raise invalid_input(
                f"Invalid marketplace id(s) {', '.join(foreign)} for this endpoint.",
                f"This host serves the {str(self.region).upper()} region only.",
            )


def region_marketplaces(region: str) -> tuple[str, ...]:
    """Marketplace ids of an SP-API region (``reconciliation.marketplaces``: the one table)."""
    return tuple(m.marketplace_id for m in MARKETPLACES if m.region.lower() == region.lower())


@dataclass(frozen=True)
class Reply:
    """A handler's answer: status, JSON body (None = empty), extra headers."""

    status: int
    body: Any = None


def values(request: Request, *names: str) -> list[str]:
    """All values of the named query parameters, repeated keys and CSV both accepted, in order."""
    found: list[str] = []
    for name in names:
        for raw in request.query_params.getlist(name):
            found.extend(part.strip() for part in raw.split(",") if part.strip())
    return list(dict.fromkeys(found))


def marketplace_ids(request: Request) -> list[str]:
    return values(request, *MARKETPLACE_PARAM_NAMES)


def date_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise invalid_input(f"Invalid {name}: {raw!r} is not an ISO-8601 date-time.") from None


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise invalid_input(f"Invalid {name}: {raw!r}; it must be an integer from {low} to {high}.")
    return value


def encode_token(state: dict) -> str:
    """Opaque paging token (Amazon's are opaque base64 too)."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_token(token: str, kind: str) -> dict:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeError):
        state = None
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise invalid_input("Invalid NextToken.", f"The token {token[:24]!r}... was not issued for this operation.")
    return state


async def json_body(request: Request) -> Any:
    """The request body as JSON (floats as Decimal, so prices stay exact)."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_input("The request body is not valid JSON.", str(exc)) from None
