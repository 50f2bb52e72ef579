"""Amazon connector: unit tests (bucket maths, decoding, config) and HTTP tests against the SP-API sandbox."""

from __future__ import annotations

import gzip
import logging
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sp_api.auth.access_token_client as library_auth
from _amazon_fixtures import (
    DE,
    SHIP_AFN,
    SHIP_MFN,
    SPECIAL,
    WINDOW_END,
    WINDOW_START,
    Sandbox,
    de_order_id,
    settlement_text,
    share_lwa_app,
    start_sandbox,
)
from sp_api.api import Reports
from sp_api.auth import AccessTokenClient
from sp_api.auth._core import build_cache_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.amazon import (
    AmazonAccount,
    AmazonAuthError,
    AmazonConfigError,
    AmazonConnector,
    AmazonRequestError,
    AmazonUnavailable,
    PackageDetail,
    RateLimit,
    RateLimiter,
    ShipmentItem,
    region_for_marketplace,
)
from connectors.amazon.documents import UndecodableDocument, decode_document
from sandbox.server import serve_in_thread


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# ---- rate limiter maths (worked by hand) -------------------------------------------------
def limiter(clock: FakeClock, rate: float = 2.0, burst: int = 3, time_scale: float = 1.0) -> RateLimiter:
    return RateLimiter({"op": RateLimit(rate, burst)}, time_scale=time_scale, clock=clock, sleep=clock.sleep)


def test_burst_is_free_then_each_call_waits_one_refill_interval() -> None:
    clock = FakeClock()
    bucket = limiter(clock)  # 2 tokens/s, burst 3
    assert [bucket.acquire("op") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire("op") == pytest.approx(0.5)  # bucket at -1 token, refill 2/s -> 0.5 s
    assert bucket.acquire("op") == pytest.approx(0.5)  # clock moved 0.5 s: refilled to 0, take -> -1
    assert clock.slept == pytest.approx([0.5, 0.5])
    assert clock.now == pytest.approx(1001.0)


def test_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    for _ in range(3):
        bucket.acquire("op")
    clock.now += 100.0  # 200 tokens' worth of time, but the bucket holds 3
    assert bucket.available("op") == pytest.approx(3.0)
    assert [bucket.acquire("op") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire("op") == pytest.approx(0.5)


def test_time_scale_speeds_refill() -> None:
    clock = FakeClock()
    bucket = limiter(clock, time_scale=10.0)  # effectively 20 tokens/s
    for _ in range(3):
        bucket.acquire("op")
    assert bucket.acquire("op") == pytest.approx(0.05)


def test_waiters_queue_behind_each_other() -> None:
    # Two callers hit an empty bucket at the same instant: the second waits two intervals.
    clock = FakeClock()
    waits: list[float] = []
    bucket = RateLimiter({"op": RateLimit(2.0, 1)}, clock=clock, sleep=waits.append)
    bucket.acquire("op")
    assert bucket.acquire("op") == pytest.approx(0.5)
    assert bucket.acquire("op") == pytest.approx(1.0)


def test_published_get_orders_quota() -> None:
    clock = FakeClock()
    bucket = RateLimiter(clock=clock, sleep=clock.sleep)  # Amazon's published plans
    for _ in range(20):  # getOrders burst 20
        assert bucket.acquire("getOrders") == 0.0
    assert bucket.acquire("getOrders") == pytest.approx(1 / 0.0167)  # 59.88 s
    assert bucket.acquire("patchListingsItem") == 0.0


def test_rate_header_and_drain() -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    bucket.update_rate("op", "0.5")  # x-amzn-RateLimit-Limit: 0.5
    bucket.update_rate("op", "garbage")  # ignored
    assert bucket.rate("op") == 0.5
    bucket.drain("op")  # a 429 says Amazon's bucket is empty
    assert bucket.seconds_until_token("op") == pytest.approx(2.0)
    assert bucket.acquire("op") == pytest.approx(2.0)


def test_unknown_operation_is_named() -> None:
    with pytest.raises(ValueError, match="'getNothing'"):
        RateLimiter().acquire("getNothing")


# ---- document decoding -------------------------------------------------------------------
TEXT = "settlement-id\tsku\n1\tCafé Crème – 5€\n"


@pytest.mark.parametrize(
    ("raw", "content_type", "codec", "compressed"),
    [
        (TEXT.encode("utf-8"), "text/plain; charset=utf8", "utf-8", False),
        (TEXT.encode("cp1252"), "text/plain; charset=Cp1252", "cp1252", False),
        (TEXT.encode("utf-8"), "text/plain", "utf-8", False),  # no charset: UTF-8 first
        (TEXT.encode("cp1252"), None, "cp1252", False),  # not UTF-8: cp1252
        (gzip.compress(TEXT.encode("cp1252")), "text/plain; charset=Cp1252", "cp1252", True),
        (gzip.compress(TEXT.encode("utf-8")), "application/octet-stream", "utf-8", True),
    ],
)
def test_decode_variants(raw: bytes, content_type: str | None, codec: str, compressed: bool) -> None:
    document = decode_document("doc-1", raw, content_type)
    assert document.text == TEXT
    assert document.charset_used == codec
    assert document.compressed is compressed
    assert document.raw == raw


def test_declared_charset_that_does_not_fit_is_an_error() -> None:
    # "settlement-id\tsku\n" is 18 bytes, "1\t" 2 more, "Caf" 3 more: the é is byte 23.
    with pytest.raises(UndecodableDocument, match="not valid utf8 at byte 23"):
        decode_document("doc-1", TEXT.encode("cp1252"), "text/plain; charset=utf8")
    with pytest.raises(UndecodableDocument, match="unknown charset 'x-klingon'"):
        decode_document("doc-1", b"abc", "text/plain; charset=x-klingon")


# ---- configuration -----------------------------------------------------------------------
def account(**overrides: object) -> AmazonAccount:
    values: dict[str, object] = dict(
        endpoint="https://sellingpartnerapi-eu.amazon.com",
        seller_id="A1SELLER",
        marketplace_ids=("A1PA6795UKMFR9",),
        refresh_token="Atzr|very-secret-refresh",
        lwa_app_id="amzn1.application-oa2-client.x",
        lwa_client_secret="cs-very-secret",
    )
    values.update(overrides)
    return AmazonAccount(**values)  # type: ignore[arg-type]  # the fields by name


def test_account_repr_hides_secrets() -> None:
    text = repr(account())
    assert "very-secret" not in text
    assert "A1SELLER" in text


def test_account_validation_names_the_setting() -> None:
    with pytest.raises(AmazonConfigError, match="'endpoint'"):
        account(endpoint="sellingpartnerapi-eu.amazon.com")
    with pytest.raises(AmazonConfigError, match="'lwa_client_secret'"):
        account(lwa_client_secret="")
    with pytest.raises(AmazonConfigError, match="'orders_api_version'"):
        account(orders_api_version="v1")


def test_account_from_mapping() -> None:
    loaded = AmazonAccount.from_mapping(
        {
            "endpoint": "http://127.0.0.1:9/",
            "seller_id": "S",
            "marketplace_ids": "A1PA6795UKMFR9, A13V1IB3VIYZZH",
            "refresh_token": "r",
            "lwa_app_id": "a",
            "lwa_client_secret": "s",
        }
    )
    assert loaded.endpoint == "http://127.0.0.1:9"
    assert loaded.marketplace_ids == ("A1PA6795UKMFR9", "A13V1IB3VIYZZH")
    assert loaded.token_url == "https://api.amazon.com/auth/o2/token"
    with pytest.raises(AmazonConfigError, match="'seller_id'"):
        AmazonAccount.from_mapping({"endpoint": "http://x", "marketplace_ids": "A"})


def test_region_table() -> None:
    assert region_for_marketplace("ATVPDKIKX0DER").endpoint == "https://sellingpartnerapi-na.amazon.com"
    assert region_for_marketplace("A1F83G8C2ARO7P").endpoint == "https://sellingpartnerapi-eu.amazon.com"
    assert region_for_marketplace("A1VC38T7YXB528").aws_region == "us-west-2"
    production = AmazonAccount.for_marketplaces(
        ["A1PA6795UKMFR9", "A13V1IB3VIYZZH"], seller_id="S", refresh_token="r", lwa_app_id="a", lwa_client_secret="s"
    )
    assert production.endpoint == "https://sellingpartnerapi-eu.amazon.com"
    with pytest.raises(AmazonConfigError, match="span regions"):
        AmazonAccount.for_marketplaces(
            ["ATVPDKIKX0DER", "A1PA6795UKMFR9"], seller_id="S", refresh_token="r", lwa_app_id="a", lwa_client_secret="s"
        )


def test_package_detail_wire_format_and_validation() -> None:
    package = PackageDetail(
        "1",
        "DHL",
        "JJD000390007",
        datetime(2024, 10, 9, 16, 30, tzinfo=UTC),
        (ShipmentItem("79039765272157", 2),),
        carrier_name="DHL",
    )
    assert package.to_api() == {
        "packageReferenceId": "1",
        "carrierCode": "DHL",
        "trackingNumber": "JJD000390007",
        "shipDate": "2024-10-09T16:30:00Z",
        "carrierName": "DHL",
        "orderItems": [{"orderItemId": "79039765272157", "quantity": 2}],
    }
    with pytest.raises(ValueError, match="positive number"):
        PackageDetail("PKG-1", "DHL", "x", datetime(2024, 1, 1, tzinfo=UTC), (ShipmentItem("1", 1),))
    with pytest.raises(ValueError, match="timezone-aware"):
        PackageDetail("1", "DHL", "x", datetime(2024, 1, 1), (ShipmentItem("1", 1),))


# ---- against the SP-API sandbox over HTTP ------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from start_sandbox(tmp_path_factory.mktemp("spapi"))


@pytest.fixture(autouse=True)
def _no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").clear_faults()


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


def test_lists_and_downloads_every_charset_and_compression_variant(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        since = datetime.now(UTC) - timedelta(days=30)
        reports = amazon.list_settlement_reports(since, page_size=4)  # 6 reports: two pages
        assert sorted(r.report_id for r in reports) == sorted(sandbox.variants)
        assert all(r.processing_status == "DONE" and r.marketplace_ids == (DE,) for r in reports)
        assert len({r.report_id for r in reports}) == 6
        seen_variants = set()
        for report in reports:
            settlement_id, charset, compression = sandbox.variants[report.report_id]
            assert report.report_document_id
            document = amazon.download_report_document(report.report_document_id)
            assert document.text == settlement_text(settlement_id)
            assert SPECIAL in document.text
            # No charset: the sandbox (like S3) sends UTF-8 bytes, which we must try before cp1252.
            assert document.charset_used == {"utf-8": "utf-8", "Cp1252": "cp1252", "": "utf-8"}[charset]
            assert document.compressed is (compression == "GZIP")
            assert document.raw[:2] == (b"\x1f\x8b" if compression else b"se")
            seen_variants.add((charset, compression))
        assert len(seen_variants) == 6


def test_created_window_filters_reports(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        now = datetime.now(UTC)
        # Settlement n was created 10 - n days ago (n = 0..5): before now - 6.5 days are n = 0..3.
        older = amazon.list_settlement_reports(now - timedelta(days=30), now - timedelta(days=6, hours=12))
        assert sorted(sandbox.variants[r.report_id][0] for r in older) == [f"2400000000{n}" for n in range(4)]


def test_orders_paging_and_marketplace_filter(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        orders = list(
            amazon.get_orders(WINDOW_START - timedelta(minutes=1), last_updated_before=WINDOW_END, page_size=10)
        )
    # 25 DE orders in the window (3 pages of 10); the FR ones are not in the account's marketplaces.
    assert [o["AmazonOrderId"] for o in orders] == [de_order_id(n) for n in range(25)]


def test_orders_status_filter(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        orders = list(
            amazon.get_orders(
                WINDOW_START - timedelta(minutes=1), last_updated_before=WINDOW_END, statuses=["Canceled"]
            )
        )
    # Order n is Canceled when n % 3 == 2.
    assert [o["AmazonOrderId"] for o in orders] == [de_order_id(n) for n in range(2, 25, 3)]


def test_order_items_paging(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        items = amazon.get_order_items(SHIP_MFN)  # 12 items, the sandbox pages them by 10
    assert [i["OrderItemId"] for i in items] == [f"{10000000000000 + n}" for n in range(12)]


def test_confirm_shipment_and_refusals(sandbox: Sandbox) -> None:
    package = PackageDetail(
        "1",
        "DHL",
        "JJD000390007",
        datetime(2026, 2, 2, 9, tzinfo=UTC),
        (ShipmentItem("10000000000000", 1), ShipmentItem("10000000000001", 1)),
    )
    with sandbox.connector() as amazon:
        amazon.confirm_shipment(SHIP_MFN, DE, package)
        with pytest.raises(AmazonRequestError) as refused:
            amazon.confirm_shipment(SHIP_AFN, DE, package)
        with pytest.raises(AmazonRequestError) as missing:
            amazon.confirm_shipment("999-0000000-0000000", DE, package)
        after = amazon.get_order(SHIP_MFN)
    # 2 of 12 items shipped.
    assert (after["OrderStatus"], after["NumberOfItemsShipped"], after["NumberOfItemsUnshipped"]) == (
        "PartiallyShipped",
        2,
        10,
    )
    shipments = [s for s in sandbox.state()["shipments"] if s["amazonOrderId"] == SHIP_MFN]
    assert len(shipments) == 1
    assert shipments[0]["packageDetail"]["trackingNumber"] == "JJD000390007"
    assert shipments[0]["packageDetail"]["orderItems"] == [
        {"orderItemId": "10000000000000", "quantity": 1},
        {"orderItemId": "10000000000001", "quantity": 1},
    ]
    assert (refused.value.status, refused.value.code) == (400, "InvalidInput")
    assert "AFN" in str(refused.value)
    assert (missing.value.status, missing.value.code) == (404, "NotFound")


def test_patch_and_get_listing(sandbox: Sandbox) -> None:
    sku = "KIT/CHEF KNIFE-01"  # slash and space must survive the path
    from decimal import Decimal

    with sandbox.connector() as amazon:
        before = amazon.get_listing(sku, DE)
        assert before["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 7}]
        submission = amazon.patch_listing(
            sku,
            DE,
            "KITCHEN",
            [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
                },
                {
                    "op": "replace",
                    "path": "/attributes/purchasable_offer",
                    "value": [
                        {
                            "marketplace_id": DE,
                            "currency": "EUR",
                            "our_price": [{"schedule": [{"value_with_tax": Decimal("19.99")}]}],
                        }
                    ],
                },
            ],
        )
        assert submission.status == "ACCEPTED" and submission.accepted and submission.issues == ()
        assert submission.sku == sku
        after = amazon.get_listing(sku, DE)
        assert after["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 3}]
        assert after["offers"][0]["price"] == {"currencyCode": "EUR", "amount": "19.99"}
        invalid = amazon.patch_listing(
            sku,
            DE,
            "KITCHEN",
            [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": -1}],
                }
            ],
        )
        assert invalid.status == "INVALID"
        assert [(i.code, i.attribute_names) for i in invalid.issues] == [("8560", ("fulfillment_availability",))]
        with pytest.raises(AmazonRequestError) as missing:
            amazon.get_listing("NO-SUCH-SKU", DE)
        assert missing.value.status == 404


def test_throttling_by_the_sandbox_is_absorbed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Real-time quotas (time_scale 1): patchListingsItem refills 5/s, burst 5. Two connectors of
    # one app share Amazon's bucket but each keeps its own: the first spends the burst, the
    # second still believes it has 5 tokens and meets 429s, which it must wait out and retry.
    caplog.set_level(logging.WARNING, logger="connectors.amazon.client")
    patch = [
        {
            "op": "merge",
            "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 4}],
        }
    ]
    for sandbox in start_sandbox(tmp_path, time_scale=1.0):
        with sandbox.connector(time_scale=1.0) as first, sandbox.connector(time_scale=1.0) as second:
            statuses = [first.patch_listing("KIT/CHEF KNIFE-01", DE, "KITCHEN", patch).status for _ in range(5)]
            statuses += [second.patch_listing("KIT/CHEF KNIFE-01", DE, "KITCHEN", patch).status for _ in range(4)]
    assert statuses == ["ACCEPTED"] * 9
    assert any("429 QuotaExceeded" in m for m in retries_logged(caplog))


def test_bodiless_429_is_seen_and_retried(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.amazon.client")
    sandbox.arm_fault(429, 2, ["getReports"], with_body=False)
    with sandbox.connector() as amazon:
        reports = amazon.list_settlement_reports(datetime.now(UTC) - timedelta(days=30))
    assert len(reports) == 6
    messages = retries_logged(caplog)
    assert len(messages) == 2 and all("429" in m for m in messages)


def test_bodiless_500_becomes_unavailable(sandbox: Sandbox) -> None:
    sandbox.arm_fault(500, 10, ["getOrderItems"], with_body=False)  # an Orders v0 operation
    with sandbox.connector(orders_api_version="v0") as amazon, pytest.raises(AmazonUnavailable) as failure:
        amazon.get_order_items(SHIP_MFN)
    assert failure.value.status == 500
    assert failure.value.attempts == 5
    assert failure.value.operation == "getOrderItems"


def test_503_with_body_is_retried(sandbox: Sandbox) -> None:
    sandbox.arm_fault(503, 1, ["getListingsItem"], with_body=True)
    with sandbox.connector() as amazon:
        assert amazon.get_listing("KIT/CHEF KNIFE-01", DE)["sku"] == "KIT/CHEF KNIFE-01"


def test_bad_refresh_token_is_an_auth_error_without_secrets(sandbox: Sandbox) -> None:
    secret = "Atzr|not-the-right-refresh-token-123"
    with sandbox.connector(refresh_token=secret) as amazon, pytest.raises(AmazonAuthError) as failure:
        amazon.get_listing("KIT/CHEF KNIFE-01", DE)
    assert failure.value.error == "invalid_grant"
    assert secret not in str(failure.value) and secret not in repr(amazon)


def test_works_with_sp_api_default_marketplace_set(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # The library would aim at sellingpartnerapi-na.amazon.com (US) and inject the US marketplace id.
    monkeypatch.setenv("SP_API_DEFAULT_MARKETPLACE", "US")
    with sandbox.connector() as amazon:
        assert len(amazon.list_settlement_reports(datetime.now(UTC) - timedelta(days=30))) == 6
        assert amazon.get_listing("KIT/CHEF KNIFE-01", DE)["sku"] == "KIT/CHEF KNIFE-01"
        assert len(amazon.get_order_items(SHIP_MFN)) == 12


def test_token_caches_are_per_account(sandbox: Sandbox, tmp_path: Path) -> None:
    # A second Amazon host that accepts the same refresh token but knows none of the first's
    # access tokens: with the library's global cache (keyed by refresh token) it would get 403.
    share_lwa_app(sandbox.data_dir, tmp_path)
    for other in start_sandbox(tmp_path, seed_world=False):
        since = datetime.now(UTC) - timedelta(days=30)
        with sandbox.connector() as first, other.connector() as second:
            assert len(first.list_settlement_reports(since)) == 6
            assert second.list_settlement_reports(since) == []
            assert len(first.list_settlement_reports(since)) == 6  # cached token reused
            assert (first.token_cache.fetches, second.token_cache.fetches) == (1, 1)
    # The library's process-wide cache (keyed by md5(refresh token)) was never used.
    assert build_cache_key(sandbox.account().refresh_token) not in library_auth.cache


def test_revoked_access_token_is_replaced_once(sandbox: Sandbox) -> None:
    with sandbox.connector() as amazon:
        assert amazon.get_listing("KIT/CHEF KNIFE-01", DE)["sku"] == "KIT/CHEF KNIFE-01"
        httpx.post(f"{sandbox.base_url}/sandbox/tokens/expire").raise_for_status()
        assert amazon.get_listing("KIT/CHEF KNIFE-01", DE)["sku"] == "KIT/CHEF KNIFE-01"
        assert amazon.token_cache.fetches == 2


def test_host_header_fixed_per_connector_only() -> None:
    hosts: list[str] = []

    async def token(request: Request) -> JSONResponse:
        return JSONResponse({"access_token": "Atza|stub", "token_type": "bearer", "expires_in": 3600})

    async def reports(request: Request) -> JSONResponse:
        hosts.append(request.headers["host"])
        return JSONResponse({"reports": []})

    app = Starlette(
        routes=[Route("/auth/o2/token", token, methods=["POST"]), Route("/reports/2021-06-30/reports", reports)]
    )
    with serve_in_thread(lambda base_url: app) as server:
        netloc = server.base_url.removeprefix("http://")
        account = AmazonAccount(
            endpoint=server.base_url,
            token_url=f"{server.base_url}/auth/o2/token",
            seller_id="S",
            marketplace_ids=(DE,),
            refresh_token="Atzr|r",
            lwa_app_id="app",
            lwa_client_secret="s",
        )
        with AmazonConnector(account) as amazon:
            assert amazon.list_settlement_reports(datetime.now(UTC) - timedelta(days=1)) == []

        class StubLwa(AccessTokenClient):
            scheme, host = "http://", netloc

        plain = Reports(
            marketplace=types.SimpleNamespace(endpoint=server.base_url, marketplace_id=DE, region="eu-west-1"),
            credentials={"refresh_token": "Atzr|plain", "lwa_app_id": "a", "lwa_client_secret": "s"},
            auth_token_client_class=StubLwa,
        )
        plain.get_reports(reportTypes=["X"])
        library_auth.cache.clear()
    # Ours sends the real host; the library, untouched, still sends endpoint[8:].
    assert hosts == [netloc, netloc[1:]]
