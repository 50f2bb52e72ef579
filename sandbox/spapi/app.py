"""The SP-API sandbox as a Starlette app: LWA, Orders v0 and 2026-01-01, Reports 2021-06-30, Listings 2021-08-01,
Product Type Definitions 2020-09-01.

The app counts the calls it answered and throttled per operation (``app.state.sandbox.requests``,
also in ``GET /sandbox/state``): benchmarks and tests count Amazon calls with it.

Every API call goes through the same gate, in Amazon's order: access token (403), injected
fault, usage plan (429), then the operation. Errors always carry an ``errors`` body (the
python client treats a bodiless 4xx/5xx as success,
https://github.com/saleweaver/python-amazon-sp-api) unless a fault asks
for exactly that.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.amazon.config import LWA_TOKEN_URL  # shared wire format: the token endpoint's path

from . import admin, definitions, listings, orders, orders_2026, reports, tokens
from .context import Reply, Sandbox
from .errors import INTERNAL_FAILURE, QUOTA_EXCEEDED, UNAUTHORIZED, ApiError, LwaError
from .ratelimit import USAGE_PLANS, RateLimiter
from .store import REGIONS, SpApiStore

LWA_TOKEN_PATH = urlsplit(LWA_TOKEN_URL).path  # /auth/o2/token, as on api.amazon.com

Handler = Callable[[Request, Sandbox], Awaitable[Reply]]
_RATE_HEADER_STATUSES = frozenset({200, 201, 202, 204, 400, 404})  # "20x, 400 and 404 only"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(body: object, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str).encode(),
        status_code=status,
        headers={"content-type": "application/json", **(headers or {})},
    )


def api_operation(name: str, handler: Handler, sb: Sandbox) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an operation handler with authentication, faults, rate limiting and error bodies."""
    plan = USAGE_PLANS[name]

    async def endpoint(request: Request) -> Response:
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        caller = sb.store.access_token_owner(request.headers.get("x-amz-access-token", ""), sb.now())
        # A token of another region's refresh token is refused like an unknown one (403
        # Unauthorized, empty details: selling-partner-api-models#4825).
        if caller is None or (sb.region is not None and caller.region != sb.region):
            return _json(UNAUTHORIZED.body(), 403, dict(headers, **{"x-amzn-ErrorType": "AccessDeniedException"}))
        fault = sb.faults.take(name)
        if fault is not None:
            if not fault.with_body:
                return Response(b"", status_code=fault.status, headers=headers)
            return _json(fault.error.body(), fault.status, headers)
        if not sb.limiter.allow(name, caller.client_id):
            sb.requests.throttled[name] += 1
            return _json(QUOTA_EXCEEDED.body(), 429, headers)
        sb.requests.answered[name] += 1
        try:
            reply = await handler(request, sb)
        except ApiError as error:
            reply = Reply(error.status, error.body())
        if reply.status in _RATE_HEADER_STATUSES:
            headers["x-amzn-RateLimit-Limit"] = plan.header
        if reply.body is None:
            return Response(status_code=reply.status, headers=headers)
        return _json(reply.body, reply.status, headers)

    return endpoint


async def _lwa_token(request: Request, sb: Sandbox) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    try:
        if form.get("grant_type") != "refresh_token":
            raise LwaError(
                400,
                "unsupported_grant_type",
                f"The authorization grant type is not supported: {form.get('grant_type')!r}",
            )
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not form.get(k)]
        if missing:
            raise LwaError(400, "invalid_request", f"The request is missing a required parameter : {missing[0]}")
        token, expires_in = sb.store.issue_access_token(
            form["client_id"], form["client_secret"], form["refresh_token"], sb.now()
        )
    except LwaError as error:
        return _json(error.body(), error.status, headers)
    body = {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": form["refresh_token"],
    }
    return Response(json.dumps(body).encode(), headers={"content-type": "application/json;charset=UTF-8", **headers})


def _bind(
    function: Callable[[Request, Sandbox], Awaitable[Response]], sb: Sandbox
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await function(request, sb)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods still answer with an errors body (the client needs one)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(status, "InvalidInput")
    message = f"{request.method} {request.url.path} is not supported by this endpoint."
    return _json({"errors": [{"code": code, "message": message, "details": ""}]}, status)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return _json(INTERNAL_FAILURE.body(), 500)


def create_app(
    data_dir: Path,
    base_url: str,
    *,
    region: str | None = None,
    time_scale: float = 1.0,
    rate_limits: bool = True,
    now: Callable[[], datetime] | None = None,
    order_items_page_size: int = 10,
    restrict_pii: bool = True,
) -> Starlette:
    """The sandbox app for the state in ``data_dir``; ``base_url`` is where it is reachable.

    ``region`` (na / eu / fe) makes it one of Amazon's regional hosts: it serves that region's
    marketplaces and accepts access tokens of that region's refresh token only (None: every
    marketplace and token, for tests of the API shapes). Rate limits are Amazon's published
    usage plans; ``time_scale`` speeds up bucket refills (100 = 100x faster, 1 = Amazon's pace).
    ``now`` pins the sandbox clock (token expiry, getOrders' two-minute rule, report retention,
    URL expiry). ``restrict_pii`` (default on, as Amazon) withholds buyer name, e-mail, phone
    and street address unless the call carries a restricted data token for that path.
    """
    if region is not None and region not in REGIONS:
        raise ValueError(f"unknown SP-API region {region!r}; one of {', '.join(REGIONS)}")
    sb = Sandbox(
        store=SpApiStore(Path(data_dir)),
        base_url=base_url.rstrip("/"),
        now=now or _utcnow,
        limiter=RateLimiter(time_scale=time_scale, enabled=rate_limits),
        order_items_page_size=order_items_page_size,
        restrict_pii=restrict_pii,
        region=region,
    )
    orders_base, reports_base = "/orders/v0/orders", "/reports/2021-06-30"
    orders_2026_base = "/orders/2026-01-01/orders"
    listing_path = "/listings/2021-08-01/items/{seller_id}/{sku:path}"

    def api(path: str, name: str, handler: Handler, method: str) -> Route:
        return Route(path, api_operation(name, handler, sb), methods=[method], name=name)

    def plain(path: str, function: Callable[[Request, Sandbox], Awaitable[Response]], method: str) -> Route:
        return Route(path, _bind(function, sb), methods=[method])

    routes = [
        plain(LWA_TOKEN_PATH, _lwa_token, "POST"),
        api(orders_base, "getOrders", orders.get_orders, "GET"),
        api(orders_base + "/{order_id}", "getOrder", orders.get_order, "GET"),
        api(orders_base + "/{order_id}/orderItems", "getOrderItems", orders.get_order_items, "GET"),
        api(orders_base + "/{order_id}/address", "getOrderAddress", orders.get_order_address, "GET"),
        api(orders_base + "/{order_id}/buyerInfo", "getOrderBuyerInfo", orders.get_order_buyer_info, "GET"),
        api(orders_base + "/{order_id}/shipmentConfirmation", "confirmShipment", orders.confirm_shipment, "POST"),
        api(orders_2026_base, "searchOrders", orders_2026.search_orders, "GET"),
        api(orders_2026_base + "/{order_id}", "getOrder2026", orders_2026.get_order, "GET"),
        api(
            "/tokens/2021-03-01/restrictedDataToken",
            "createRestrictedDataToken",
            tokens.create_restricted_data_token,
            "POST",
        ),
        api(reports_base + "/reports", "getReports", reports.get_reports, "GET"),
        api(reports_base + "/reports", "createReport", reports.create_report, "POST"),
        api(reports_base + "/reports/{report_id}", "getReport", reports.get_report, "GET"),
        api(reports_base + "/documents/{document_id}", "getReportDocument", reports.get_report_document, "GET"),
        api(listing_path, "getListingsItem", listings.get_listings_item, "GET"),
        api(listing_path, "patchListingsItem", listings.patch_listings_item, "PATCH"),
        api("/listings/2021-08-01/items/{seller_id}", "searchListingsItems", listings.search_listings_items, "GET"),
        api(
            "/definitions/2020-09-01/productTypes/{product_type}",
            "getDefinitionsProductType",
            definitions.get_definitions_product_type,
            "GET",
        ),
        plain(definitions.SCHEMA_PREFIX + "/{path:path}", definitions.download_schema, "GET"),
        plain(reports.DOWNLOAD_PREFIX + "/{document_id}", reports.download_document, "GET"),
        plain("/sandbox/faults", admin.arm_faults, "POST"),
        plain("/sandbox/faults", admin.clear_faults, "DELETE"),
        plain("/sandbox/reports", admin.add_report, "POST"),
        plain("/sandbox/tokens/expire", admin.expire_tokens, "POST"),
        plain("/sandbox/document-url", admin.set_document_url, "POST"),
        plain("/sandbox/state", admin.state, "GET"),
        plain("/sandbox/listings", admin.set_listing_checks, "POST"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _http_error, 405: _http_error, Exception: _internal_error})
    app.state.sandbox = sb
    return app
