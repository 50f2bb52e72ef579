"""Orders: the seam between the connector and a versioned Orders API.

Orders v0 (``getOrders``/``getOrderItems``) is deprecated in Amazon's models and due for
removal on 2027-03-27; its successor is Orders 2026-01-01 (``searchOrders``). The connector
talks to an ``OrdersSource`` chosen by ``AmazonAccount.orders_api_version`` (``[amazon]
orders_api``; default 2026-01-01, "v0" keeps the old API). Both sources yield the same v0-shaped
records, so callers do not care which runs. ``confirmShipment`` stays on v0 (it is not
deprecated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sp_api.api import Orders
from sp_api.base import ApiResponse

# call(operation, thunk): rate-limits, retries and maps errors around one library call.
Caller = Callable[[str, Callable[[], ApiResponse]], ApiResponse]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None
    # Per order of ``items``, its order items when the search embeds them (Orders 2026-01-01);
    # None when they must be read one order at a time (v0 ``getOrderItems``).
    order_items: list[list[dict[str, Any]]] | None = None


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
    search_path: str  # the search operation's path (a restricted data token names it)

    def orders_page(self, query: OrdersQuery, next_token: str | None) -> Page: ...

    def order_items_page(self, order_id: str, next_token: str | None) -> Page: ...

    def order(self, order_id: str) -> dict[str, Any]: ...


class OrdersV0Source:
    """Orders API v0 through python-amazon-sp-api's ``OrdersV0``."""

    api_version = "v0"
    search_path = "/orders/v0/orders"

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


# 2026-01-01 FulfillmentStatus <-> v0 OrderStatus (the records keep v0's names).
ORDER_STATUS_V0 = {
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
    "PENDING_AVAILABILITY": "PendingAvailability",
}
FULFILLMENT_STATUS_2026 = {v0: status for status, v0 in ORDER_STATUS_V0.items()}
FULFILLMENT_CHANNEL_V0 = {"AMAZON": "AFN", "MERCHANT": "MFN"}
# The datasets the records are built from (the rest of an order is not asked for).
INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "PROMOTION", "FULFILLMENT")
# 2026 CustomerAddress -> v0 Address
ADDRESS_V0 = {
    "name": "Name",
    "companyName": "CompanyName",
    "addressLine1": "AddressLine1",
    "addressLine2": "AddressLine2",
    "addressLine3": "AddressLine3",
    "city": "City",
    "districtOrCounty": "County",
    "stateOrRegion": "StateOrRegion",
    "municipality": "Municipality",
    "postalCode": "PostalCode",
    "countryCode": "CountryCode",
    "phone": "Phone",
}
# 2026 ItemProceedsBreakdown type -> v0 OrderItem money field
ITEM_MONEY_V0 = {"ITEM": "ItemPrice", "SHIPPING": "ShippingPrice", "TAX": "ItemTax", "DISCOUNT": "PromotionDiscount"}
# The DISCOUNT breakdown's subtotal is the item's and the shipping's promotions together; its
# detailedBreakdowns tell them apart (subtype -> v0 OrderItem field). Without them it is the item's.
DISCOUNT_SUBTYPES_V0 = {"ITEM": "PromotionDiscount", "SHIPPING": "ShippingDiscount"}


def _money_v0(money: dict[str, Any]) -> dict[str, str]:
    return {"CurrencyCode": money["currencyCode"], "Amount": money["amount"]}


def order_record(order: dict[str, Any]) -> dict[str, Any]:
    """A 2026-01-01 ``Order`` as the v0 ``Order`` record the v0 source yields (its v0 field names).

    Only fields with a 2026 counterpart are filled; ``NumberOfItems*`` are summed from the
    embedded items' fulfillment quantities.
    """
    channel = order.get("salesChannel") or {}
    record: dict[str, Any] = {
        "AmazonOrderId": order["orderId"],
        "PurchaseDate": order["createdTime"],
        "LastUpdateDate": order["lastUpdatedTime"],
        "MarketplaceId": channel.get("marketplaceId"),
    }
    if channel.get("marketplaceName"):
        record["SalesChannel"] = channel["marketplaceName"]
    fulfillment = order.get("fulfillment")
    if fulfillment:
        record["OrderStatus"] = ORDER_STATUS_V0[fulfillment["fulfillmentStatus"]]
        if fulfillment.get("fulfilledBy") in FULFILLMENT_CHANNEL_V0:
            record["FulfillmentChannel"] = FULFILLMENT_CHANNEL_V0[fulfillment["fulfilledBy"]]
    grand_total = (order.get("proceeds") or {}).get("grandTotal")
    if grand_total:
        record["OrderTotal"] = _money_v0(grand_total)
    quantities = [item["fulfillment"] for item in order.get("orderItems") or [] if item.get("fulfillment")]
    if quantities:
        record["NumberOfItemsShipped"] = sum(int(q.get("quantityFulfilled") or 0) for q in quantities)
        record["NumberOfItemsUnshipped"] = sum(int(q.get("quantityUnfulfilled") or 0) for q in quantities)
    programs = order.get("programs") or []
    record["IsBusinessOrder"] = "AMAZON_BUSINESS" in programs
    record["IsPrime"] = "PRIME" in programs
    address = (order.get("recipient") or {}).get("deliveryAddress")
    if address is not None:
        record["ShippingAddress"] = {ADDRESS_V0[k]: v for k, v in address.items() if k in ADDRESS_V0}
    buyer = order.get("buyer")
    if buyer is not None:
        names = (("buyerEmail", "BuyerEmail"), ("buyerName", "BuyerName"))
        record["BuyerInfo"] = {old: buyer[new] for new, old in names if new in buyer}
    return record


def item_record(item: dict[str, Any]) -> dict[str, Any]:
    """A 2026-01-01 ``OrderItem`` as the v0 ``OrderItem`` record (its v0 field names)."""
    product = item.get("product") or {}
    record: dict[str, Any] = {"OrderItemId": item["orderItemId"], "QuantityOrdered": int(item["quantityOrdered"])}
    for new, old in (("asin", "ASIN"), ("sellerSku", "SellerSKU"), ("title", "Title")):
        if new in product:
            record[old] = product[new]
    fulfillment = item.get("fulfillment")
    if fulfillment:
        record["QuantityShipped"] = int(fulfillment.get("quantityFulfilled") or 0)
    for breakdown in (item.get("proceeds") or {}).get("breakdowns") or []:
        details = breakdown.get("detailedBreakdowns") or []
        if breakdown["type"] == "DISCOUNT" and details:
            for detail in details:
                if detail.get("subtype") in DISCOUNT_SUBTYPES_V0:
                    record[DISCOUNT_SUBTYPES_V0[detail["subtype"]]] = _money_v0(detail["value"])
        elif breakdown["type"] in ITEM_MONEY_V0:
            record[ITEM_MONEY_V0[breakdown["type"]]] = _money_v0(breakdown["subtotal"])
    promotion = item.get("promotion")
    if promotion is not None:
        record["PromotionIds"] = [p["promotionId"] for p in promotion.get("breakdowns") or [] if "promotionId" in p]
    return record


class Orders20260101Source:
    """Orders API 2026-01-01 through python-amazon-sp-api's ``Orders(version="2026-01-01")``.

    ``searchOrders`` pages by ``paginationToken``; the items come embedded in each order, so
    ``order_items_page`` reads them from ``getOrder`` (one page, no token). Records are mapped
    to the v0 shape (``order_record``/``item_record``) so callers do not care which API runs.
    """

    api_version = "2026-01-01"
    search_path = "/orders/2026-01-01/orders"

    def __init__(self, client: Any, call: Caller) -> None:
        self._client = client
        self._call = call

    def orders_page(self, query: OrdersQuery, next_token: str | None) -> Page:
        params: dict[str, Any] = {
            "marketplaceIds": list(query.marketplace_ids),
            "maxResultsPerPage": query.page_size,
            "includedData": list(INCLUDED_DATA),
            "lastUpdatedAfter": iso_utc(query.last_updated_after, "last_updated_after"),
        }
        if next_token:
            params["paginationToken"] = next_token
        if query.last_updated_before is not None:
            params["lastUpdatedBefore"] = iso_utc(query.last_updated_before, "last_updated_before")
        if query.statuses:
            unknown = [s for s in query.statuses if s not in FULFILLMENT_STATUS_2026]
            if unknown:  # e.g. InvoiceUnconfirmed: no 2026 FulfillmentStatus to ask for
                raise ValueError(f"order statuses {', '.join(unknown)} have no Orders API 2026-01-01 equivalent")
            params["fulfillmentStatuses"] = list(dict.fromkeys(FULFILLMENT_STATUS_2026[s] for s in query.statuses))
        response = self._call("searchOrders", lambda: self._client.search_orders(**params))
        orders = (response.payload or {}).get("orders") or []
        # The library lifts ``pagination`` out of the body into ``next_token``. The items come
        # with each order: no getOrder per order (0.5/s) is needed to read them.
        return Page(
            [order_record(order) for order in orders],
            response.next_token or None,
            [[item_record(item) for item in order.get("orderItems") or []] for order in orders],
        )

    def _get_order(self, order_id: str) -> dict[str, Any]:
        response = self._call("getOrder", lambda: self._client.get_order(order_id, includedData=list(INCLUDED_DATA)))
        return dict((response.payload or {}).get("order") or {})

    def order_items_page(self, order_id: str, next_token: str | None) -> Page:
        order = self._get_order(order_id)
        return Page([item_record(item) for item in order.get("orderItems") or []], None)

    def order(self, order_id: str) -> dict[str, Any]:
        return order_record(self._get_order(order_id))


def orders_library_client(version: str) -> Callable[..., Any]:
    """The python-amazon-sp-api client class for an Orders API version (``Orders(version=...)``)."""
    return partial(Orders, version=version)


def orders_source(version: str, client: Any, call: Caller) -> OrdersSource:
    """The source for ``AmazonAccount.orders_api_version`` over a client of ``orders_library_client``."""
    return OrdersV0Source(client, call) if version == "v0" else Orders20260101Source(client, call)


def statuses_tuple(statuses: Sequence[str] | None) -> tuple[str, ...] | None:
    if statuses is None:
        return None
    if isinstance(statuses, str):
        return (statuses,)
    return tuple(statuses)
