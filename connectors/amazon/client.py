"""AmazonConnector: the project's only door to the Selling Partner API.

Built on python-amazon-sp-api (see ``wiring`` for how its clients are aimed at one account
without global side effects). Every call goes through ``_call``: wait for a local rate-limit
token, run the library call, look at the real HTTP status (the library hides 429/5xx that
come without an ``errors`` body), retry 429/5xx/network failures with jittered exponential
backoff, and turn what is left into typed errors.

Failing fast: a request that never reached Amazon (connection refused, DNS failure, connect
timeout) gives its rate-limit token back, and retries stop at the connector's ``deadline``
(60 s by default) with ``AmazonUnreachable`` naming the URL and the operation.

Buyer PII (names, addresses, phone, e-mail) is only returned for a Restricted Data Token
(Tokens API 2021-03-01); ``get_order_address``/``get_order_buyer_info``/``get_orders(pii=True)``
obtain one for the path they call and reuse it until shortly before it expires.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from sp_api.api import OrdersV0, ProductTypeDefinitions, Reports, Tokens
from sp_api.api.listings_items.listings_items_2021_08_01 import ListingsItemsV20210801
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse
from sp_api.base.exceptions import SellingApiException

from connectors.amazon.config import AmazonAccount, AmazonConfigError
from connectors.amazon.definitions import ProductTypeSchema, SchemaCache, parse_schema, schema_link
from connectors.amazon.documents import (
    DocumentLimits,
    DocumentRefused,
    DownloadedDocument,
    UndecodableDocument,
    check_document_url,
    decode_document,
)
from connectors.amazon.errors import (
    AmazonAuthError,
    AmazonDocumentError,
    AmazonError,
    AmazonRequestError,
    AmazonUnavailable,
    AmazonUnreachable,
)
from connectors.amazon.orders import (
    OrdersQuery,
    OrdersSource,
    iso_utc,
    orders_library_client,
    orders_source,
    statuses_tuple,
)
from connectors.amazon.ratelimit import RateLimiter
from connectors.amazon.records import (
    ListingIssue,
    ListingSubmission,
    PackageDetail,
    ReportInfo,
)
from connectors.amazon.wiring import (
    AccountMarketplace,
    ResponseRecorder,
    TokenCache,
    build_client,
    build_http_client,
    library_credentials,
    tls_context,
    token_client_class,
)
from connectors.retry import Backoff, call_with_retries

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SETTLEMENT_REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
LISTING_DATA_SETS = "summaries,attributes,issues,offers,fulfillmentAvailability"
SEARCH_SKUS = 20  # searchListingsItems: at most 20 identifiers, at most 20 items a page
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_DEADLINE_S = 60.0  # an unreachable Amazon fails within this (issue: it took ~8 minutes)
_CONNECT_TIMEOUT_S = 10.0
_RDT_EXPIRY_MARGIN_S = 60.0
PII_ELEMENTS = ("buyerInfo", "shippingAddress")


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, network); becomes AmazonUnavailable when retries run out.
    ``unreachable`` is the URL (scheme and host, never the query) when no connection was made."""

    def __init__(self, status: int | None, code: str | None, message: str, unreachable: str | None = None) -> None:
        prefix = " ".join(str(part) for part in (status, code) if part is not None)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.status = status
        self.code = code
        self.message = message
        self.unreachable = unreachable


_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


def _connect_failure(exc: httpx.TransportError) -> _Transient:
    """A request that never reached the server: name where it went (scheme://host:port only)."""
    try:
        url = exc.request.url
        where = f"{url.scheme}://{url.netloc.decode('ascii')}"
    except RuntimeError:  # httpx raises when the exception carries no request
        where = "(unknown host)"
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return _Transient(None, None, f"{type(exc).__name__}: {reason}", unreachable=where)


class _WithRestrictedToken:
    """A library client whose every call carries ``token`` (an RDT) instead of the access token."""

    def __init__(self, client: Any, token: str, lock: threading.Lock) -> None:
        self._client, self._token, self._lock = client, token, lock

    def __getattr__(self, name: str) -> Callable[..., ApiResponse]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> ApiResponse:
            with self._lock:  # the token is an attribute of the shared client: one caller at a time
                self._client.restricted_data_token = self._token
                try:
                    return method(*args, **kwargs)
                finally:
                    self._client.restricted_data_token = None

        return call


def _json_ready(value: Any) -> Any:
    """Decimals -> JSON numbers: the library json.dumps the body and cannot serialise Decimal.
    A money Decimal with few digits survives float's shortest repr unchanged ("19.99")."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent  # "n", "N", "F" for NaN and infinity
        return (
            int(value)
            if isinstance(exponent, int) and exponent >= 0 and value == value.to_integral_value()
            else float(value)
        )
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class AmazonConnector:
    """SP-API operations for one ``AmazonAccount``.

    ``time_scale`` speeds up the local rate limiter (for sandboxes that scale their quotas the
    same way); pass one shared ``rate_limiter`` when several connectors use the same seller.
    ``deadline``: seconds one operation may spend retrying before it fails. ``document_limits``
    bound report downloads and their decompression.
    """

    def __init__(
        self,
        account: AmazonAccount,
        *,
        time_scale: float = 1.0,
        backoff: Backoff = Backoff(attempts=5, base=0.5, cap=30.0),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rate_limiter: RateLimiter | None = None,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE_S,
        document_limits: DocumentLimits = DocumentLimits(),
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be positive seconds, got {deadline}")
        self.account = account
        self.deadline = deadline
        self.document_limits = document_limits
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._limiter = rate_limiter or RateLimiter(time_scale=time_scale, clock=clock, sleep=sleep)
        self._recorder = ResponseRecorder()
        timeouts = httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT_S))
        self._http = build_http_client(self._recorder, timeouts)
        # Presigned S3 URLs: no SP-API headers. Streamed, so a document's size is checked as it comes.
        self._download_http = httpx.Client(timeout=timeouts, verify=tls_context())
        self._rdt_lock = threading.Lock()
        self._rdt_cache: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}
        self.token_cache = TokenCache()
        marketplace = AccountMarketplace(account.endpoint, account.marketplace_ids[0], account.aws_region)
        token_class = token_client_class(account.token_url, self.token_cache)
        credentials = library_credentials(account)

        def make(cls: Any) -> Any:
            try:
                return build_client(
                    cls, marketplace, credentials=credentials, token_class=token_class, http_client=self._http
                )
            except KeyError as exc:  # the library looked up an unknown SP_API_DEFAULT_MARKETPLACE
                raise AmazonConfigError(
                    "SP_API_DEFAULT_MARKETPLACE", f"environment names unknown marketplace {exc}"
                ) from None

        self._reports = make(Reports)
        self._orders_v0 = make(OrdersV0)
        self._listings = make(ListingsItemsV20210801)
        self._tokens = make(Tokens)
        self._definitions = make(ProductTypeDefinitions)
        self.schemas = SchemaCache()
        self._orders_rdt = make(OrdersV0)  # carries a restricted data token, one call at a time
        self._orders_rdt_lock = threading.Lock()
        # Orders are read through the configured version; confirmShipment stays on v0.
        version = account.orders_api_version
        self._orders_search = make(orders_library_client(version))
        self._orders_search_rdt = make(orders_library_client(version))  # one call at a time, as _orders_rdt
        self._orders_search_rdt_lock = threading.Lock()
        self._lib_clients = (
            self._reports,
            self._orders_v0,
            self._listings,
            self._tokens,
            self._definitions,
            self._orders_rdt,
            self._orders_search,
            self._orders_search_rdt,
        )
        self.orders_source: OrdersSource = orders_source(version, self._orders_search, self._call)

    def __repr__(self) -> str:
        return f"AmazonConnector({self.account!r})"

    def close(self) -> None:
        for client in self._lib_clients:
            client._auth._transport.close()  # the library's token client owns one httpx client each
        self._http.close()
        self._download_http.close()

    def __enter__(self) -> AmazonConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the one way every SP-API call is made ---------------------------------------------
    def _call(self, operation: str, thunk: Callable[[], ApiResponse]) -> ApiResponse:
        attempts = 0

        def once() -> ApiResponse:
            nonlocal attempts
            attempts += 1
            try:
                return self._attempt(operation, thunk)
            except AmazonRequestError as exc:
                if exc.status != 403:
                    raise
                # Amazon answers 403 Unauthorized to a revoked or expired access token: fetch a
                # fresh one once; a second 403 is a real permission problem.
                self.token_cache.clear()
                with self._rdt_lock:
                    self._rdt_cache.clear()
                return self._attempt(operation, thunk)

        return self._retrying(operation, once, lambda: attempts)

    def _retrying(self, operation: str, once: Callable[[], _T], attempts: Callable[[], int]) -> _T:
        """Retry ``once`` on transient failures with backoff, within ``deadline`` seconds."""
        started = self._clock()
        give_up_at = started + self.deadline

        def log_retry(attempt: int, exc: BaseException, wait: float) -> None:
            log.warning("Amazon %s attempt %d failed (%s); retrying in %.2fs", operation, attempt, exc, wait)

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, _Transient) and self._clock() < give_up_at

        def sleep(wait: float) -> None:  # never sleep past the deadline
            self._sleep(max(0.0, min(wait, give_up_at - self._clock())))

        try:
            return call_with_retries(once, retryable=retryable, backoff=self._backoff, sleep=sleep, on_retry=log_retry)
        except _Transient as exc:
            if exc.unreachable is not None:
                raise AmazonUnreachable(
                    operation,
                    url=exc.unreachable,
                    attempts=attempts(),
                    seconds=self._clock() - started,
                    reason=exc.message,
                ) from None
            raise AmazonUnavailable(
                operation, attempts=attempts(), status=exc.status, code=exc.code, message=exc.message
            ) from None

    def _attempt(self, operation: str, thunk: Callable[[], ApiResponse]) -> ApiResponse:
        """One rate-limited request; the real HTTP status decides, not the library's verdict."""
        self._limiter.acquire(operation)
        self._recorder.reset()
        try:
            response = thunk()
        except SellingApiException as exc:
            seen = self._recorder.last
            status = seen.status if seen is not None else exc.code
            raise self._failure(
                operation, status, getattr(exc, "amzn_code", None), getattr(exc, "message", None) or ""
            ) from None
        except AuthorizationError as exc:
            if exc.status_code in _RETRYABLE_STATUS:
                raise _Transient(exc.status_code, exc.error_code, "LWA token endpoint") from None
            raise AmazonAuthError(
                operation, status=exc.status_code, error=exc.error_code, message=exc.message
            ) from None
        except json.JSONDecodeError:  # only the token endpoint path lets this through
            raise _Transient(None, None, "LWA token endpoint answered non-JSON") from None
        except _CONNECT_FAILURES as exc:
            self._limiter.refund(operation)  # nothing reached Amazon: its quota is untouched
            raise _connect_failure(exc) from None
        except httpx.TransportError as exc:
            raise _Transient(None, None, f"network error {type(exc).__name__}") from None
        seen = self._recorder.last
        if seen is not None:
            self._limiter.update_rate(operation, seen.headers.get("x-amzn-RateLimit-Limit"))
            if seen.status >= 400:  # the library returned an "empty success" for a bodiless error
                raise self._failure(operation, seen.status, None, "error status without an errors body")
        return response

    def _failure(self, operation: str, status: int, code: str | None, message: str) -> Exception:
        if status == 429:
            self._limiter.drain(operation)  # Amazon's bucket is empty: wait a full refill
        if status in _RETRYABLE_STATUS:
            return _Transient(status, code, message)
        return AmazonRequestError(operation, status=status, code=code, message=message)

    # ---- reports ----------------------------------------------------------------------------
    def list_settlement_reports(
        self, created_since: datetime, created_until: datetime | None = None, *, page_size: int = 100
    ) -> list[ReportInfo]:
        """DONE settlement V2 reports created in the window: every one of the seller in this region.

        Amazon ignores ``marketplaceIds`` for settlement reports (they are scheduled per account,
        not requested per marketplace), so callers tell the marketplace from the settlement's rows."""
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be 1..100 (Amazon's limit), got {page_size}")
        params: dict[str, Any] = {
            "reportTypes": [SETTLEMENT_REPORT_TYPE],
            "processingStatuses": ["DONE"],
            "marketplaceIds": list(self.account.marketplace_ids),
            "pageSize": page_size,
            "createdSince": iso_utc(created_since, "created_since"),
        }
        if created_until is not None:
            params["createdUntil"] = iso_utc(created_until, "created_until")
        reports: list[ReportInfo] = []
        next_token: str | None = None
        while True:
            # "nextToken ... as the only parameter" (Reports 2021-06-30).
            query = {"nextToken": next_token} if next_token else dict(params)
            response = self._call("getReports", functools.partial(self._reports.get_reports, **query))
            payload = response.payload or {}
            reports.extend(self._report_info(r) for r in payload.get("reports") or [])
            next_token = response.next_token
            if not next_token:
                return reports

    @staticmethod
    def _report_info(report: dict[str, Any]) -> ReportInfo:
        return ReportInfo(
            report_id=str(report["reportId"]),
            report_type=report["reportType"],
            processing_status=report["processingStatus"],
            created_time=_parse_time(report["createdTime"]),  # type: ignore[arg-type]  # always set in getReports
            report_document_id=report.get("reportDocumentId"),
            data_start_time=_parse_time(report.get("dataStartTime")),
            data_end_time=_parse_time(report.get("dataEndTime")),
            marketplace_ids=tuple(report.get("marketplaceIds") or ()),
        )

    def download_report_document(self, document_id: str) -> DownloadedDocument:
        """getReportDocument, then fetch its presigned URL and decode (gzip sniffed, charset explicit).

        The URL must be https on Amazon's document hosts (the sandbox's own host when the
        endpoint is the local sandbox); download and decompressed sizes are bounded by
        ``document_limits``."""
        response = self._call(
            "getReportDocument", lambda: self._reports.get_report_document(document_id, download=False)
        )
        url = (response.payload or {}).get("url")
        if not url:
            raise AmazonDocumentError(document_id, "getReportDocument returned no url")
        try:
            check_document_url(str(url), self.account.endpoint)
        except DocumentRefused as exc:
            raise AmazonDocumentError(document_id, str(exc)) from None
        announced = (response.payload or {}).get("compressionAlgorithm")
        raw, content_type = self._fetch_document(document_id, str(url))
        try:
            document = decode_document(document_id, raw, content_type, self.document_limits)
        except (UndecodableDocument, DocumentRefused) as exc:
            raise AmazonDocumentError(document_id, str(exc)) from None
        if announced and not document.compressed:
            log.info("document %s announced %s but was not compressed", document_id, announced)
        return document

    def _fetch_document(self, document_id: str, url: str) -> tuple[bytes, str | None]:
        limit = self.document_limits.max_download_bytes
        attempts = 0

        def once() -> tuple[bytes, str | None]:
            nonlocal attempts
            attempts += 1
            try:
                with self._download_http.stream("GET", url) as answer:
                    if answer.status_code in _RETRYABLE_STATUS:
                        raise _Transient(answer.status_code, None, "document download")
                    if answer.status_code != 200:
                        # The URL is presigned: never echo it (it is a bearer credential for 5 minutes).
                        raise AmazonDocumentError(document_id, f"download answered HTTP {answer.status_code}")
                    declared = answer.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limit:
                        raise AmazonDocumentError(
                            document_id,
                            f"document is {declared} bytes, more than the "
                            f"configured max_download_bytes {limit}; refused",
                        )
                    body = bytearray()
                    for chunk in answer.iter_raw():
                        body += chunk
                        if len(body) > limit:
                            raise AmazonDocumentError(
                                document_id, f"document is more than the configured max_download_bytes {limit}; refused"
                            )
                    return bytes(body), answer.headers.get("content-type")
            except _CONNECT_FAILURES as exc:
                raise _connect_failure(exc) from None
            except httpx.TransportError as exc:
                raise _Transient(None, None, f"network error {type(exc).__name__}") from None

        return self._retrying("getReportDocument", once, lambda: attempts)

    # ---- orders -----------------------------------------------------------------------------
    def get_orders(
        self,
        last_updated_after: datetime,
        *,
        last_updated_before: datetime | None = None,
        marketplace_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        page_size: int = 100,
        pii: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Orders updated in the window, page after page (lazy: stop iterating to stop fetching).
        ``pii``: with buyer name and whole shipping address (a restricted data token is obtained)."""
        for order, _ in self._order_pages(
            last_updated_after, last_updated_before, marketplace_ids, statuses, page_size, pii
        ):
            yield order

    def get_orders_with_items(
        self,
        last_updated_after: datetime,
        *,
        last_updated_before: datetime | None = None,
        marketplace_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        page_size: int = 100,
        pii: bool = False,
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """``get_orders`` with each order's items: from the search itself where the API embeds
        them (Orders 2026-01-01: no call per order), else one ``getOrderItems`` per order (v0)."""
        for order, items in self._order_pages(
            last_updated_after, last_updated_before, marketplace_ids, statuses, page_size, pii
        ):
            yield order, items if items is not None else self.get_order_items(str(order["AmazonOrderId"]))

    def _order_pages(
        self,
        last_updated_after: datetime,
        last_updated_before: datetime | None,
        marketplace_ids: Sequence[str] | None,
        statuses: Sequence[str] | None,
        page_size: int,
        pii: bool,
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]] | None]]:
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be 1..100 (Amazon's limit), got {page_size}")
        query = OrdersQuery(
            last_updated_after=last_updated_after,
            last_updated_before=last_updated_before,
            marketplace_ids=tuple(marketplace_ids or self.account.marketplace_ids),
            statuses=statuses_tuple(statuses),
            page_size=page_size,
        )
        iso_utc(last_updated_after, "last_updated_after")  # fail before the first request
        source = self.orders_source
        if pii:
            token = self._restricted_data_token(source.search_path, PII_ELEMENTS)
            client = _WithRestrictedToken(self._orders_search_rdt, token, self._orders_search_rdt_lock)
            source = orders_source(source.api_version, client, self._call)
        next_token: str | None = None
        while True:
            page = source.orders_page(query, next_token)
            embedded: list[list[dict[str, Any]] | None] = (
                list(page.order_items) if page.order_items is not None else [None] * len(page.items)
            )
            yield from zip(page.items, embedded, strict=True)
            next_token = page.next_token
            if not next_token:
                return

    def get_order_items(self, order_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_token: str | None = None
        while True:
            page = self.orders_source.order_items_page(order_id, next_token)
            items.extend(page.items)
            next_token = page.next_token
            if not next_token:
                return items

    def get_order(self, order_id: str) -> dict[str, Any]:
        """One order (e.g. to see whether it is already Shipped before confirming again)."""
        return self.orders_source.order(order_id)

    def get_order_address(self, order_id: str) -> dict[str, Any]:
        """getOrderAddress with a restricted data token: the whole ship-to address (name, street, phone)."""
        return self._restricted_order_call(
            "getOrderAddress", "/orders/v0/orders/{orderId}/address", lambda client: client.get_order_address(order_id)
        )

    def get_order_buyer_info(self, order_id: str) -> dict[str, Any]:
        """getOrderBuyerInfo with a restricted data token: buyer name and e-mail."""
        return self._restricted_order_call(
            "getOrderBuyerInfo",
            "/orders/v0/orders/{orderId}/buyerInfo",
            lambda client: client.get_order_buyer_info(order_id),
        )

    def _restricted_order_call(
        self, operation: str, path: str, request: Callable[[Any], ApiResponse]
    ) -> dict[str, Any]:
        # One RDT for the generic path ({orderId}) serves every order until it expires.
        token = self._restricted_data_token(path, ())
        client = _WithRestrictedToken(self._orders_rdt, token, self._orders_rdt_lock)
        return dict(self._call(operation, lambda: request(client)).payload or {})

    def _restricted_data_token(self, path: str, data_elements: Sequence[str]) -> str:
        """createRestrictedDataToken for GET ``path``, reused until a minute before it expires."""
        key = (path, tuple(data_elements))
        with self._rdt_lock:
            cached = self._rdt_cache.get(key)
            if cached is not None and cached[1] > self._clock():
                return cached[0]
        resource: dict[str, Any] = {"method": "GET", "path": path}
        if data_elements:
            resource["dataElements"] = list(data_elements)
        response = self._call(
            "createRestrictedDataToken",
            lambda: self._tokens.create_restricted_data_token(restrictedResources=[resource]),
        )
        payload = response.payload or {}
        token = payload.get("restrictedDataToken")
        if not token:
            raise AmazonError("createRestrictedDataToken", "answer without a restrictedDataToken")
        lifetime = float(payload.get("expiresIn") or 3600)
        with self._rdt_lock:
            self._rdt_cache[key] = (str(token), self._clock() + max(0.0, lifetime - _RDT_EXPIRY_MARGIN_S))
        return str(token)

    def confirm_shipment(self, order_id: str, marketplace_id: str, package: PackageDetail) -> None:
        """Orders v0 confirmShipment (not deprecated). Retried on 429/5xx: same package, same result."""
        body = package.to_api()
        self._call(
            "confirmShipment",
            lambda: self._orders_v0.confirm_shipment(order_id, marketplaceId=marketplace_id, packageDetail=body),
        )

    # ---- listings ---------------------------------------------------------------------------
    def patch_listing(
        self, sku: str, marketplace_id: str, product_type: str, patches: Sequence[dict[str, Any]]
    ) -> ListingSubmission:
        """patchListingsItem; an INVALID answer comes back as a submission with issues, not an error."""
        if not patches:
            raise ValueError(f"patch_listing {sku}: no patches given")
        body = {"productType": product_type, "patches": _json_ready(list(patches))}
        response = self._call(
            "patchListingsItem",
            lambda: self._listings.patch_listings_item(
                self.account.seller_id, sku, marketplaceIds=[marketplace_id], includedData="issues", body=body
            ),
        )
        payload = response.payload or {}
        issues = tuple(
            ListingIssue(
                code=str(i.get("code", "")),
                message=str(i.get("message", "")),
                severity=str(i.get("severity", "")),
                attribute_names=tuple(i.get("attributeNames") or ()),
            )
            for i in payload.get("issues") or []
        )
        if "status" not in payload:
            raise AmazonError("patchListingsItem", f"sku {sku}: answer without a status")
        return ListingSubmission(
            sku=str(payload.get("sku", sku)),
            status=str(payload["status"]),
            submission_id=str(payload.get("submissionId", "")),
            issues=issues,
        )

    def get_listing(self, sku: str, marketplace_id: str, included_data: str = LISTING_DATA_SETS) -> dict[str, Any]:
        response = self._call(
            "getListingsItem",
            lambda: self._listings.get_listings_item(
                self.account.seller_id, sku, marketplaceIds=[marketplace_id], includedData=included_data
            ),
        )
        return dict(response.payload or {})

    def search_listings(
        self, skus: Sequence[str], marketplace_id: str, included_data: str = LISTING_DATA_SETS
    ) -> dict[str, dict[str, Any]]:
        """searchListingsItems by SKU in one marketplace: SKU -> its Item, as getListingsItem
        answers it (a SKU not listed there is absent). At most ``SEARCH_SKUS`` (20) SKUs: one
        call at Amazon's largest page."""
        wanted = list(dict.fromkeys(skus))
        if not wanted or len(wanted) > SEARCH_SKUS:
            raise ValueError(f"search_listings: 1 to {SEARCH_SKUS} SKUs, got {len(wanted)}")
        found: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            response = self._search_page(wanted, marketplace_id, included_data, token)
            for item in (response.payload or {}).get("items") or []:
                if item.get("sku") in wanted:
                    found[str(item["sku"])] = dict(item)
            token = response.next_token  # the client takes ``pagination`` out of the payload
            if not token:
                return found

    def _search_page(self, skus: list[str], marketplace_id: str, included_data: str, token: str | None) -> ApiResponse:
        paging = {"pageToken": token} if token else {}
        return self._call(
            "searchListingsItems",
            lambda: self._listings.search_listings_items(
                self.account.seller_id,
                marketplaceIds=[marketplace_id],
                identifiers=",".join(skus),
                identifiersType="SKU",
                includedData=included_data,
                pageSize=SEARCH_SKUS,
                **paging,
            ),
        )

    # ---- product type definitions -------------------------------------------------------------
    def product_type_schema(self, product_type: str, marketplace_id: str) -> ProductTypeSchema:
        """The JSON Schema of ``product_type`` in ``marketplace_id`` for partial updates
        (getDefinitionsProductType, requirements not enforced), read once and kept."""
        return self.schemas.get(product_type, marketplace_id, lambda: self._read_schema(product_type, marketplace_id))

    def _read_schema(self, product_type: str, marketplace_id: str) -> ProductTypeSchema:
        response = self._call(
            "getDefinitionsProductType",
            lambda: self._definitions.get_definitions_product_type(
                product_type,
                marketplaceIds=[marketplace_id],
                requirements="LISTING",
                requirementsEnforced="NOT_ENFORCED",
                locale="DEFAULT",
            ),
        )
        definition = dict(response.payload or {})
        url, checksum = schema_link(definition, product_type)
        what = f"schema of product type {product_type} in {marketplace_id}"
        try:
            check_document_url(url, self.account.endpoint)
        except DocumentRefused as exc:
            raise AmazonError("getDefinitionsProductType", f"{what}: {exc}") from None
        raw, _ = self._fetch_document(what, url)
        version = str((definition.get("productTypeVersion") or {}).get("version") or "")
        return ProductTypeSchema(product_type, marketplace_id, version, checksum, parse_schema(raw, checksum, what))
