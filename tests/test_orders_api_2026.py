"""Orders API 2026-01-01: the sandbox's searchOrders/getOrder and the connector's source for it.

Both Orders versions run over real HTTP against the SP-API sandbox with the unmodified
python-amazon-sp-api client; the 2026 source must yield the same records as the v0 one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _amazon_fixtures import FAST_BACKOFF
from _spapi_fixtures import DE, NOW, SELLER, SHIPPING_ADDRESS, US, access_token, money, order

from connectors.amazon import AmazonAccount, AmazonConnector
from connectors.amazon.accounts import SellerAccounts
from connectors.amazon.records import PackageDetail, ShipmentItem
from connectors.settings import ConfigurationError, load_settings
from sandbox.server import RunningServer, serve_in_thread
from sandbox.spapi import SpApiStore, create_app, credentials

T0 = datetime(2026, 10, 1, tzinfo=UTC)
WINDOW = (T0 - timedelta(minutes=1), T0 + timedelta(days=1))
A = "111-1000001-0000001"  # Unshipped MFN, 2 items
B = "111-1000002-0000001"  # Shipped AFN, 1 item fully shipped
C = "111-1000003-0000001"  # Pending: no item pricing yet
D = "111-1000004-0000001"  # 12 items: two v0 item pages, one embedded 2026 list
E = "111-1000005-0000001"  # PartiallyShipped business Prime order with a promotion
F = "302-1000006-0000001"  # Germany: outside the account's marketplaces
G = "111-1000007-0000001"  # Canceled
H = "111-1000008-0000001"  # outside the window: the one the shipment test confirms
IN_WINDOW = [A, B, C, D, E, G]  # by last update (purchase + 1 h)
FULL_ADDRESS = SHIPPING_ADDRESS  # what an order's address is with a restricted data token
PUBLIC_ADDRESS = {"City": "Seattle", "StateOrRegion": "WA", "PostalCode": "98101", "CountryCode": "US"}
ORDER_FIELDS = {
    "AmazonOrderId",
    "PurchaseDate",
    "LastUpdateDate",
    "OrderStatus",
    "FulfillmentChannel",
    "MarketplaceId",
    "SalesChannel",
    "OrderTotal",
    "NumberOfItemsShipped",
    "NumberOfItemsUnshipped",
    "IsBusinessOrder",
    "IsPrime",
    "ShippingAddress",
    "BuyerInfo",
}
UNPRICED_ITEM_FIELDS = {"OrderItemId", "ASIN", "SellerSKU", "Title", "QuantityOrdered", "QuantityShipped"}
ITEM_FIELDS = UNPRICED_ITEM_FIELDS | {"ItemPrice", "ItemTax", "ShippingPrice", "PromotionDiscount", "PromotionIds"}
ALL_DATA = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"


def world() -> list[tuple[dict, list[dict]]]:
    shipped_head, shipped_items = order(B, T0 + timedelta(hours=1), status="Shipped", channel="AFN")
    shipped_items[0]["QuantityShipped"] = 2
    shipped_head.update(NumberOfItemsShipped=2, NumberOfItemsUnshipped=0)
    partial_head, partial_items = order(E, T0 + timedelta(hours=4), status="PartiallyShipped", items=2)
    partial_items[0].update(
        QuantityShipped=1,
        PromotionIds=["PROMO-1"],
        PromotionDiscount=money("USD", "1.00"),
        ShippingDiscount=money("USD", "0.50"),  # 2026: one DISCOUNT breakdown of 1.50, told apart in its details
    )
    partial_head.update(NumberOfItemsShipped=1, NumberOfItemsUnshipped=3, IsBusinessOrder=True, IsPrime=True)
    return [
        order(A, T0, items=2),
        (shipped_head, shipped_items),
        order(C, T0 + timedelta(hours=2), status="Pending"),
        order(D, T0 + timedelta(hours=3), items=12),
        (partial_head, partial_items),
        order(F, T0 + timedelta(hours=5), marketplace=DE, currency="EUR"),
        order(G, T0 + timedelta(hours=6), status="Canceled"),
        order(H, T0 + timedelta(days=3), items=2),
    ]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spapi2026")
    store = SpApiStore(folder)
    store.seed(world(), [], [], SELLER)
    store.close()
    return folder


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[RunningServer]:
    # No sandbox throttling here (the module makes ~40 searchOrders calls); the usage plan itself is
    # tested at Amazon's pace in test_every_2026_answer_matches_the_model.
    with serve_in_thread(lambda url: create_app(data_dir, url, rate_limits=False, now=lambda: NOW)) as running:
        yield running


def account(server: RunningServer, data_dir: Path, **overrides: Any) -> AmazonAccount:
    values: dict[str, Any] = dict(
        endpoint=server.base_url,
        token_url=f"{server.base_url}/auth/o2/token",
        seller_id=SELLER,
        marketplace_ids=(US,),
        **credentials(data_dir),
    )
    return AmazonAccount(**{**values, **overrides})


def connector(server: RunningServer, data_dir: Path, **overrides: Any) -> AmazonConnector:
    return AmazonConnector(account(server, data_dir, **overrides), time_scale=1000.0, backoff=FAST_BACKOFF)


def restricted_token(http: httpx.Client, base_url: str, path: str) -> str:
    answer = http.post(
        f"{base_url}/tokens/2021-03-01/restrictedDataToken",
        json={
            "restrictedResources": [
                {"method": "GET", "path": path, "dataElements": ["buyerInfo", "shippingAddress"]},
            ]
        },
    )
    answer.raise_for_status()
    return str(answer.json()["restrictedDataToken"])


@pytest.fixture(scope="module")
def http(server: RunningServer, data_dir: Path) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"x-amz-access-token": access_token(server.base_url, credentials(data_dir))}) as client:
        yield client


def search(http: httpx.Client, base_url: str, **params: Any) -> httpx.Response:
    return http.get(f"{base_url}/orders/2026-01-01/orders", params=params)


def window_params(**more: Any) -> dict[str, Any]:
    return {"lastUpdatedAfter": "2026-09-30T23:59:00Z", "lastUpdatedBefore": "2026-10-02T00:00:00Z", **more}


# ---- the connector: both versions, same records -------------------------------------------
def read_all(amazon: AmazonConnector, pii: bool = False) -> tuple[list[dict], dict[str, list[dict]]]:
    orders = list(amazon.get_orders(WINDOW[0], last_updated_before=WINDOW[1], page_size=4, pii=pii))
    return orders, {o["AmazonOrderId"]: amazon.get_order_items(o["AmazonOrderId"]) for o in orders}


def test_default_is_2026_and_yields_the_v0_records(server: RunningServer, data_dir: Path) -> None:
    with connector(server, data_dir) as new, connector(server, data_dir, orders_api_version="v0") as old:
        assert (new.orders_source.api_version, old.orders_source.api_version) == ("2026-01-01", "v0")
        new_orders, new_items = read_all(new)
        old_orders, old_items = read_all(old)
        single_new, single_old = new.get_order(E), old.get_order(E)
    assert [o["AmazonOrderId"] for o in new_orders] == IN_WINDOW == [o["AmazonOrderId"] for o in old_orders]
    for new_order, old_order in zip(new_orders, old_orders, strict=True):
        assert set(new_order) == ORDER_FIELDS
        assert new_order == {k: old_order[k] for k in ORDER_FIELDS}
    assert single_new == {k: single_old[k] for k in ORDER_FIELDS}
    for order_id in IN_WINDOW:
        expected_fields = UNPRICED_ITEM_FIELDS if order_id == C else ITEM_FIELDS
        expected = [expected_fields | ({"ShippingDiscount"} & set(i)) for i in old_items[order_id]]
        assert [set(i) for i in new_items[order_id]] == expected
        assert new_items[order_id] == [{k: i[k] for k in fields} for i, fields in zip(old_items[order_id], expected)]
    # Worked out from the seed: 2 lines of 2 units at 25.98 a line, nothing shipped, PII withheld.
    assert new_orders[0] == {
        "AmazonOrderId": A,
        "PurchaseDate": "2026-10-01T00:00:00Z",
        "LastUpdateDate": "2026-10-01T01:00:00Z",
        "OrderStatus": "Unshipped",
        "FulfillmentChannel": "MFN",
        "MarketplaceId": US,
        "SalesChannel": "Amazon.com",
        "OrderTotal": {"CurrencyCode": "USD", "Amount": "51.96"},
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 4,
        "IsBusinessOrder": False,
        "IsPrime": False,
        "ShippingAddress": PUBLIC_ADDRESS,
        "BuyerInfo": {},
    }
    assert len(new_items[D]) == 12
    assert (single_new["OrderStatus"], single_new["IsBusinessOrder"], single_new["IsPrime"]) == (
        "PartiallyShipped",
        True,
        True,
    )
    assert (single_new["NumberOfItemsShipped"], single_new["NumberOfItemsUnshipped"]) == (1, 3)
    assert new_items[E][0]["PromotionIds"] == ["PROMO-1"]
    assert new_items[E][0]["PromotionDiscount"] == {"CurrencyCode": "USD", "Amount": "1.00"}
    assert new_items[E][0]["ShippingDiscount"] == {"CurrencyCode": "USD", "Amount": "0.50"}
    assert (new_orders[1]["OrderStatus"], new_orders[1]["FulfillmentChannel"]) == ("Shipped", "AFN")
    assert new_items[B][0]["QuantityShipped"] == 2


def test_buyer_data_with_a_restricted_data_token_on_both_versions(server: RunningServer, data_dir: Path) -> None:
    with connector(server, data_dir) as new, connector(server, data_dir, orders_api_version="v0") as old:
        new_orders = list(new.get_orders(WINDOW[0], last_updated_before=WINDOW[1], statuses=["Unshipped"], pii=True))
        old_orders = list(old.get_orders(WINDOW[0], last_updated_before=WINDOW[1], statuses=["Unshipped"], pii=True))
    assert [o["AmazonOrderId"] for o in new_orders] == [A, D]
    assert new_orders[0]["ShippingAddress"] == FULL_ADDRESS
    assert new_orders[0]["BuyerInfo"] == {"BuyerEmail": "abc123@marketplace.amazon.com", "BuyerName": "Jane Doe"}
    assert new_orders == [{k: o[k] for k in ORDER_FIELDS} for o in old_orders]


def test_shipment_is_confirmed_on_v0_and_seen_through_2026(server: RunningServer, data_dir: Path) -> None:
    with connector(server, data_dir) as amazon:
        items = amazon.get_order_items(H)
        package = PackageDetail(
            "1", "UPS", "1Z999", T0 + timedelta(days=4), tuple(ShipmentItem(i["OrderItemId"], 2) for i in items)
        )
        amazon.confirm_shipment(H, US, package)
        shipped = amazon.get_order(H)
    assert (shipped["OrderStatus"], shipped["NumberOfItemsShipped"], shipped["NumberOfItemsUnshipped"]) == (
        "Shipped",
        4,
        0,
    )


@pytest.mark.parametrize(
    ("setting", "expected"), [({"M3SYNC_AMAZON_ORDERS_API": "v0"}, "v0"), ({}, "2026-01-01")], ids=["v0", "default"]
)
def test_orders_api_setting_chooses_the_version(
    server: RunningServer, data_dir: Path, tmp_path: Path, setting: dict[str, str], expected: str
) -> None:
    creds = credentials(data_dir)
    env = {
        "M3SYNC_AMAZON_REFRESH_TOKEN": creds["refresh_token"],
        "M3SYNC_AMAZON_LWA_APP_ID": creds["lwa_app_id"],
        "M3SYNC_AMAZON_LWA_CLIENT_SECRET": creds["lwa_client_secret"],
        "M3SYNC_AMAZON_MARKETPLACES": US,
        "M3SYNC_AMAZON_ENDPOINT": server.base_url,
        "M3SYNC_AMAZON_TOKEN_URL": f"{server.base_url}/auth/o2/token",
        "M3SYNC_AMAZON_SELLER_ID": SELLER,
        **setting,
    }
    settings = load_settings(tmp_path, env=env).require_amazon()
    assert settings.orders_api_version == expected
    accounts = SellerAccounts.from_settings(settings, time_scale=1000.0)
    try:
        [amazon] = accounts.connectors
        assert amazon.orders_source.api_version == expected
        first = next(amazon.get_orders(WINDOW[0], last_updated_before=WINDOW[1]))
    finally:
        for opened in accounts.connectors:
            opened.close()
    assert first["AmazonOrderId"] == A
    assert ("ShipServiceLevel" in first) is (expected == "v0")  # a v0-only field: v0 really answered


def test_a_bad_orders_api_setting_is_named(tmp_path: Path) -> None:
    env = {
        "M3SYNC_AMAZON_REFRESH_TOKEN": "Atzr|x",
        "M3SYNC_AMAZON_LWA_APP_ID": "app",
        "M3SYNC_AMAZON_LWA_CLIENT_SECRET": "secret",
        "M3SYNC_AMAZON_MARKETPLACES": US,
        "M3SYNC_AMAZON_ORDERS_API": "v1",
    }
    with pytest.raises(ConfigurationError, match=r"\[amazon\] orders_api .* must be one of v0, 2026-01-01, got 'v1'"):
        load_settings(tmp_path, env=env, require=["amazon"])


# ---- the sandbox's searchOrders over HTTP --------------------------------------------------
def test_search_orders_pages_with_its_token(server: RunningServer, http: httpx.Client) -> None:
    first = search(http, server.base_url, marketplaceIds=US, maxResultsPerPage=4, **window_params())
    assert first.status_code == 200, first.text
    assert first.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    body = first.json()
    assert [o["orderId"] for o in body["orders"]] == [A, B, C, D]
    assert body["lastUpdatedBefore"] == "2026-10-02T00:00:00Z"
    second = search(http, server.base_url, paginationToken=body["pagination"]["nextToken"]).json()
    assert [o["orderId"] for o in second["orders"]] == [E, G]
    assert "pagination" not in second
    # Without includedData an order is its core: id, times, channel and embedded items' products.
    assert set(body["orders"][0]) == {"orderId", "createdTime", "lastUpdatedTime", "salesChannel", "orderItems"}
    assert body["orders"][0]["orderItems"][1] == {
        "orderItemId": "11110000010001",
        "quantityOrdered": 2,
        "product": {"asin": "B0TEST0001", "title": "Test item 1", "sellerSku": "SKU-1"},
    }
    bad_token = search(http, server.base_url, paginationToken="garbage")
    assert bad_token.status_code == 400


def test_search_orders_filters(server: RunningServer, http: httpx.Client) -> None:
    def ids(**params: Any) -> list[str]:
        answer = search(http, server.base_url, **window_params(**params))
        assert answer.status_code == 200, answer.text
        return [o["orderId"] for o in answer.json()["orders"]]

    assert ids(marketplaceIds=US, fulfillmentStatuses="SHIPPED,CANCELLED") == [B, G]
    assert ids(marketplaceIds=US, fulfilledBy="AMAZON") == [B]
    assert ids() == [A, B, C, D, E, F, G]  # marketplaceIds is optional in 2026-01-01: every marketplace
    created = search(http, server.base_url, createdAfter="2026-10-01T02:00:00Z", createdBefore="2026-10-01T04:00:00Z")
    assert [o["orderId"] for o in created.json()["orders"]] == [C, D, E]
    assert created.json()["createdBefore"] == "2026-10-01T04:00:00Z"
    for params, message in (
        (window_params(fulfillmentStatuses="Shipped"), "Invalid fulfillmentStatuses: Shipped"),
        ({}, "Either createdAfter or lastUpdatedAfter must be specified"),
        (window_params(includedData="EVERYTHING"), "Invalid includedData: EVERYTHING"),
        (window_params(maxResultsPerPage=101), "maxResultsPerPage"),
    ):
        answer = search(http, server.base_url, **params)
        assert answer.status_code == 400
        assert message in answer.json()["errors"][0]["message"]


def test_one_discount_breakdown_tells_the_item_and_the_shipping_promotion_apart(
    server: RunningServer, http: httpx.Client
) -> None:
    """2026-01-01 has one DISCOUNT proceeds type; its detailedBreakdowns (subtypes ITEM, SHIPPING)
    carry what v0 calls PromotionDiscount and ShippingDiscount (the seed's 1.00 and 0.50 on E)."""
    answer = search(http, server.base_url, **window_params(marketplaceIds=US, includedData="PROCEEDS"))
    order = next(o for o in answer.json()["orders"] if o["orderId"] == E)
    breakdowns = order["orderItems"][0]["proceeds"]["breakdowns"]
    assert [b for b in breakdowns if b["type"] == "DISCOUNT"] == [
        {
            "type": "DISCOUNT",
            "subtotal": {"amount": "1.50", "currencyCode": "USD"},
            "detailedBreakdowns": [
                {"subtype": "ITEM", "value": {"amount": "1.00", "currencyCode": "USD"}},
                {"subtype": "SHIPPING", "value": {"amount": "0.50", "currencyCode": "USD"}},
            ],
        }
    ]


def test_buyer_data_is_withheld_as_on_v0(server: RunningServer, http: httpx.Client) -> None:
    params = window_params(marketplaceIds=US, includedData="BUYER,RECIPIENT", maxResultsPerPage=1)
    withheld = search(http, server.base_url, **params).json()["orders"][0]
    assert withheld["buyer"] == {}
    assert withheld["recipient"] == {
        "deliveryAddress": {"city": "Seattle", "stateOrRegion": "WA", "postalCode": "98101", "countryCode": "US"}
    }
    rdt = restricted_token(http, server.base_url, "/orders/2026-01-01/orders")
    shown = search(httpx.Client(headers={"x-amz-access-token": rdt}), server.base_url, **params).json()["orders"][0]
    assert shown["buyer"] == {"buyerName": "Jane Doe", "buyerEmail": "abc123@marketplace.amazon.com"}
    assert shown["recipient"]["deliveryAddress"]["addressLine1"] == "1 Main St"
    # A token for v0's path unlocks nothing on 2026's.
    v0_rdt = restricted_token(http, server.base_url, "/orders/v0/orders")
    other = search(httpx.Client(headers={"x-amz-access-token": v0_rdt}), server.base_url, **params)
    assert other.json()["orders"][0]["buyer"] == {}


def test_every_2026_answer_matches_the_model(
    server: RunningServer, http: httpx.Client, data_dir: Path, spapi_models: Path
) -> None:
    import jsonschema

    from sandbox.spapi.models import ORDERS_2026, schema_for

    def check(answer: httpx.Response, definition: str, status: int) -> dict:
        assert answer.status_code == status, answer.text
        jsonschema.Draft4Validator(schema_for(spapi_models, ORDERS_2026, definition)).validate(answer.json())
        return dict(answer.json())

    base, every = server.base_url, window_params(includedData=ALL_DATA)
    page = check(search(http, base, maxResultsPerPage=3, **every), "SearchOrdersResponse", 200)
    sizes = [len(page["orders"])]
    while "pagination" in page:  # 7 orders by 3: pages of 3, 3 and 1
        token = page["pagination"]["nextToken"]
        page = check(search(http, base, paginationToken=token, includedData=ALL_DATA), "SearchOrdersResponse", 200)
        sizes.append(len(page["orders"]))
    assert sizes == [3, 3, 1]
    rdt = restricted_token(http, base, "/orders/2026-01-01/orders")
    with httpx.Client(headers={"x-amz-access-token": rdt}) as restricted:
        check(search(restricted, base, **every), "SearchOrdersResponse", 200)
    check(search(http, base, createdAfter="2026-10-01T00:00:00Z", includedData=ALL_DATA), "SearchOrdersResponse", 200)
    for order_id in [A, B, C, D, E, F, G]:
        single = http.get(f"{base}/orders/2026-01-01/orders/{order_id}", params={"includedData": ALL_DATA})
        assert single.headers["x-amzn-RateLimit-Limit"] == "0.5"
        check(single, "GetOrderResponse", 200)
    check(http.get(f"{base}/orders/2026-01-01/orders/999-9999999-9999999"), "ErrorList", 404)
    check(search(http, base, fulfilledBy="FBA", **window_params()), "ErrorList", 400)
    check(httpx.get(f"{base}/orders/2026-01-01/orders", params=window_params()), "ErrorList", 403)
    # Amazon's pace (time_scale 1): the 21st searchOrders of a burst of 20 is throttled.
    with serve_in_thread(lambda url: create_app(data_dir, url, now=lambda: NOW)) as slow:
        slow_http = httpx.Client(headers={"x-amz-access-token": access_token(slow.base_url, credentials(data_dir))})
        statuses = [search(slow_http, slow.base_url, **window_params()).status_code for _ in range(21)]
        assert statuses == [200] * 20 + [429]
        check(search(slow_http, slow.base_url, **window_params()), "ErrorList", 429)
