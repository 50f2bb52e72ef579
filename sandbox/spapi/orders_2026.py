"""Orders API 2026-01-01: searchOrders and getOrder, served from the same stored (v0) orders.

The 2026 model embeds the order items in each order and returns optional parts only when
``includedData`` names their dataset (``orders_2026-01-01.json``). Buyer and recipient PII is
withheld exactly as v0 withholds it (``tokens.visible_order``) unless a restricted data token
for the path grants ``buyerInfo``/``shippingAddress``.
"""

from __future__ import annotations

from decimal import Decimal

from starlette.requests import Request

from .context import Reply, Sandbox, values
from .errors import invalid_input
from .orders import ORDER_STATUSES, FilterNames, find_order, order_query, priced_items, query_from_token, query_token
from .tokens import granted_elements, visible_item, visible_order

INCLUDED_DATA = frozenset(
    {
        "BUYER",
        "RECIPIENT",
        "PROCEEDS",
        "EXPENSE",
        "PROMOTION",
        "CANCELLATION",
        "FULFILLMENT",
        "PACKAGES",
        "TAX",
        "PAYMENT",
        "FULFILLMENT_ORDERS",
    }
)
# v0 OrderStatus -> 2026 FulfillmentStatus. InvoiceUnconfirmed (v0, Brazil) has no 2026 value;
# such an order has not shipped yet, so it shows as UNSHIPPED.
FULFILLMENT_STATUS = {
    "Pending": "PENDING",
    "Unshipped": "UNSHIPPED",
    "InvoiceUnconfirmed": "UNSHIPPED",
    "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED",
    "Canceled": "CANCELLED",
    "Unfulfillable": "UNFULFILLABLE",
    "PendingAvailability": "PENDING_AVAILABILITY",
}
assert set(FULFILLMENT_STATUS) == ORDER_STATUSES  # every stored status has its 2026 face
FULFILLED_BY = {"AFN": "AMAZON", "MFN": "MERCHANT"}
SEARCH_FILTERS = FilterNames(
    marketplaces_required=False,
    created_after="createdAfter",
    created_before="createdBefore",
    updated_after="lastUpdatedAfter",
    updated_before="lastUpdatedBefore",
    status_param="fulfillmentStatuses",
    statuses={
        status: tuple(v0 for v0, shown in FULFILLMENT_STATUS.items() if shown == status)
        for status in FULFILLMENT_STATUS.values()
    },
    channel_param="fulfilledBy",
    channels={shown: (v0,) for v0, shown in FULFILLED_BY.items()},
    order_ids_param=None,
    page_size_param="maxResultsPerPage",
)
# v0 Address -> 2026 CustomerAddress
_ADDRESS_FIELDS = {
    "Name": "name",
    "CompanyName": "companyName",
    "AddressLine1": "addressLine1",
    "AddressLine2": "addressLine2",
    "AddressLine3": "addressLine3",
    "City": "city",
    "County": "districtOrCounty",
    "StateOrRegion": "stateOrRegion",
    "Municipality": "municipality",
    "PostalCode": "postalCode",
    "CountryCode": "countryCode",
    "Phone": "phone",
}
# v0 OrderItem money field -> 2026 ItemProceedsBreakdown type
_PROCEEDS_TYPES = {"ItemPrice": "ITEM", "ShippingPrice": "SHIPPING", "ItemTax": "TAX"}
# v0 OrderItem discount -> the subtype of the 2026 DISCOUNT breakdown's detailedBreakdowns: its subtotal is
# the item's promotion and the shipping's together, told apart there (as TAX's are)
_DISCOUNT_SUBTYPES = {"PromotionDiscount": "ITEM", "ShippingDiscount": "SHIPPING"}


def _money(v0_money: dict) -> dict:
    return {"amount": v0_money["Amount"], "currencyCode": v0_money["CurrencyCode"]}


def included_data(request: Request) -> frozenset[str]:
    given = values(request, "includedData")
    bad = [d for d in given if d not in INCLUDED_DATA]
    if bad:
        raise invalid_input(f"Invalid includedData: {', '.join(bad)}.", f"Allowed: {', '.join(sorted(INCLUDED_DATA))}")
    return frozenset(given)


def order_2026(order: dict, items: list[dict], included: frozenset[str], elements: frozenset[str]) -> dict:
    """One stored order and its items in the 2026-01-01 ``Order`` shape, PII as ``elements`` allow."""
    shown = visible_order(order, elements)
    result: dict = {
        "orderId": shown["AmazonOrderId"],
        "createdTime": shown["PurchaseDate"],
        "lastUpdatedTime": shown["LastUpdateDate"],
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": shown["MarketplaceId"]},
    }
    if shown.get("SalesChannel"):
        result["salesChannel"]["marketplaceName"] = shown["SalesChannel"]
    programs = [p for p, flag in (("AMAZON_BUSINESS", "IsBusinessOrder"), ("PRIME", "IsPrime")) if shown.get(flag)]
    if programs:
        result["programs"] = programs
    if "BUYER" in included:
        info = shown.get("BuyerInfo") or {}
        result["buyer"] = {
            new: info[old] for old, new in (("BuyerName", "buyerName"), ("BuyerEmail", "buyerEmail")) if old in info
        }
    if "RECIPIENT" in included and isinstance(shown.get("ShippingAddress"), dict):
        address = shown["ShippingAddress"]
        result["recipient"] = {
            "deliveryAddress": {new: address[old] for old, new in _ADDRESS_FIELDS.items() if old in address}
        }
    if "PROCEEDS" in included and isinstance(shown.get("OrderTotal"), dict):
        result["proceeds"] = {"grandTotal": _money(shown["OrderTotal"])}
    if "FULFILLMENT" in included:
        fulfillment = {"fulfillmentStatus": FULFILLMENT_STATUS[shown["OrderStatus"]]}
        if shown.get("FulfillmentChannel") in FULFILLED_BY:
            fulfillment["fulfilledBy"] = FULFILLED_BY[shown["FulfillmentChannel"]]
        result["fulfillment"] = fulfillment
    result["orderItems"] = [_item_2026(visible_item(item, elements), included) for item in priced_items(order, items)]
    return result


def _item_2026(item: dict, included: frozenset[str]) -> dict:
    product = {
        new: item[old] for old, new in (("ASIN", "asin"), ("Title", "title"), ("SellerSKU", "sellerSku")) if old in item
    }
    result: dict = {
        "orderItemId": item["OrderItemId"],
        "quantityOrdered": int(item["QuantityOrdered"]),
        "product": product,
    }
    if "PROCEEDS" in included:
        breakdowns = [
            {"type": kind, "subtotal": _money(item[field])}
            for field, kind in _PROCEEDS_TYPES.items()
            if isinstance(item.get(field), dict)
        ]
        discounts = [
            (subtype, item[field]) for field, subtype in _DISCOUNT_SUBTYPES.items() if isinstance(item.get(field), dict)
        ]
        if discounts:
            total = sum((Decimal(money["Amount"]) for _, money in discounts), Decimal(0))
            breakdowns.append(
                {
                    "type": "DISCOUNT",
                    "subtotal": {"amount": str(total), "currencyCode": discounts[0][1]["CurrencyCode"]},
                    "detailedBreakdowns": [
                        {"subtype": subtype, "value": _money(money)} for subtype, money in discounts
                    ],
                }
            )
        if breakdowns:  # Pending orders carry no pricing yet
            result["proceeds"] = {"breakdowns": breakdowns}
    if "PROMOTION" in included and "PromotionIds" in item:
        result["promotion"] = {"breakdowns": [{"promotionId": p} for p in item["PromotionIds"]]}
    if "FULFILLMENT" in included:
        shipped = int(item.get("QuantityShipped") or 0)
        result["fulfillment"] = {
            "quantityFulfilled": shipped,
            "quantityUnfulfilled": int(item["QuantityOrdered"]) - shipped,
        }
    return result


async def search_orders(request: Request, sb: Sandbox) -> Reply:
    token = request.query_params.get("paginationToken")
    if token:
        query, offset, page_size = query_from_token(token, "search")
    else:
        query, page_size = order_query(request, sb, SEARCH_FILTERS)
        offset = 0
    included, elements = included_data(request), granted_elements(request, sb)
    page = sb.store.query_orders(query, offset, page_size + 1)
    orders = []
    for order in page[:page_size]:
        stored, items = find_order(sb, order["AmazonOrderId"])
        orders.append(order_2026(stored, items, included, elements))
    body: dict = {"orders": orders}
    if len(page) > page_size:
        body["pagination"] = {"nextToken": query_token("search", query, offset + page_size, page_size)}
    body["createdBefore" if query.date_column == "purchase_date" else "lastUpdatedBefore"] = query.before
    return Reply(200, body)


async def get_order(request: Request, sb: Sandbox) -> Reply:
    order, items = find_order(sb, request.path_params["order_id"])
    return Reply(200, {"order": order_2026(order, items, included_data(request), granted_elements(request, sb))})
