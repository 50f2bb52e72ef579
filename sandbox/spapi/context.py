"""What every handler shares: the store, the clock, limits, faults, and query helpers."""
from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from .errors import invalid_input
from .faults import FaultPlan
from .ratelimit import RateLimiter
from .store import SpApiStore
from .timeutil import parse_iso

# The client adds its marketplace under all of these names (sp-api.md §7.1); any may carry ids.
MARKETPLACE_PARAM_NAMES = ("MarketplaceIds", "MarketplaceId", "marketplace_ids", "marketplaceIds", "marketplaceId")


@dataclass
class Sandbox:
    store: SpApiStore
    base_url: str
    now: Callable[[], datetime]
    limiter: RateLimiter
    faults: FaultPlan = field(default_factory=FaultPlan)
    order_items_page_size: int = 10
    restrict_pii: bool = False  # True: buyer PII only with a restricted data token, as Amazon


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
