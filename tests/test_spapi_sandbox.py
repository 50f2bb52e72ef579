"""The SP-API sandbox, driven over real HTTP by the unmodified python-amazon-sp-api client."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from _spapi_fixtures import DE, HTTP, NOW, SELLER, SETTLEMENT_V2, US, access_token, clients, listing, order, settlement
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base.exceptions import (
    SellingApiBadRequestException,
    SellingApiForbiddenException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
    SellingApiTemporarilyUnavailableException,
)

from sandbox.server import serve_in_thread
from sandbox.spapi import SpApiStore, create_app, credentials

BASE_TIME = datetime(2026, 9, 1, tzinfo=UTC)
US_ORDERS = [order(f"111-0000000-{n:07d}", BASE_TIME + timedelta(hours=n)) for n in range(25)]
AFN_SHIPPED = [
    order(f"111-0000001-{n:07d}", BASE_TIME + timedelta(hours=n, minutes=30), status="Shipped", channel="AFN")
    for n in range(3)
]
PENDING = order("111-0000002-0000001", BASE_TIME + timedelta(days=3), status="Pending", items=2)
BIG = order("111-0000003-0000001", BASE_TIME + timedelta(days=4), items=12)
SHIP_ME = order("111-0000004-0000001", BASE_TIME + timedelta(days=5), items=2)
PARTIAL = order("111-0000004-0000002", BASE_TIME + timedelta(days=5, hours=1), items=1)
BAD_SHIP = order("111-0000004-0000003", BASE_TIME + timedelta(days=5, hours=2), items=1)
DE_ORDERS = [
    order(f"302-0000000-{n:07d}", BASE_TIME + timedelta(hours=n), marketplace=DE, currency="EUR") for n in range(3)
]
NOTE = "Rabatt réduction été"  # non-ASCII, encodable in cp1252
DOCS = [settlement(f"2600000000{n}", 1 + n, marketplace=US if n % 2 == 0 else DE, note=NOTE) for n in range(6)]
OLD_DOC = settlement("25000000001", 1, note="")  # created in September, then moved > 90 days back:
OLD_DOC = type(OLD_DOC)(**{**OLD_DOC.__dict__, "created_time": NOW - timedelta(days=95)})
LISTINGS = [listing("SKU-A", US), listing("SKU-A", DE, quantity=3, price="11.99"), listing("SKU/B 1", US)]
ALL_ORDERS = [*US_ORDERS, *AFN_SHIPPED, PENDING, BIG, SHIP_ME, PARTIAL, BAD_SHIP, *DE_ORDERS]


def seed_default(data_dir: Path) -> None:
    store = SpApiStore(data_dir)
    store.seed(ALL_ORDERS, [*DOCS, OLD_DOC], LISTINGS, SELLER)
    store.close()


@pytest.fixture(autouse=True)
def _clean_client_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import sp_api.auth.access_token_client as token_module

    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    monkeypatch.delenv("AWS_ENV", raising=False)
    token_module.cache.clear()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("spapi")
    seed_default(data_dir)
    with serve_in_thread(lambda url: create_app(data_dir, url, rate_limits=False, now=lambda: NOW)) as server:
        server.data_dir = data_dir  # type: ignore[attr-defined]  # a note for the test on the running server
        yield server


@pytest.fixture(scope="module")
def api(sandbox):
    return clients(sandbox.base_url, credentials(sandbox.data_dir))


# ---- LWA and access tokens ----------------------------------------------------------------


def test_credentials_are_generated_per_data_folder_and_persist(tmp_path: Path) -> None:
    first = credentials(tmp_path / "a")
    assert credentials(tmp_path / "a") == first
    assert credentials(tmp_path / "b")["refresh_token"] != first["refresh_token"]
    assert set(first) == {"refresh_token", "lwa_app_id", "lwa_client_secret"}
    assert first["refresh_token"] not in repr(SpApiStore(tmp_path / "a"))


def test_lwa_rejects_wrong_client_and_unknown_refresh_token(sandbox) -> None:
    good = credentials(sandbox.data_dir)
    with pytest.raises(AuthorizationError) as wrong_client:
        clients(sandbox.base_url, dict(good, lwa_client_secret="not-the-secret")).orders.get_order(
            "111-0000000-0000000"
        )
    assert (wrong_client.value.error_code, wrong_client.value.status_code) == ("invalid_client", 401)
    with pytest.raises(AuthorizationError) as bad_grant:
        clients(sandbox.base_url, dict(good, refresh_token="Atzr|unknown")).orders.get_order("111-0000000-0000000")
    assert (bad_grant.value.error_code, bad_grant.value.status_code) == ("invalid_grant", 400)
    answer = HTTP.post(f"{sandbox.base_url}/auth/o2/token", data={"grant_type": "refresh_token"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_token_answer_is_an_hour_bearer(sandbox) -> None:
    creds = credentials(sandbox.data_dir)
    answer = HTTP.post(
        f"{sandbox.base_url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": creds["refresh_token"],
            "client_id": creds["lwa_app_id"],
            "client_secret": creds["lwa_client_secret"],
        },
    )
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    assert body["access_token"].startswith("Atza|")
    assert answer.headers["cache-control"] == "no-store"


def test_calls_without_valid_token_are_denied(sandbox, tmp_path: Path) -> None:
    answer = HTTP.get(f"{sandbox.base_url}/orders/v0/orders/111-0000000-0000000")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "Unauthorized"
    assert answer.json()["errors"][0]["message"] == "Access to requested resource is denied."
    assert "x-amzn-RateLimit-Limit" not in answer.headers
    # An expired token (the client caches it for 3200 s and sends it anyway) is denied too.
    data_dir = tmp_path / "expiry"
    seed_default(data_dir)
    with serve_in_thread(lambda url: create_app(data_dir, url, rate_limits=False, now=lambda: NOW)) as server:
        orders = clients(server.base_url, credentials(data_dir)).orders
        assert orders.get_order("111-0000000-0000000").payload["AmazonOrderId"] == "111-0000000-0000000"
        assert HTTP.post(f"{server.base_url}/sandbox/tokens/expire").json()["expired"] >= 1
        with pytest.raises(SellingApiForbiddenException) as denied:
            orders.get_order("111-0000000-0000000")
        assert denied.value.amzn_code == "Unauthorized"


# ---- Orders v0 ------------------------------------------------------------------------------


def test_get_orders_pages_with_next_token_and_filters_marketplace(api) -> None:
    seen: list[str] = []
    page = api.orders.get_orders(
        CreatedAfter="2026-09-01T00:00:00Z", CreatedBefore="2026-09-02T00:00:00Z", MaxResultsPerPage=10
    )
    pages = 1
    seen += [o["AmazonOrderId"] for o in page.payload["Orders"]]
    while page.next_token:
        page = api.orders.get_orders(NextToken=page.next_token)
        seen += [o["AmazonOrderId"] for o in page.payload["Orders"]]
        pages += 1
    # Created from Sept 1 00:00 to Sept 2 00:00 inclusive ("before (or at)"): the 25 US orders at
    # hours 0..24 and the 3 AFN ones; DE orders are filtered out by the client's marketplace.
    expected = sorted(
        [o["AmazonOrderId"] for o, _ in US_ORDERS + AFN_SHIPPED],
        key=lambda i: next(o["PurchaseDate"] for o, _ in ALL_ORDERS if o["AmazonOrderId"] == i),
    )
    assert seen == expected
    assert pages == 3
    assert page.payload["CreatedBefore"] == "2026-09-02T00:00:00Z"


def test_get_orders_filters_status_channel_and_marketplace(sandbox, api) -> None:
    afn = api.orders.get_orders(CreatedAfter="2026-08-01T00:00:00Z", FulfillmentChannels=["AFN"])
    assert sorted(o["AmazonOrderId"] for o in afn.payload["Orders"]) == sorted(
        o["AmazonOrderId"] for o, _ in AFN_SHIPPED
    )
    pending = api.orders.get_orders(CreatedAfter="2026-08-01T00:00:00Z", OrderStatuses="Pending")
    assert [o["AmazonOrderId"] for o in pending.payload["Orders"]] == ["111-0000002-0000001"]
    de = clients(sandbox.base_url, credentials(sandbox.data_dir), DE).orders
    found = de.get_orders(CreatedAfter="2026-08-01T00:00:00Z").payload["Orders"]
    assert sorted(o["AmazonOrderId"] for o in found) == sorted(o["AmazonOrderId"] for o, _ in DE_ORDERS)
    both = api.orders.get_orders(
        CreatedAfter="2026-09-01T00:00:00Z", CreatedBefore="2026-09-01T02:10:00Z", MarketplaceIds=[US, DE]
    ).payload["Orders"]
    assert len(both) == 3 + 3 + 2  # US hours 0-2, DE hours 0-2, AFN 0:30 and 1:30
    by_update = api.orders.get_orders(
        LastUpdatedAfter="2026-09-01T00:30:00Z", LastUpdatedBefore="2026-09-01T02:00:00Z"
    ).payload
    assert [o["AmazonOrderId"] for o in by_update["Orders"]] == [
        "111-0000000-0000000",
        "111-0000001-0000000",
        "111-0000000-0000001",
    ]
    assert "LastUpdatedBefore" in by_update
    picked = api.orders.get_orders(
        CreatedAfter="2026-08-01T00:00:00Z",
        AmazonOrderIds=["111-0000000-0000003", "111-0000001-0000002", "302-0000000-0000000"],
    )
    assert sorted(o["AmazonOrderId"] for o in picked.payload["Orders"]) == [
        "111-0000000-0000003",
        "111-0000001-0000002",
    ]


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({}, "CreatedAfter or LastUpdatedAfter"),
        ({"CreatedAfter": "yesterday"}, "CreatedAfter"),
        ({"CreatedAfter": "2026-09-01T00:00:00Z", "MaxResultsPerPage": 101}, "MaxResultsPerPage"),
        ({"CreatedAfter": "2026-09-01T00:00:00Z", "CreatedBefore": NOW.isoformat()}, "two minutes"),
        ({"CreatedAfter": "2026-09-01T00:00:00Z", "LastUpdatedAfter": "2026-09-01T00:00:00Z"}, "cannot be set"),
        ({"CreatedAfter": "2026-09-01T00:00:00Z", "OrderStatuses": "Lost"}, "OrderStatuses"),
        ({"NextToken": "not-a-token"}, "NextToken"),
    ],
)
def test_get_orders_rejects_bad_input(api, params: dict, fragment: str) -> None:
    with pytest.raises(SellingApiBadRequestException) as bad:
        api.orders.get_orders(**params)
    assert bad.value.amzn_code == "InvalidInput"
    assert fragment in bad.value.message


def test_get_order_and_items_paging_and_pending_prices(api) -> None:
    assert api.orders.get_order("111-0000003-0000001").payload["NumberOfItemsUnshipped"] == 24
    first = api.orders.get_order_items("111-0000003-0000001")
    assert len(first.payload["OrderItems"]) == 10 and first.next_token
    second = api.orders.get_order_items("111-0000003-0000001", NextToken=first.next_token)
    assert second.next_token is None
    ids = [i["OrderItemId"] for i in first.payload["OrderItems"] + second.payload["OrderItems"]]
    assert ids == [i["OrderItemId"] for i in BIG[1]]
    pending_items = api.orders.get_order_items("111-0000002-0000001").payload["OrderItems"]
    assert len(pending_items) == 2 and all("ItemPrice" not in i for i in pending_items)
    with pytest.raises(SellingApiNotFoundException):
        api.orders.get_order("999-0000000-0000000")


def test_confirm_shipment_round_trip(api) -> None:
    order_id = "111-0000004-0000001"
    items = SHIP_ME[1]
    package = {
        "packageReferenceId": "1",
        "carrierCode": "UPS",
        "carrierName": "UPS",
        "trackingNumber": "1Z999",
        "shipDate": "2026-09-07T10:00:00Z",
        "orderItems": [{"orderItemId": items[0]["OrderItemId"], "quantity": 2}],
    }
    answer = api.orders.confirm_shipment(order_id, marketplaceId=US, packageDetail=package, extraKey="ignored")
    assert answer.payload == {"status_code": 204}
    partly = api.orders.get_order(order_id).payload
    assert (partly["OrderStatus"], partly["NumberOfItemsShipped"], partly["NumberOfItemsUnshipped"]) == (
        "PartiallyShipped",
        2,
        2,
    )
    second = dict(package, packageReferenceId="2", orderItems=[{"orderItemId": items[1]["OrderItemId"], "quantity": 2}])
    api.orders.confirm_shipment(order_id, marketplaceId=US, packageDetail=second)
    shipped = api.orders.get_order(order_id).payload
    assert (shipped["OrderStatus"], shipped["NumberOfItemsShipped"], shipped["NumberOfItemsUnshipped"]) == (
        "Shipped",
        4,
        0,
    )
    assert [i["QuantityShipped"] for i in api.orders.get_order_items(order_id).payload["OrderItems"]] == [2, 2]
    with pytest.raises(SellingApiBadRequestException) as again:  # already shipped
        api.orders.confirm_shipment(order_id, marketplaceId=US, packageDetail=package)
    assert "Shipped" in again.value.message


def _package(item_id: str, **changes) -> dict:
    base = {
        "packageReferenceId": "1",
        "carrierCode": "UPS",
        "trackingNumber": "1Z1",
        "shipDate": "2026-09-07T10:00:00Z",
        "orderItems": [{"orderItemId": item_id, "quantity": 1}],
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"trackingNumber": None}, "trackingNumber"),
        ({"carrierCode": ""}, "carrierCode"),
        ({"packageReferenceId": "abc"}, "positive numeric"),
        ({"shipDate": "next week"}, "shipDate"),
        ({"orderItems": []}, "orderItems"),
        ({"orderItems": [{"orderItemId": "00000000000000", "quantity": 1}]}, "not an item of order"),
        ({"orderItems": [{"orderItemId": "ITEM", "quantity": 3}]}, "exceeds the unshipped quantity 2"),
        ({"orderItems": [{"orderItemId": "ITEM", "quantity": 0}]}, "positive integer"),
    ],
)
def test_confirm_shipment_rejects_bad_package(api, changes: dict, fragment: str) -> None:
    item_id = BAD_SHIP[1][0]["OrderItemId"]
    if "orderItems" in changes and changes["orderItems"] and changes["orderItems"][0]["orderItemId"] == "ITEM":
        changes = {"orderItems": [dict(changes["orderItems"][0], orderItemId=item_id)]}
    with pytest.raises(SellingApiBadRequestException) as bad:
        api.orders.confirm_shipment("111-0000004-0000003", marketplaceId=US, packageDetail=_package(item_id, **changes))
    assert bad.value.amzn_code == "InvalidInput"
    assert fragment in bad.value.message
    assert api.orders.get_order("111-0000004-0000003").payload["OrderStatus"] == "Unshipped"


def test_confirm_shipment_refuses_afn_and_wrong_marketplace(api) -> None:
    afn_id, afn_items = AFN_SHIPPED[0][0]["AmazonOrderId"], AFN_SHIPPED[0][1]
    with pytest.raises(SellingApiBadRequestException):
        api.orders.confirm_shipment(afn_id, marketplaceId=US, packageDetail=_package(afn_items[0]["OrderItemId"]))
    with pytest.raises(SellingApiBadRequestException) as wrong:
        api.orders.confirm_shipment(
            "111-0000004-0000003", marketplaceId=DE, packageDetail=_package(BAD_SHIP[1][0]["OrderItemId"])
        )
    assert "marketplace" in wrong.value.message


def test_buyer_pii_needs_a_restricted_data_token_by_default(tmp_path: Path, sandbox, api) -> None:
    orders = api.orders
    plain = orders.get_orders(CreatedAfter="2026-09-01T00:00:00Z", MaxResultsPerPage=1).payload["Orders"][0]
    # Name, street and phone withheld; the fixture's address is Jane Doe, 1 Main St, +1 206 555 0100.
    assert plain["ShippingAddress"] == {
        "City": "Seattle",
        "StateOrRegion": "WA",
        "PostalCode": "98101",
        "CountryCode": "US",
    }
    assert plain["BuyerInfo"] == {}
    full = orders.get_orders(
        CreatedAfter="2026-09-01T00:00:00Z", MaxResultsPerPage=1, RestrictedResources=["buyerInfo", "shippingAddress"]
    ).payload["Orders"][0]
    assert (full["ShippingAddress"]["AddressLine1"], full["BuyerInfo"]["BuyerName"]) == ("1 Main St", "Jane Doe")
    one = orders.get_order("111-0000000-0000001", RestrictedResources=["shippingAddress"]).payload
    assert one["ShippingAddress"]["Name"] == "Jane Doe" and one["BuyerInfo"] == {}
    # The RDT was for that path only; the next plain call is restricted again.
    assert "Name" not in orders.get_order("111-0000000-0000001").payload["ShippingAddress"]
    # getOrderAddress / getOrderBuyerInfo: an RDT for the path itself (no dataElements) unlocks them.
    address = orders.get_order_address("111-0000000-0000001").payload
    assert address == {
        "AmazonOrderId": "111-0000000-0000001",
        "ShippingAddress": {"City": "Seattle", "StateOrRegion": "WA", "PostalCode": "98101", "CountryCode": "US"},
    }
    assert orders.get_order_buyer_info("111-0000000-0000001").payload == {"AmazonOrderId": "111-0000000-0000001"}
    rdt = api.tokens.create_restricted_data_token(
        restrictedResources=[
            {"method": "GET", "path": "/orders/v0/orders/{orderId}/address"},
            {"method": "GET", "path": "/orders/v0/orders/111-0000000-0000001/buyerInfo"},
        ]
    ).payload
    assert rdt["expiresIn"] == 3600
    with_rdt = clients(
        sandbox.base_url, credentials(sandbox.data_dir), restricted_data_token=rdt["restrictedDataToken"]
    ).orders
    assert with_rdt.get_order_address("111-0000000-0000002").payload["ShippingAddress"]["Phone"] == "+1 206 555 0100"
    assert with_rdt.get_order_buyer_info("111-0000000-0000001").payload["BuyerName"] == "Jane Doe"
    # buyerInfo was granted for order ...0001 only.
    assert "BuyerName" not in with_rdt.get_order_buyer_info("111-0000000-0000002").payload
    seed_default(tmp_path)
    with serve_in_thread(
        lambda url: create_app(tmp_path, url, rate_limits=False, now=lambda: NOW, restrict_pii=False)
    ) as server:
        whole = clients(server.base_url, credentials(tmp_path)).orders.get_order("111-0000000-0000000").payload
        assert whole["ShippingAddress"]["Name"] == "Jane Doe"


def test_restricted_data_token_request_is_checked_against_the_model(sandbox) -> None:
    token = access_token(sandbox.base_url, credentials(sandbox.data_dir))
    url = f"{sandbox.base_url}/tokens/2021-03-01/restrictedDataToken"
    headers = {"x-amz-access-token": token}
    cases = [
        ({}, "restrictedResources"),
        ({"restrictedResources": [{"method": "PATCH", "path": "/orders/v0/orders"}]}, "method"),
        (
            {"restrictedResources": [{"method": "GET", "path": "/reports/2021-06-30/reports"}]},
            "not a restricted operation",
        ),
        (
            {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["creditCard"]}]},
            "dataElements",
        ),
        ({"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders"}] * 51}, "at most 50"),
    ]
    for body, fragment in cases:
        answer = HTTP.post(url, json=body, headers=headers)
        assert answer.status_code == 400 and fragment in answer.json()["errors"][0]["message"], (body, answer.text)


# ---- Reports 2021-06-30 ---------------------------------------------------------------------


def _all_settlement_reports(api, **filters) -> list[dict]:
    page = api.reports.get_reports(reportTypes=[SETTLEMENT_V2], pageSize=4, **filters)
    reports = list(page.payload["reports"])
    while page.next_token:
        page = api.reports.get_reports(nextToken=page.next_token)
        reports += page.payload["reports"]
    return reports


def test_settlement_reports_are_listed_newest_first_with_paging(api) -> None:
    reports = _all_settlement_reports(api, marketplaceIds=[US, DE])
    assert len(reports) == 6  # OLD_DOC is older than the 90-day retention
    assert [r["createdTime"] for r in reports] == sorted((r["createdTime"] for r in reports), reverse=True)
    newest = DOCS[-1]
    assert reports[0]["dataStartTime"] == newest.start.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert reports[0]["marketplaceIds"] == [newest.marketplace_id]
    assert all(r["processingStatus"] == "DONE" and r["reportDocumentId"] for r in reports)
    # Amazon ignores marketplaceIds for settlement reports: the client's own (US) id, or DE alone,
    # still lists all six (three US, three DE).
    assert len(_all_settlement_reports(api)) == 6
    assert len(_all_settlement_reports(api, marketplaceIds=[DE])) == 6
    assert api.reports.get_report(reports[0]["reportId"]).payload["reportId"] == reports[0]["reportId"]


def test_next_token_must_be_the_only_parameter(api) -> None:
    page = api.reports.get_reports(reportTypes=[SETTLEMENT_V2], pageSize=1)
    with pytest.raises(SellingApiBadRequestException) as bad:
        api.reports.get_reports(nextToken=page.next_token, pageSize=1)
    assert "only parameter" in bad.value.message
    with pytest.raises(SellingApiBadRequestException):
        api.reports.get_reports(pageSize=1)  # neither reportTypes nor nextToken


def test_every_download_variant_decodes_to_the_document(sandbox, api) -> None:
    reports = _all_settlement_reports(api, marketplaceIds=[US, DE])
    by_start = {d.start.strftime("%Y-%m-%dT%H:%M:%S+00:00"): d for d in DOCS}
    variants = set()
    for report in reports:
        expected = by_start[report["dataStartTime"]].text
        meta = api.reports.get_report_document(report["reportDocumentId"]).payload
        assert meta["url"].startswith(sandbox.base_url + "/")  # absolute, from base_url not the Host header
        raw = HTTP.get(meta["url"])
        assert "content-encoding" not in raw.headers
        charset = raw.headers["content-type"].partition("charset=")[2]
        compression = meta.get("compressionAlgorithm", "")
        variants.add((charset, compression))
        body = gzip.decompress(raw.content) if compression == "GZIP" else raw.content
        assert body.decode("cp1252" if charset == "Cp1252" else "utf-8") == expected
        downloaded = api.reports.get_report_document(report["reportDocumentId"], download=True).payload["document"]
        if charset:
            assert downloaded == expected
            assert NOTE in downloaded
        else:  # no charset: the client falls back to ISO-8859-1, so UTF-8 bytes come out garbled
            assert downloaded.encode("iso-8859-1").decode("utf-8") == expected
            assert NOTE not in downloaded
    assert variants == {(c, z) for c in ("utf-8", "Cp1252", "") for z in ("", "GZIP")}


def test_document_url_expires_and_is_signed(sandbox, api) -> None:
    report = _all_settlement_reports(api)[0]
    url = api.reports.get_report_document(report["reportDocumentId"]).payload["url"]
    assert HTTP.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
    later = NOW + timedelta(minutes=6)
    with serve_in_thread(lambda u: create_app(sandbox.data_dir, u, rate_limits=False, now=lambda: later)) as other:
        moved = url.replace(sandbox.base_url, other.base_url)
        assert HTTP.get(moved).status_code == 403


def test_create_report_refuses_settlement_types(api) -> None:
    with pytest.raises(SellingApiBadRequestException) as refused:
        api.reports.create_report(reportType=SETTLEMENT_V2, marketplaceIds=[US])
    assert refused.value.amzn_code == "InvalidInput"
    assert refused.value.message == "Request for report type 1118 is not allowed at this time"
    other = api.reports.create_report(reportType="GET_MERCHANT_LISTINGS_ALL_DATA", marketplaceIds=[US])
    assert api.reports.get_report(other.payload["reportId"]).payload["processingStatus"] == "CANCELLED"


def test_admin_adds_a_report_from_its_text(sandbox, api) -> None:
    doc = settlement("27000000001", 20, marketplace=DE, note=NOTE)
    answer = HTTP.post(
        f"{sandbox.base_url}/sandbox/reports", json={"text": doc.text, "charset": "Cp1252", "compression": "GZIP"}
    )
    assert answer.status_code == 201, answer.text
    report = api.reports.get_report(answer.json()["reportId"]).payload
    assert report["marketplaceIds"] == [DE]  # from the Amazon.de rows
    assert report["dataStartTime"] == "2026-09-20T14:00:00+00:00"  # EU date format in the summary row
    meta = api.reports.get_report_document(report["reportDocumentId"], download=True)
    assert meta.payload["compressionAlgorithm"] == "GZIP"
    assert meta.payload["document"] == doc.text
    bad = HTTP.post(f"{sandbox.base_url}/sandbox/reports", json={"text": "only one line"})
    assert bad.status_code == 400 and "summary row" in bad.json()["error"]


# ---- Listings Items 2021-08-01 --------------------------------------------------------------


def _quantity_patch(quantity: object) -> dict:
    return {
        "op": "replace",
        "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
    }


def _price_patch(price: float, currency: str = "USD", marketplace: str = US) -> dict:
    return {
        "op": "replace",
        "path": "/attributes/purchasable_offer",
        "value": [
            {
                "marketplace_id": marketplace,
                "currency": currency,
                "our_price": [{"schedule": [{"value_with_tax": price}]}],
            }
        ],
    }


def test_listing_patch_and_get_round_trip(api) -> None:
    sku = "SKU/B 1"  # percent-encoded in the path by the client
    answer = api.listings.patch_listings_item(
        SELLER,
        sku,
        marketplaceIds=[US],
        body={"productType": "HOME", "patches": [_quantity_patch(42), _price_patch(15.49)], "extra": True},
    )
    assert (answer.payload["status"], answer.payload["issues"], answer.payload["sku"]) == ("ACCEPTED", [], sku)
    item = api.listings.get_listings_item(
        SELLER, sku, marketplaceIds=[US], includedData="summaries,offers,fulfillmentAvailability,attributes"
    ).payload
    assert item["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 42}]
    assert item["offers"][0]["price"] == {"currencyCode": "USD", "amount": "15.49"}
    assert item["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"]
    assert item["attributes"]["item_name"][0]["value"] == "Listing SKU/B 1"
    api.listings.patch_listings_item(
        SELLER,
        sku,
        marketplaceIds=[US],
        body={
            "productType": "HOME",
            "patches": [
                {
                    "op": "merge",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 0}],
                }
            ],
        },
    )
    item = api.listings.get_listings_item(SELLER, sku, marketplaceIds=[US], includedData="summaries,offers").payload
    assert item["summaries"][0]["status"] == ["DISCOVERABLE"]
    assert item["offers"][0]["price"]["amount"] == "15.49"  # the price patch stays


def test_listing_patch_preview_does_not_store(api) -> None:
    answer = api.listings.patch_listings_item(
        SELLER,
        "SKU-A",
        marketplaceIds=[DE],
        mode="VALIDATION_PREVIEW",
        includedData="issues,identifiers",
        body={"productType": "HOME", "patches": [_quantity_patch(99)]},
    )
    assert answer.payload["status"] == "VALID"
    assert answer.payload["identifiers"] == [{"marketplaceId": DE, "asin": "B0LIST0001"}]
    item = api.listings.get_listings_item(SELLER, "SKU-A", marketplaceIds=[DE], includedData="fulfillmentAvailability")
    assert item.payload["fulfillmentAvailability"][0]["quantity"] == 3


@pytest.mark.parametrize(
    "patch, attribute",
    [
        (_quantity_patch(-1), "fulfillment_availability"),
        (_quantity_patch("ten"), "fulfillment_availability"),
        (_price_patch(0), "purchasable_offer"),
        (_price_patch(9.99, currency="EUR"), "purchasable_offer"),
    ],
)
def test_listing_patch_with_bad_values_is_invalid(api, patch: dict, attribute: str) -> None:
    answer = api.listings.patch_listings_item(
        SELLER, "SKU-A", marketplaceIds=[US], body={"productType": "HOME", "patches": [patch]}
    )
    assert answer.payload["status"] == "INVALID"
    assert answer.payload["issues"][0]["attributeNames"] == [attribute]
    assert answer.payload["issues"][0]["severity"] == "ERROR"
    item = api.listings.get_listings_item(
        SELLER, "SKU-A", marketplaceIds=[US], includedData="offers,fulfillmentAvailability"
    )
    assert item.payload["fulfillmentAvailability"][0]["quantity"] == 5
    assert item.payload["offers"][0]["price"]["amount"] == "12.99"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"patches": [_quantity_patch(1)]}, "productType"),
        ({"productType": "HOME", "patches": []}, "patches"),
        ({"productType": "HOME", "patches": [dict(_quantity_patch(1), op="move")]}, "op must be one of"),
        (
            {
                "productType": "HOME",
                "patches": [dict(_quantity_patch(1), path="/attributes/fulfillment_availability/0")],
            },
            "path must look like",
        ),
        ({"productType": "HOME", "patches": [dict(_quantity_patch(1), value={"quantity": 1})]}, "array of objects"),
    ],
)
def test_listing_patch_malformed_is_400(api, body: dict, fragment: str) -> None:
    with pytest.raises(SellingApiBadRequestException) as bad:
        api.listings.patch_listings_item(SELLER, "SKU-A", marketplaceIds=[US], body=body)
    assert fragment in bad.value.message


def test_unknown_listing_is_404_and_other_seller_is_denied(api) -> None:
    with pytest.raises(SellingApiNotFoundException):
        api.listings.get_listings_item(SELLER, "NO-SUCH-SKU", marketplaceIds=[US])
    with pytest.raises(SellingApiForbiddenException):
        api.listings.get_listings_item("A9OTHERSELLER", "SKU-A", marketplaceIds=[US])


# ---- rate limits, faults, persistence ---------------------------------------------------------


def test_burst_exhausted_is_throttled_and_refills_with_time_scale(tmp_path: Path) -> None:
    seed_default(tmp_path)
    with serve_in_thread(lambda url: create_app(tmp_path, url, now=lambda: NOW)) as server:
        orders = clients(server.base_url, credentials(tmp_path)).orders
        for _ in range(20):  # getOrders: burst 20
            assert orders.get_orders(CreatedAfter="2026-09-01T00:00:00Z").rate_limit == "0.0167"
        with pytest.raises(SellingApiRequestThrottledException) as throttled:
            orders.get_orders(CreatedAfter="2026-09-01T00:00:00Z")
        assert throttled.value.amzn_code == "QuotaExceeded"
        assert throttled.value.message == "You exceeded your quota for the requested resource."
        assert "x-amzn-RateLimit-Limit" not in throttled.value.headers
        orders.get_order("111-0000000-0000000")  # other operations have their own bucket


@pytest.mark.parametrize(
    "operation, rate, burst",
    [
        ("getOrders", 0.0167, 20),
        ("getOrder", 0.5, 30),
        ("getReportDocument", 0.0167, 15),
        ("patchListingsItem", 5.0, 5),
    ],
)
def test_buckets_refill_at_amazons_rate_times_time_scale(operation: str, rate: float, burst: int) -> None:
    from sandbox.spapi.ratelimit import RateLimiter

    clock = [1000.0]
    limiter = RateLimiter(time_scale=100, clock=lambda: clock[0])
    assert all(limiter.allow(operation, "app") for _ in range(burst))
    assert not limiter.allow(operation, "app")
    assert limiter.allow(operation, "other-app")  # buckets are per caller
    clock[0] += 0.9 / (rate * 100)  # not quite one token back
    assert not limiter.allow(operation, "app")
    clock[0] += 0.2 / (rate * 100)
    assert limiter.allow(operation, "app")
    assert not limiter.allow(operation, "app")


def test_injected_faults(sandbox, api) -> None:
    arm = HTTP.post(f"{sandbox.base_url}/sandbox/faults", json={"status": 503, "count": 1, "operations": ["getOrder"]})
    assert arm.status_code == 200
    api.orders.get_order_items("111-0000000-0000000")  # not targeted
    with pytest.raises(SellingApiTemporarilyUnavailableException):
        api.orders.get_order("111-0000000-0000000")
    assert api.orders.get_order("111-0000000-0000000").payload["AmazonOrderId"] == "111-0000000-0000000"
    # Without a body the client reports an empty success (its known gap).
    HTTP.post(f"{sandbox.base_url}/sandbox/faults", json={"status": 429, "count": 2, "with_body": False})
    assert api.orders.get_order("111-0000000-0000000").payload == {}
    HTTP.delete(f"{sandbox.base_url}/sandbox/faults")
    assert api.orders.get_order("111-0000000-0000000").payload["AmazonOrderId"] == "111-0000000-0000000"
    bad = HTTP.post(f"{sandbox.base_url}/sandbox/faults", json={"status": 418, "count": 1})
    assert bad.status_code == 400 and "status" in bad.json()["error"]


def test_state_persists_across_apps_and_seeding_is_idempotent(tmp_path: Path) -> None:
    seed_default(tmp_path)
    with serve_in_thread(lambda url: create_app(tmp_path, url, rate_limits=False, now=lambda: NOW)) as server:
        orders = clients(server.base_url, credentials(tmp_path)).orders
        item = PARTIAL[1][0]
        orders.confirm_shipment(
            PARTIAL[0]["AmazonOrderId"], marketplaceId=US, packageDetail=_package(item["OrderItemId"])
        )
    seed_default(tmp_path)  # again: must not undo the shipment
    with serve_in_thread(lambda url: create_app(tmp_path, url, rate_limits=False, now=lambda: NOW)) as server:
        orders = clients(server.base_url, credentials(tmp_path)).orders
        assert orders.get_order(PARTIAL[0]["AmazonOrderId"]).payload["OrderStatus"] == "PartiallyShipped"
        state = HTTP.get(f"{server.base_url}/sandbox/state").json()
    assert state["orders"] == len(ALL_ORDERS)
    assert len(state["reports"]) == len(DOCS) + 1
    assert state["shipments"][0]["amazonOrderId"] == PARTIAL[0]["AmazonOrderId"]
    assert "refresh_token" not in str(state) and credentials(tmp_path)["refresh_token"] not in str(state)


def test_generated_world_loads(tmp_path: Path) -> None:
    generator = pytest.importorskip("sandbox.generator", reason="engineer F's generator not present")
    world = generator.build_world(3, orders=40, start=(NOW - timedelta(days=50)).date(), days=30)
    from sandbox.spapi import seed_world

    seed_world(tmp_path, world)
    with serve_in_thread(lambda url: create_app(tmp_path, url, rate_limits=False, now=lambda: NOW)) as server:
        creds = credentials(tmp_path)
        markets = sorted({o["MarketplaceId"] for o, _ in world.orders_v0()})
        api = clients(server.base_url, creds, markets[0])
        fetched = api.orders.get_orders(CreatedAfter="2026-01-01T00:00:00Z", MarketplaceIds=markets)
        ids = [o["AmazonOrderId"] for o in fetched.payload["Orders"]]
        while fetched.next_token:
            fetched = api.orders.get_orders(NextToken=fetched.next_token)
            ids += [o["AmazonOrderId"] for o in fetched.payload["Orders"]]
        assert sorted(ids) == sorted(o["AmazonOrderId"] for o, _ in world.orders_v0())
        documents = world.settlement_documents()
        reports = _all_settlement_reports(api, marketplaceIds=sorted({d.marketplace_id for d in documents}))
        assert len(reports) == len(documents)
        first = api.reports.get_report_document(reports[-1]["reportDocumentId"]).payload
        raw = HTTP.get(first["url"]).content
        raw = gzip.decompress(raw) if first.get("compressionAlgorithm") else raw
        assert raw.split(b"\t", 1)[0] == b"settlement-id"


# ---- schema conformance of every operation -----------------------------------------------------


def _schema_cases(base: str, seller: str, report_id: str, document_id: str) -> list[tuple[str, str, str, dict]]:
    """(operation, method, url, kwargs) pairs: a success and an error for each operation."""
    o, r, l = f"{base}/orders/v0/orders", f"{base}/reports/2021-06-30", f"{base}/listings/2021-08-01/items/{seller}"
    o26 = f"{base}/orders/2026-01-01/orders"
    good_package = _package(BAD_SHIP[1][0]["OrderItemId"])
    return [
        (
            "createRestrictedDataToken",
            "POST",
            f"{base}/tokens/2021-03-01/restrictedDataToken",
            {
                "json": {
                    "restrictedResources": [
                        {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo", "shippingAddress"]}
                    ]
                }
            },
        ),
        ("createRestrictedDataToken", "POST", f"{base}/tokens/2021-03-01/restrictedDataToken", {"json": {}}),
        ("getOrders", "GET", o, {"params": {"MarketplaceIds": US, "CreatedAfter": "2026-09-01T00:00:00Z"}}),
        ("getOrders", "GET", o, {"params": {"MarketplaceIds": US}}),
        ("getOrder", "GET", f"{o}/111-0000000-0000000", {}),
        ("getOrder", "GET", f"{o}/999-9999999-9999999", {}),
        ("getOrderItems", "GET", f"{o}/111-0000003-0000001/orderItems", {}),
        ("getOrderAddress", "GET", f"{o}/111-0000000-0000000/address", {}),
        ("getOrderAddress", "GET", f"{o}/999-9999999-9999999/address", {}),
        ("getOrderBuyerInfo", "GET", f"{o}/111-0000000-0000000/buyerInfo", {}),
        ("getOrderBuyerInfo", "GET", f"{o}/999-9999999-9999999/buyerInfo", {}),
        ("getOrderItems", "GET", f"{o}/111-0000003-0000001/orderItems", {"params": {"NextToken": "garbage"}}),
        # Orders 2026-01-01 (tests/test_orders_api_2026.py validates every shape it serves)
        ("searchOrders", "GET", f"{o26}", {"params": {"marketplaceIds": US, "createdAfter": "2026-09-01T00:00:00Z"}}),
        ("searchOrders", "GET", f"{o26}", {"params": {"marketplaceIds": US}}),
        ("getOrder2026", "GET", f"{o26}/111-0000000-0000000", {"params": {"includedData": "FULFILLMENT"}}),
        ("getOrder2026", "GET", f"{o26}/999-9999999-9999999", {}),
        (
            "confirmShipment",
            "POST",
            f"{o}/111-0000004-0000003/shipmentConfirmation",
            {"json": {"marketplaceId": US, "packageDetail": dict(good_package, trackingNumber="")}},
        ),
        ("getReports", "GET", f"{r}/reports", {"params": {"reportTypes": SETTLEMENT_V2, "pageSize": 2}}),
        ("getReports", "GET", f"{r}/reports", {"params": {"reportTypes": SETTLEMENT_V2, "pageSize": 0}}),
        ("getReport", "GET", f"{r}/reports/{report_id}", {}),
        ("getReport", "GET", f"{r}/reports/0", {}),
        (
            "createReport",
            "POST",
            f"{r}/reports",
            {"json": {"reportType": "GET_FLAT_FILE_OPEN_LISTINGS_DATA", "marketplaceIds": [US]}},
        ),
        ("createReport", "POST", f"{r}/reports", {"json": {"reportType": SETTLEMENT_V2, "marketplaceIds": [US]}}),
        ("getReportDocument", "GET", f"{r}/documents/{document_id}", {}),
        ("getReportDocument", "GET", f"{r}/documents/nope", {}),
        (
            "getListingsItem",
            "GET",
            f"{l}/SKU-A",
            {
                "params": {
                    "marketplaceIds": US,
                    "includedData": "summaries,attributes,issues,offers,fulfillmentAvailability,productTypes",
                }
            },
        ),
        ("getListingsItem", "GET", f"{l}/NOPE", {"params": {"marketplaceIds": US}}),
        (
            "searchListingsItems",
            "GET",
            l,
            {
                "params": {
                    "marketplaceIds": US,
                    "identifiers": "SKU-A,NOPE",
                    "identifiersType": "SKU",
                    "includedData": "summaries,attributes,issues,offers,fulfillmentAvailability,productTypes",
                }
            },
        ),
        ("searchListingsItems", "GET", l, {"params": {"marketplaceIds": US, "identifiers": "SKU-A"}}),
        (
            "patchListingsItem",
            "PATCH",
            f"{l}/SKU-A",
            {
                "params": {"marketplaceIds": US, "includedData": "issues,identifiers"},
                "json": {"productType": "HOME", "patches": [_quantity_patch(-5)]},
            },
        ),
        ("patchListingsItem", "PATCH", f"{l}/SKU-A", {"params": {"marketplaceIds": US}, "json": {"patches": []}}),
    ]


def test_every_answer_matches_the_official_models(sandbox, api, spapi_models: Path) -> None:
    folder = spapi_models
    import jsonschema

    from sandbox.spapi.models import OPERATION_SCHEMAS, schema_for

    report = _all_settlement_reports(api)[0]
    token = access_token(sandbox.base_url, credentials(sandbox.data_dir))
    headers = {"x-amz-access-token": token, "host": "27.0.0.1:1"}  # the client's bogus Host
    checked: set[tuple[str, bool]] = set()
    with httpx.Client(headers=headers, verify=False) as http:
        for operation, method, url, kwargs in _schema_cases(
            sandbox.base_url, SELLER, report["reportId"], report["reportDocumentId"]
        ):
            answer = http.request(method, url, **kwargs)
            spec = OPERATION_SCHEMAS[operation]
            ok = answer.status_code < 300
            definition = spec.success if ok else spec.error
            if ok:
                assert answer.headers["x-amzn-RateLimit-Limit"]
            jsonschema.Draft4Validator(schema_for(folder, spec.model, definition)).validate(answer.json())
            checked.add((operation, ok))
        unauthorized = HTTP.get(f"{sandbox.base_url}/orders/v0/orders/111-0000000-0000000")
        jsonschema.Draft4Validator(schema_for(folder, "ordersV0.json", "GetOrderResponse")).validate(
            unauthorized.json()
        )
        confirm = http.post(
            f"{sandbox.base_url}/orders/v0/orders/111-0000000-0000024/shipmentConfirmation",
            json={"marketplaceId": US, "packageDetail": _package(US_ORDERS[24][1][0]["OrderItemId"])},
        )
        assert (confirm.status_code, confirm.content) == (204, b"")
        checked.add(("confirmShipment", True))
    assert checked == {(op, ok) for op in OPERATION_SCHEMAS for ok in (True, False)}
