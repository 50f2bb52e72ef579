"""Orders: the seam between the connector and a versioned Orders API.

Orders v0 (``getOrders``/``getOrderItems``) is deprecated in Amazon's models and due for
removal on 2027-03-27; its successor is Orders 2026-01-01 (``searchOrders``). The connector
talks to an ``OrdersSource`` chosen by ``AmazonAccount.orders_api_version`` so the switch is a
configuration change plus one new class, not a rewrite. ``confirmShipment`` stays on v0
(it is not deprecated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sp_api.base import ApiResponse

from connectors.amazon.errors import AmazonError

# call(operation, thunk): rate-limits, retries and maps errors around one library call.
Caller = Callable[[str, Callable[[], ApiResponse]], ApiResponse]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


@dataclass(frozen=True)
class OrdersQuery:
    last_updated_after: datetime
    last_updated_before: datetime | None
    marketplace_ids: tuple[str, ...]
    statuses: tuple[str, ...] | None
    page_size: int = 100


def iso_utc(moment: datetime, what: str) -> str:
    """``2024-10-09T14:28:38Z``; naive datetimes are refused (their zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OrdersSource(Protocol):
    api_version: str

    def orders_page(self, query: OrdersQuery, next_token: str | None) -> Page: ...

    def order_items_page(self, order_id: str, next_token: str | None) -> Page: ...

    def order(self, order_id: str) -> dict[str, Any]: ...


class OrdersV0Source:
    """Orders API v0 through python-amazon-sp-api's ``OrdersV0``."""

    api_version = "v0"

    def __init__(self, client: Any, call: Caller) -> None:
        self._client = client
        self._call = call

    def orders_page(self, query: OrdersQuery, next_token: str | None) -> Page:
        params: dict[str, Any] = {"MarketplaceIds": list(query.marketplace_ids), "MaxResultsPerPage": query.page_size}
        if next_token:
            params["NextToken"] = next_token  # filters stay: NextToken only moves the page
        params["LastUpdatedAfter"] = iso_utc(query.last_updated_after, "last_updated_after")
        if query.last_updated_before is not None:
            params["LastUpdatedBefore"] = iso_utc(query.last_updated_before, "last_updated_before")
        if query.statuses:
            params["OrderStatuses"] = list(query.statuses)
        response = self._call("getOrders", lambda: self._client.get_orders(**params))
        payload = response.payload or {}
        return Page(list(payload.get("Orders") or []), payload.get("NextToken") or None)

    def order_items_page(self, order_id: str, next_token: str | None) -> Page:
        params = {"NextToken": next_token} if next_token else {}
        response = self._call("getOrderItems", lambda: self._client.get_order_items(order_id, **params))
        payload = response.payload or {}
        return Page(list(payload.get("OrderItems") or []), payload.get("NextToken") or None)

    def order(self, order_id: str) -> dict[str, Any]:
        response = self._call("getOrder", lambda: self._client.get_order(order_id))
        return dict(response.payload or {})


class OrdersApiNotImplemented(AmazonError):
    """The configured Orders API version has no implementation yet."""


class Orders20260101Source:
    """Orders API 2026-01-01 (``searchOrders``, rate 0.0056/20): not implemented yet.

    To implement: ``OrdersV20260101`` from the library, map ``searchOrders`` results to the
    v0 ``Order``/``OrderItem`` dict shape the sync code reads (or move the sync mapping to a
    neutral record), and keep paging by ``nextToken``.
    """

    api_version = "2026-01-01"

    def __init__(self, client: Any = None, call: Caller | None = None) -> None:
        self._client = client
        self._call = call

    def _refuse(self, operation: str) -> AmazonError:
        return OrdersApiNotImplemented(
            operation, "Orders API 2026-01-01 is not implemented yet; set orders_api_version='v0'"
        )

    def orders_page(self, query: OrdersQuery, next_token: str | None) -> Page:
        raise self._refuse("searchOrders")

    def order_items_page(self, order_id: str, next_token: str | None) -> Page:
        raise self._refuse("getOrder")

    def order(self, order_id: str) -> dict[str, Any]:
        raise self._refuse("getOrder")


def statuses_tuple(statuses: Sequence[str] | None) -> tuple[str, ...] | None:
    if statuses is None:
        return None
    if isinstance(statuses, str):
        return (statuses,)
    return tuple(statuses)
