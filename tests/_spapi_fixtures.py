"""Hand-written SP-API sandbox data in the generator contract's shapes, and client helpers."""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sp_api.api import ListingsItems, Orders, Reports, Tokens
from sp_api.auth import AccessTokenClient

from sandbox.generator.records import SettlementDocument
from tests._settlement_builders import V2_HEADER

US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
SELLER = "A2SANDBOXSELLER"
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)  # the sandbox clock in these tests
SETTLEMENT_V2 = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"


def money(currency: str, amount: str) -> dict:
    return {"CurrencyCode": currency, "Amount": amount}


# Every order's delivery address (buyer data: served only with a restricted data token).
SHIPPING_ADDRESS = {
    "Name": "Jane Doe",
    "AddressLine1": "1 Main St",
    "City": "Seattle",
    "StateOrRegion": "WA",
    "PostalCode": "98101",
    "CountryCode": "US",
    "Phone": "+1 206 555 0100",
}


def order(
    order_id: str,
    purchased: datetime,
    *,
    status: str = "Unshipped",
    channel: str = "MFN",
    marketplace: str = US,
    items: int = 1,
    currency: str = "USD",
) -> tuple[dict, list[dict]]:
    """An Orders v0 Order with ``items`` lines of 2 units at 12.99 each."""
    line_items = [
        {
            "ASIN": f"B0TEST{n:04d}",
            "OrderItemId": f"{order_id.replace('-', '')[:10]}{n:04d}",
            "SellerSKU": f"SKU-{n}",
            "Title": f"Test item {n}",
            "QuantityOrdered": 2,
            "QuantityShipped": 0,
            "ItemPrice": money(currency, "25.98"),
            "ItemTax": money(currency, "0.00"),
            "ShippingPrice": money(currency, "0.00"),
            "PromotionDiscount": money(currency, "0.00"),
            "PromotionIds": [],
            "IsGift": "false",
        }
        for n in range(items)
    ]
    head = {
        "AmazonOrderId": order_id,
        "PurchaseDate": purchased.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "LastUpdateDate": (purchased + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "OrderStatus": status,
        "FulfillmentChannel": channel,
        "SalesChannel": "Amazon.com",
        "ShipServiceLevel": "Std US D2D Dom",
        "OrderTotal": money(currency, f"{25.98 * items:.2f}"),
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 2 * items,
        "MarketplaceId": marketplace,
        "OrderType": "StandardOrder",
        "IsBusinessOrder": False,
        "IsPrime": False,
        "ShippingAddress": dict(SHIPPING_ADDRESS),
        "BuyerInfo": {"BuyerEmail": "abc123@marketplace.amazon.com", "BuyerName": "Jane Doe"},
    }
    return head, line_items


def settlement(settlement_id: str, day: int, *, marketplace: str = US, note: str = "") -> SettlementDocument:
    """A small balanced V2 document; ``note`` lands in promotion-id (for non-ASCII checks)."""
    start = datetime(2026, 9, day, 14, 0, tzinfo=UTC)
    end = start + timedelta(days=14)
    currency, name = ("USD", "Amazon.com") if marketplace == US else ("EUR", "Amazon.de")
    fmt = (
        (lambda d: d.strftime("%Y-%m-%d %H:%M:%S UTC"))
        if marketplace == US
        else (lambda d: d.strftime("%d.%m.%Y %H:%M:%S UTC"))
    )
    amount = (lambda s: s) if marketplace == US else (lambda s: s.replace(".", ","))
    rows = [("ItemPrice", "Principal", "20.00"), ("ItemFees", "Commission", "-3.00")]
    lines = [
        V2_HEADER,
        "\t".join(
            [settlement_id, fmt(start), fmt(end), fmt(end + timedelta(days=2)), amount("17.00"), currency] + [""] * 18
        ),
    ]
    posted = start + timedelta(days=1)
    day_fmt = (lambda d: d.strftime("%Y-%m-%d")) if marketplace == US else (lambda d: d.strftime("%d.%m.%Y"))
    for amount_type, description, value in rows:
        lines.append(
            "\t".join(
                [
                    settlement_id,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "Order",
                    "111-0000001-0000001",
                    "",
                    "",
                    "",
                    name,
                    amount_type,
                    description,
                    amount(value),
                    "AFN",
                    day_fmt(posted),
                    fmt(posted),
                    "12345678901234",
                    "",
                    "",
                    "SKU-0",
                    "1",
                    note,
                ]
            )
        )
    return SettlementDocument(
        settlement_id,
        marketplace,
        currency,
        start,
        end,
        end + timedelta(days=2),
        Decimal("17.00"),
        "\n".join(lines) + "\n",
        end + timedelta(hours=3),
    )


def listing(sku: str, marketplace: str = US, quantity: int = 5, price: str = "12.99") -> dict:
    return {
        "sku": sku,
        "marketplace_id": marketplace,
        "asin": "B0LIST0001",
        "product_type": "HOME",
        "title": f"Listing {sku}",
        "price": price,
        "currency": "USD" if marketplace == US else "EUR",
        "quantity": quantity,
    }


# One plain-http client for the tests' raw calls (a new httpx client per call loads the CA bundle).
HTTP = httpx.Client(verify=False, timeout=20)


@dataclass(frozen=True)
class SpApiClients:
    orders: Orders
    reports: Reports
    listings: ListingsItems
    tokens: Tokens


def clients(
    base_url: str, credentials: dict, marketplace_id: str = US, restricted_data_token: str | None = None
) -> SpApiClients:
    """The real python-amazon-sp-api clients aimed at the sandbox (through the library's own hooks)."""
    host = base_url.removeprefix("http://")
    lwa = type("SandboxLWA", (AccessTokenClient,), {"scheme": "http://", "host": host})
    marketplace = types.SimpleNamespace(endpoint=base_url, marketplace_id=marketplace_id, region="us-east-1")
    # verify=False: the sandbox is plain http, and loading the CA bundle costs ~0.1 s per client.
    kwargs = {
        "marketplace": marketplace,
        "credentials": credentials,
        "auth_token_client_class": lwa,
        "verify": False,
        "restricted_data_token": restricted_data_token,
    }
    return SpApiClients(Orders(**kwargs), Reports(**kwargs), ListingsItems(**kwargs), Tokens(**kwargs))


def access_token(base_url: str, creds: dict) -> str:
    """An LWA access token from the sandbox for the credentials it wrote."""
    answer = HTTP.post(
        f"{base_url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": creds["refresh_token"],
            "client_id": creds["lwa_app_id"],
            "client_secret": creds["lwa_client_secret"],
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])
