"""Benchmark-size Amazon orders for the SP-API sandbox: N orders of 1-4 lines, deterministic and fast.

Each order is an Orders v0 Order with its items (the shapes ``SpApiStore.seed`` takes), in one
marketplace, Unshipped (order sync creates every one), its lines drawn from the sandbox catalog
(so each SKU maps to an M3 item through the sandbox's routing) at the catalog's price, no
shipping charge and no promotion: each order maps to exactly its item lines. Purchases are
spread evenly over ``hours`` before ``until``; the last update is a minute after the purchase.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from sandbox.catalog import MARKETPLACES, build_catalog

from .formats import format_amount

MAX_LINES = 4
_ORDER_PREFIX = {"US": "113", "DE": "303", "FR": "403", "UK": "203"}  # not the world's (111, 302, ...)
_ADDRESS = {
    "Name": "Load Test",
    "AddressLine1": "1 Bench St",
    "City": "Seattle",
    "StateOrRegion": "WA",
    "PostalCode": "98101",
}
_COUNTRY = {"UK": "GB"}  # the address's ISO country where it is not the marketplace's code


def order_id(n: int, marketplace: str = "US") -> str:
    """The Amazon order id of load order ``n`` (``113-0000000-0000042``)."""
    return f"{_ORDER_PREFIX[marketplace]}-{n // 10_000_000:07d}-{n % 10_000_000:07d}"


def load_orders(
    count: int, *, seed: int = 0, until: datetime, hours: int = 24, marketplace: str = "US"
) -> Iterator[tuple[dict, list[dict]]]:
    """``count`` orders of 1-``MAX_LINES`` lines (uniformly), the same for the same arguments."""
    market = MARKETPLACES[marketplace]
    catalog = [item for item in build_catalog(seed) if marketplace in item.marketplaces]
    rng = random.Random(f"order-load-{seed}")
    step = timedelta(hours=hours) / max(count, 1)
    first = until - timedelta(hours=hours)
    for n in range(count):
        amazon_id = order_id(n, marketplace)
        purchased = first + step * n
        picked = rng.sample(catalog, rng.randint(1, MAX_LINES))
        items: list[dict] = []
        total = 0
        units = 0
        for line, item in enumerate(picked):
            quantity = rng.randint(1, 3)
            amount = item.price(marketplace) * quantity
            total += amount
            units += quantity
            items.append(
                {
                    "ASIN": item.asin,
                    "OrderItemId": f"{amazon_id.replace('-', '')[3:]}{line:02d}",
                    "SellerSKU": item.sku,
                    "Title": item.name,
                    "QuantityOrdered": quantity,
                    "QuantityShipped": 0,
                    "ItemPrice": _money(market.currency, amount),
                    "ItemTax": _money(market.currency, 0),
                    "ShippingPrice": _money(market.currency, 0),
                    "PromotionDiscount": _money(market.currency, 0),
                    "PromotionIds": [],
                    "IsGift": "false",
                }
            )
        yield (
            {
                "AmazonOrderId": amazon_id,
                "PurchaseDate": _iso(purchased),
                "LastUpdateDate": _iso(purchased + timedelta(minutes=1)),
                "OrderStatus": "Unshipped",
                "FulfillmentChannel": "MFN",
                "SalesChannel": market.name,
                "OrderTotal": _money(market.currency, total),
                "NumberOfItemsShipped": 0,
                "NumberOfItemsUnshipped": units,
                "MarketplaceId": market.marketplace_id,
                "OrderType": "StandardOrder",
                "IsBusinessOrder": False,
                "IsPrime": False,
                "ShippingAddress": {**_ADDRESS, "CountryCode": _COUNTRY.get(marketplace, marketplace)},
            },
            items,
        )


def _money(currency: str, minor: int) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": format_amount(minor, decimal_comma=False)}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
