"""Orders API v0: getOrders, getOrder, getOrderItems, confirmShipment (payload-wrapped)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request

from reconciliation.marketplaces import MARKETPLACES

from .context import (
    Reply,
    Sandbox,
    date_param,
    decode_token,
    encode_token,
    int_param,
    json_body,
    marketplace_ids,
    values,
)
from .errors import invalid_input, not_found
from .store import OrderQuery
from .timeutil import parse_iso, sortable
from .tokens import granted_elements, visible_buyer_info, visible_item, visible_order

ORDER_STATUSES = frozenset(
    {
        "Pending",
        "Unshipped",
        "PartiallyShipped",
        "Shipped",
        "Canceled",
        "Unfulfillable",
        "InvoiceUnconfirmed",
        "PendingAvailability",
    }
)
FULFILLMENT_CHANNELS = frozenset({"AFN", "MFN"})
SHIPPABLE = frozenset({"Unshipped", "PartiallyShipped"})
# Pending orders carry no pricing until they leave Pending (ordersV0 getOrderItems notes).
_PRICE_FIELDS = (
    "ItemPrice",
    "ItemTax",
    "ShippingPrice",
    "ShippingTax",
    "ShippingDiscount",
    "ShippingDiscountTax",
    "PromotionDiscount",
    "PromotionDiscountTax",
    "PromotionIds",
    "CODFee",
    "CODFeeDiscount",
)
_MIN_AGE = timedelta(minutes=2)  # *Before must be at least two minutes in the past


@dataclass(frozen=True)
class FilterNames:
    """One Orders version's names for the order-search filters and their values.

    ``statuses``/``channels`` map each value the version accepts to the stored (v0) values it selects.
    """

    marketplaces_required: bool
    created_after: str
    created_before: str
    updated_after: str
    updated_before: str
    status_param: str
    statuses: Mapping[str, tuple[str, ...]]
    channel_param: str
    channels: Mapping[str, tuple[str, ...]]
    order_ids_param: str | None
    page_size_param: str


V0_FILTERS = FilterNames(
    marketplaces_required=True,
    created_after="CreatedAfter",
    created_before="CreatedBefore",
    updated_after="LastUpdatedAfter",
    updated_before="LastUpdatedBefore",
    status_param="OrderStatuses",
    statuses={s: (s,) for s in ORDER_STATUSES},
    channel_param="FulfillmentChannels",
    channels={c: (c,) for c in FULFILLMENT_CHANNELS},
    order_ids_param="AmazonOrderIds",
    page_size_param="MaxResultsPerPage",
)


def query_token(kind: str, query: OrderQuery, offset: int, page_size: int) -> str:
    """The next page's token; it carries the filters ("NextToken doesn't affect any filters")."""
    return encode_token(
        {
            "kind": kind,
            "m": list(query.marketplace_ids),
            "c": query.date_column,
            "a": query.after,
            "b": query.before,
            "s": list(query.statuses),
            "f": list(query.channels),
            "i": list(query.order_ids),
            "o": offset,
            "p": page_size,
        }
    )


def query_from_token(token: str, kind: str) -> tuple[OrderQuery, int, int]:
    """(query, offset, page size) from a token of ``query_token``."""
    state = decode_token(token, kind)
    query = OrderQuery(
        tuple(state["m"]), state["c"], state["a"], state["b"], tuple(state["s"]), tuple(state["f"]), tuple(state["i"])
    )
    return query, state["o"], state["p"]


async def get_orders(request: Request, sb: Sandbox) -> Reply:
    token = request.query_params.get("NextToken")
    if token:
        query, offset, page_size = query_from_token(token, "orders")
    else:
        query, page_size = order_query(request, sb, V0_FILTERS)
        offset = 0
    page = sb.store.query_orders(query, offset, page_size + 1)
    elements = granted_elements(request, sb)
    payload: dict = {"Orders": [visible_order(o, elements) for o in page[:page_size]]}
    if len(page) > page_size:
        payload["NextToken"] = query_token("orders", query, offset + page_size, page_size)
    payload["CreatedBefore" if query.date_column == "purchase_date" else "LastUpdatedBefore"] = query.before
    return Reply(200, {"payload": payload})


def _allowed(request: Request, param: str, allowed: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The stored values selected by the filter ``param`` (an unknown value is refused)."""
    given = values(request, param)
    bad = [v for v in given if v not in allowed]
    if bad:
        raise invalid_input(f"Invalid {param}: {', '.join(bad)}.", f"Allowed: {', '.join(sorted(allowed))}")
    return tuple(dict.fromkeys(stored for v in given for stored in allowed[v]))


def order_query(request: Request, sb: Sandbox, names: FilterNames) -> tuple[OrderQuery, int]:
    """The validated filters of getOrders (v0) or searchOrders (2026-01-01), and the page size."""
    markets = marketplace_ids(request)
    if not markets and names.marketplaces_required:
        raise invalid_input("Missing required parameter MarketplaceIds.")
    if len(markets) > 50:
        raise invalid_input("MarketplaceIds accepts at most 50 values.")
    sb.check_served(markets)
    # searchOrders without marketplaceIds: every marketplace this host serves.
    markets = markets or list(sb.served_marketplaces() or (m.marketplace_id for m in MARKETPLACES))
    created_after, created_before = date_param(request, names.created_after), date_param(request, names.created_before)
    updated_after = date_param(request, names.updated_after)
    updated_before = date_param(request, names.updated_before)
    if created_after is None and updated_after is None:
        raise invalid_input(f"Either {names.created_after} or {names.updated_after} must be specified.")
    if created_after is not None and (updated_after is not None or updated_before is not None):
        raise invalid_input(
            f"{names.updated_after} and {names.updated_before} cannot be set when {names.created_after} is set."
        )
    if updated_after is not None and created_before is not None:
        raise invalid_input(f"{names.created_before} cannot be set when {names.updated_after} is set.")
    column, bounds = (
        ("purchase_date", (names.created_after, names.created_before))
        if created_after
        else ("last_update_date", (names.updated_after, names.updated_before))
    )
    after = created_after or updated_after
    assert after is not None  # one of the two is required above
    latest = sb.now() - _MIN_AGE
    before = (created_before if created_after else updated_before) or latest
    if before > latest:
        raise invalid_input(f"{bounds[1]} must be a date at least two minutes before the current time.")
    if after >= before:
        raise invalid_input(f"{bounds[0]} must be earlier than {bounds[1]}.")
    statuses = _allowed(request, names.status_param, names.statuses)
    channels = _allowed(request, names.channel_param, names.channels)
    order_ids = values(request, names.order_ids_param) if names.order_ids_param else []
    if len(order_ids) > 50:
        raise invalid_input(f"{names.order_ids_param} accepts at most 50 values.")
    page_size = int_param(request, names.page_size_param, 100, 1, 100)
    return OrderQuery(
        tuple(markets), column, sortable(after), sortable(before), statuses, channels, tuple(order_ids)
    ), page_size


def find_order(sb: Sandbox, order_id: str) -> tuple[dict, list[dict]]:
    found = sb.store.get_order(order_id)
    if found is None or not sb.serves(found[0]["MarketplaceId"]):  # another region's host knows nothing of it
        raise not_found(f"Order {order_id} was not found.")
    return found


async def get_order(request: Request, sb: Sandbox) -> Reply:
    order, _ = find_order(sb, request.path_params["order_id"])
    return Reply(200, {"payload": visible_order(order, granted_elements(request, sb))})


async def get_order_address(request: Request, sb: Sandbox) -> Reply:
    order_id = request.path_params["order_id"]
    order, _ = find_order(sb, order_id)
    shown = visible_order(order, granted_elements(request, sb))
    payload: dict = {"AmazonOrderId": order_id}
    if isinstance(shown.get("ShippingAddress"), dict):
        payload["ShippingAddress"] = shown["ShippingAddress"]
    return Reply(200, {"payload": payload})


async def get_order_buyer_info(request: Request, sb: Sandbox) -> Reply:
    order_id = request.path_params["order_id"]
    order, _ = find_order(sb, order_id)
    buyer_info = order.get("BuyerInfo")
    info = buyer_info if isinstance(buyer_info, dict) else {}
    return Reply(
        200, {"payload": {"AmazonOrderId": order_id, **visible_buyer_info(info, granted_elements(request, sb))}}
    )


async def get_order_items(request: Request, sb: Sandbox) -> Reply:
    order_id = request.path_params["order_id"]
    order, items = find_order(sb, order_id)
    token = request.query_params.get("NextToken")
    offset = 0
    if token:
        state = decode_token(token, "items")
        if state.get("order") != order_id:
            raise invalid_input("Invalid NextToken.", "The token belongs to another order.")
        offset = state["o"]
    size = sb.order_items_page_size
    page = items[offset : offset + size]
    page = priced_items(order, page)
    elements = granted_elements(request, sb)
    payload: dict = {"AmazonOrderId": order_id, "OrderItems": [visible_item(i, elements) for i in page]}
    if offset + size < len(items):
        payload["NextToken"] = encode_token({"kind": "items", "order": order_id, "o": offset + size})
    return Reply(200, {"payload": payload})


def priced_items(order: dict, items: list[dict]) -> list[dict]:
    """Items as Amazon shows them: without pricing while the order is Pending."""
    if order["OrderStatus"] != "Pending":
        return items
    return [{k: v for k, v in item.items() if k not in _PRICE_FIELDS} for item in items]


async def confirm_shipment(request: Request, sb: Sandbox) -> Reply:
    order_id = request.path_params["order_id"]
    order, items = find_order(sb, order_id)
    body = await json_body(request)
    package = _validate_confirmation(body, order)
    if order["OrderStatus"] not in SHIPPABLE:
        raise invalid_input(f"Order {order_id} cannot be confirmed: its status is {order['OrderStatus']}.")
    if order.get("FulfillmentChannel") == "AFN":
        raise invalid_input(f"Order {order_id} is fulfilled by Amazon (AFN); shipments are confirmed by Amazon.")
    quantities = _validate_package_items(package["orderItems"], items, order_id)
    updated_items = [
        dict(item, QuantityShipped=int(item.get("QuantityShipped") or 0) + quantities.get(item["OrderItemId"], 0))
        for item in items
    ]
    shipped = sum(i["QuantityShipped"] for i in updated_items)
    unshipped = sum(int(i["QuantityOrdered"]) - i["QuantityShipped"] for i in updated_items)
    now = sb.now()
    updated_order = dict(
        order,
        NumberOfItemsShipped=shipped,
        NumberOfItemsUnshipped=unshipped,
        OrderStatus="Shipped" if unshipped == 0 else "PartiallyShipped",
        LastUpdateDate=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    sb.store.record_shipment(updated_order, updated_items, package, now)
    return Reply(204)


def _validate_confirmation(body: object, order: dict) -> dict:
    if not isinstance(body, dict):
        raise invalid_input("The request body must be a ConfirmShipmentRequest JSON object.")
    marketplace = body.get("marketplaceId")
    if not isinstance(marketplace, str) or not marketplace:
        raise invalid_input("Missing required field marketplaceId.")
    if marketplace != order["MarketplaceId"]:
        raise invalid_input(
            f"marketplaceId {marketplace} does not match the order's marketplace {order['MarketplaceId']}."
        )
    package = body.get("packageDetail")
    if not isinstance(package, dict):
        raise invalid_input("Missing required field packageDetail.")
    for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate"):
        if not isinstance(package.get(name), str) or not package[name].strip():
            raise invalid_input(f"Missing required field packageDetail.{name}.")
    if not re.fullmatch(r"[1-9][0-9]*", package["packageReferenceId"]):
        raise invalid_input(
            "packageDetail.packageReferenceId must be a positive numeric value.",
            f"Got {package['packageReferenceId']!r}.",
        )
    try:
        parse_iso(package["shipDate"])
    except ValueError:
        raise invalid_input(f"packageDetail.shipDate {package['shipDate']!r} is not an ISO-8601 date-time.") from None
    if not isinstance(package.get("orderItems"), list) or not package["orderItems"]:
        raise invalid_input("packageDetail.orderItems must list at least one item.")
    return package


def _validate_package_items(lines: list, items: list[dict], order_id: str) -> dict[str, int]:
    by_id = {item["OrderItemId"]: item for item in items}
    quantities: dict[str, int] = {}
    for n, line in enumerate(lines):
        where = f"packageDetail.orderItems[{n}]"
        if not isinstance(line, dict) or not isinstance(line.get("orderItemId"), str):
            raise invalid_input(f"{where}.orderItemId is required.")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise invalid_input(f"{where}.quantity must be a positive integer, got {quantity!r}.")
        item = by_id.get(line["orderItemId"])
        if item is None:
            raise invalid_input(f"{where}.orderItemId {line['orderItemId']} is not an item of order {order_id}.")
        quantities[item["OrderItemId"]] = quantities.get(item["OrderItemId"], 0) + quantity
        open_quantity = int(item["QuantityOrdered"]) - int(item.get("QuantityShipped") or 0)
        if quantities[item["OrderItemId"]] > open_quantity:
            raise invalid_input(
                f"{where}.quantity {quantity} exceeds the unshipped quantity {open_quantity} "
                f"of item {item['OrderItemId']}."
            )
    return quantities
