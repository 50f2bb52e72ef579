"""SP-API regions, restricted data, failing fast and bounded report documents (issue 9, items 8-10).

Everything goes through real HTTP: three regional SP-API sandbox hosts (na, eu, fe) over one
data folder, the connector built on the unmodified python-amazon-sp-api, and one ``m3sync``
subprocess against an endpoint nobody listens on.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from _amazon_fixtures import FAST_BACKOFF
from _cli import m3sync
from _spapi_fixtures import DE, US, order, settlement

from connectors.amazon import (
    AmazonAccount,
    AmazonConfigError,
    AmazonConnector,
    AmazonDocumentError,
    AmazonRequestError,
    AmazonUnreachable,
    DocumentLimits,
    RateLimiter,
    SellerAccounts,
)
from connectors.amazon.documents import DocumentRefused, check_document_url, inflate_bounded
from connectors.retry import Backoff
from connectors.settings import load_settings
from connectors.state import StateStore
from flows.connections import Connections
from flows.settlement_steps import fetch_from_amazon
from sandbox.generator.records import SettlementDocument
from sandbox.server import serve_in_thread
from sandbox.spapi import SpApiStore, create_app, credentials

FR, JP = "A13V1IB3VIYZZH", "A1VC38T7YXB528"
SELLER = "A2SANDBOXSELLER"
NOW = datetime.now(UTC)
US_ORDER, DE_ORDER = "111-0000000-0000001", "302-0000000-0000001"
TIME_SCALE = 1000.0


def _fr_settlement(settlement_id: str, day: int) -> SettlementDocument:
    """``settlement`` builds Amazon.de rows for any non-US marketplace; the same file from Amazon.fr."""
    de = settlement(settlement_id, day, marketplace=DE)
    return replace(de, marketplace_id=FR, text=de.text.replace("Amazon.de", "Amazon.fr"))


def _recent(document: SettlementDocument, days_ago: int) -> SettlementDocument:
    """The sandbox lists 90 days: move a fixture settlement to end ``days_ago`` days before now."""
    return replace(document, created_time=NOW - timedelta(days=days_ago))


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory):
    """{region: RunningServer} of three regional hosts over one seeded data folder."""
    data_dir = tmp_path_factory.mktemp("spapi-regions")
    purchased = NOW - timedelta(days=3)
    store = SpApiStore(data_dir)
    store.seed(
        [order(US_ORDER, purchased), order(DE_ORDER, purchased, marketplace=DE, currency="EUR")],
        [
            _recent(settlement("31000000001", 1), 5),
            _recent(settlement("32000000001", 2, marketplace=DE), 4),
            _recent(_fr_settlement("33000000001", 3), 3),
        ],
        [
            {
                "sku": "SKU-EU",
                "marketplace_id": DE,
                "asin": "B0LIST0001",
                "product_type": "HOME",
                "title": "Listing",
                "price": "9.99",
                "currency": "EUR",
                "quantity": 4,
            }
        ],
        SELLER,
    )
    store.close()
    servers = {}
    try:
        for region in ("na", "eu", "fe"):
            servers[region] = serve_in_thread(
                lambda url, region=region: create_app(data_dir, url, region=region, time_scale=TIME_SCALE)
            )
        for server in servers.values():
            server.data_dir = data_dir  # type: ignore[attr-defined]  # a note for the test on the running server
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _account(server, region: str, marketplaces: tuple[str, ...], token_region: str | None = None) -> AmazonAccount:
    creds = credentials(server.data_dir, token_region or region)
    return AmazonAccount(
        endpoint=server.base_url,
        token_url=f"{server.base_url}/auth/o2/token",
        seller_id=SELLER,
        marketplace_ids=marketplaces,
        **creds,
    )


@pytest.fixture(scope="module")
def seller(regions):
    accounts = [_account(regions["na"], "na", (US,)), _account(regions["eu"], "eu", (DE,))]
    with SellerAccounts.open(accounts, time_scale=TIME_SCALE, backoff=FAST_BACKOFF) as opened:
        yield opened


# ---- item 8: regions ----------------------------------------------------------------------------


def test_each_marketplace_goes_to_its_regions_host_and_settlements_ignore_marketplace_ids(seller) -> None:
    since = NOW - timedelta(days=30)
    na = seller.for_marketplace(US)
    eu = seller.for_marketplace(DE)
    assert (na.account.region, eu.account.region) == ("na", "eu")
    assert {r.marketplace_ids for r in na.list_settlement_reports(since)} == {(US,)}
    # The EU account lists only DE, yet Amazon returns every settlement of the region: DE and FR.
    assert {r.marketplace_ids for r in eu.list_settlement_reports(since)} == {(DE,), (FR,)}
    assert seller.marketplace_ids == (US, DE)
    with pytest.raises(AmazonConfigError, match=f"marketplace {JP} \\(region fe\\)"):
        seller.for_marketplace(JP)


def test_a_token_of_another_region_is_refused_as_amazon_does(regions) -> None:
    # The EU host with North America's refresh token: LWA issues the token, the host refuses it.
    with AmazonConnector(
        _account(regions["eu"], "eu", (DE,), token_region="na"), time_scale=TIME_SCALE, backoff=FAST_BACKOFF
    ) as connector:
        with pytest.raises(AmazonRequestError) as refused:
            connector.list_settlement_reports(NOW - timedelta(days=30))
    assert (refused.value.status, refused.value.code) == (403, "Unauthorized")
    # Marketplaces of another region are refused on a regional host too.
    with AmazonConnector(
        replace(_account(regions["na"], "na", (US,)), marketplace_ids=(US,)),
        time_scale=TIME_SCALE,
        backoff=FAST_BACKOFF,
    ) as na:
        with pytest.raises(AmazonRequestError, match="for this endpoint"):
            list(na.get_orders(NOW - timedelta(days=10), marketplace_ids=[DE]))


def test_one_account_cannot_span_regions() -> None:
    with pytest.raises(AmazonConfigError, match="one account per region"):
        AmazonAccount(
            endpoint="https://sellingpartnerapi-na.amazon.com",
            seller_id="S",
            marketplace_ids=(US, DE),
            refresh_token="r",
            lwa_app_id="a",
            lwa_client_secret="s",
        )


def test_buyer_data_comes_only_with_a_restricted_data_token(seller, regions) -> None:
    na = seller.for_marketplace(US)
    plain = na.get_order(US_ORDER)
    # The fixture order ships to Jane Doe, 1 Main St, phone +1 206 555 0100, buyer Jane Doe.
    assert plain["ShippingAddress"] == {
        "City": "Seattle",
        "StateOrRegion": "WA",
        "PostalCode": "98101",
        "CountryCode": "US",
    }
    assert plain["BuyerInfo"] == {}
    address = na.get_order_address(US_ORDER)["ShippingAddress"]
    assert (address["Name"], address["AddressLine1"], address["Phone"]) == ("Jane Doe", "1 Main St", "+1 206 555 0100")
    assert na.get_order_buyer_info(US_ORDER)["BuyerEmail"] == "abc123@marketplace.amazon.com"
    window = NOW - timedelta(days=10)
    [with_pii] = list(na.get_orders(window, last_updated_before=NOW - timedelta(minutes=5), pii=True))
    assert with_pii["BuyerInfo"]["BuyerName"] == "Jane Doe" and with_pii["ShippingAddress"]["Name"] == "Jane Doe"
    [without] = list(na.get_orders(window, last_updated_before=NOW - timedelta(minutes=5)))
    assert "Name" not in without["ShippingAddress"]


def test_settlement_flow_keeps_the_settlements_of_the_accounts_marketplaces(seller, tmp_path: Path) -> None:
    state = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        connections = Connections(
            home=tmp_path, sandbox=False, state=state, need_m3=False, need_amazon=True, amazon=seller
        )
        sources = fetch_from_amazon.fn(connections)
    finally:
        state.close()
    # NA: the US settlement; EU lists DE and FR but the account sells on Amazon.de only.
    assert sorted((s.settlement_id, s.marketplace) for s in sources.settlements) == [
        ("31000000001", "Amazon.com"),
        ("32000000001", "Amazon.de"),
    ]
    assert not sources.errors and not sources.failures


def test_regional_tables_in_config_toml_open_one_connector_per_region(regions, tmp_path: Path) -> None:
    na, eu = credentials(regions["na"].data_dir, "na"), credentials(regions["eu"].data_dir, "eu")
    (tmp_path / "config.toml").write_text(
        f'[amazon]\nlwa_app_id = "{na["lwa_app_id"]}"\nlwa_client_secret = "{na["lwa_client_secret"]}"\n'
        f'seller_id = "{SELLER}"\ntoken_url = "{regions["na"].base_url}/auth/o2/token"\n'
        f'[amazon.na]\nrefresh_token = "{na["refresh_token"]}"\nmarketplaces = ["{US}"]\n'
        f'endpoint = "{regions["na"].base_url}"\n'
        f'[amazon.eu]\nrefresh_token = "wrong"\nmarketplaces = ["{DE}"]\nendpoint = "{regions["eu"].base_url}"\n',
        encoding="utf-8",
    )
    settings = load_settings(
        tmp_path,
        env={
            "M3SYNC_AMAZON_EU_REFRESH_TOKEN": eu["refresh_token"],
            "M3SYNC_AMAZON_DEADLINE_SECONDS": "20",
            "M3SYNC_AMAZON_MAX_DOCUMENT_BYTES": "1000000",
        },
    ).require_amazon()
    assert [(a.region, a.marketplaces) for a in settings.accounts] == [("na", (US,)), ("eu", (DE,))]
    with SellerAccounts.from_settings(settings, time_scale=TIME_SCALE, backoff=FAST_BACKOFF) as seller:
        assert seller.for_marketplace(DE).deadline == 20.0
        assert seller.for_marketplace(DE).document_limits == DocumentLimits(1_000_000, 1_000_000)
        assert seller.for_marketplace(DE).get_order(DE_ORDER)["MarketplaceId"] == DE
        assert seller.for_marketplace(US).get_order(US_ORDER)["MarketplaceId"] == US


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[amazon]\nlwa_app_id = "a"\nlwa_client_secret = "s"\nrefresh_token = "r"\n'
            '[amazon.eu]\nrefresh_token = "e"\n'
            'marketplaces = ["A1PA6795UKMFR9"]\n',
            "in the region tables only",
        ),
        (
            '[amazon]\nlwa_app_id = "a"\nlwa_client_secret = "s"\n[amazon.na]\nrefresh_token = "e"\n'
            'marketplaces = ["A1PA6795UKMFR9"]\n',
            "are not NA marketplaces",
        ),
        (
            '[amazon]\nlwa_app_id = "a"\nlwa_client_secret = "s"\n[amazon.fe]\nmarketplaces = ["A1VC38T7YXB528"]\n',
            "[amazon.fe] refresh_token",
        ),
        (
            '[amazon]\nlwa_app_id = "a"\nlwa_client_secret = "s"\nrefresh_token = "r"\n'
            'marketplaces = ["A1VC38T7YXB528"]\n'
            "deadline_seconds = -5\n",
            "[amazon] deadline_seconds",
        ),
    ],
)
def test_regional_configuration_mistakes_are_named(tmp_path: Path, toml: str, expected: str) -> None:
    from connectors.settings import ConfigurationError

    (tmp_path / "config.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigurationError) as error:
        load_settings(tmp_path, env={}).require_amazon()
    assert expected in str(error.value)


def test_quotas_are_amazons_at_time_scale_one(tmp_path: Path) -> None:
    """The one test at Amazon's own pace: patchListingsItem is 5 requests/s, burst 5."""
    store = SpApiStore(tmp_path)
    store.seed(
        [],
        [],
        [
            {
                "sku": "SKU-EU",
                "marketplace_id": DE,
                "asin": "B0LIST0001",
                "product_type": "HOME",
                "title": "Listing",
                "price": "9.99",
                "currency": "EUR",
                "quantity": 4,
            }
        ],
        SELLER,
    )
    store.close()
    with serve_in_thread(lambda url: create_app(tmp_path, url, region="eu", time_scale=1.0)) as server:
        server.data_dir = tmp_path  # type: ignore[attr-defined]  # a note for the test on the running server
        patch = [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
            }
        ]
        # Our limiter at Amazon's rate: 5 at once, then one every 0.2 s (a 429 from clocks a few ms
        # apart is retried after a full refill, as in production).
        with AmazonConnector(_account(server, "eu", (DE,)), backoff=FAST_BACKOFF) as connector:
            started = time.monotonic()
            for _ in range(7):
                assert connector.patch_listing("SKU-EU", DE, "HOME", patch).accepted
            elapsed = time.monotonic() - started
        assert 0.35 <= elapsed < 3.0
        # Straight at the host: the burst is spent, so the next call is throttled with Amazon's body.
        token = httpx.post(
            f"{server.base_url}/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": credentials(tmp_path, "eu")["lwa_app_id"],
                "client_secret": credentials(tmp_path, "eu")["lwa_client_secret"],
                "refresh_token": credentials(tmp_path, "eu")["refresh_token"],
            },
        ).json()["access_token"]
        url = f"{server.base_url}/listings/2021-08-01/items/{SELLER}/SKU-EU"
        body = {"productType": "HOME", "patches": patch}
        answers = [
            httpx.patch(url, params={"marketplaceIds": DE}, json=body, headers={"x-amz-access-token": token})
            for _ in range(6)
        ]
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled and throttled[0].json()["errors"][0]["code"] == "QuotaExceeded"
        time.sleep(0.25)  # one token back at 5/s
        assert (
            httpx.patch(
                url, params={"marketplaceIds": DE}, json=body, headers={"x-amz-access-token": token}
            ).status_code
            == 200
        )


# ---- item 9: failing fast ------------------------------------------------------------------------


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there any more: connections are refused
    return port


def _unreachable_account(port: int) -> AmazonAccount:
    base = f"http://127.0.0.1:{port}"
    return AmazonAccount(
        endpoint=base,
        token_url=f"{base}/auth/o2/token",
        seller_id=SELLER,
        marketplace_ids=(DE,),
        refresh_token="Atzr|x",
        lwa_app_id="amzn1.application-oa2-client.x",
        lwa_client_secret="s",
    )


def test_refused_connections_use_no_quota_and_fail_fast_naming_host_and_operation() -> None:
    port = _closed_port()
    limiter = RateLimiter(time_scale=1.0)  # Amazon's real getReports quota: 0.0222/s, burst 10
    with AmazonConnector(_unreachable_account(port), rate_limiter=limiter, backoff=FAST_BACKOFF) as connector:
        started = time.monotonic()
        for _ in range(12):  # more calls x attempts than the burst: charged tokens would mean a 45 s wait
            with pytest.raises(AmazonUnreachable) as failure:
                connector.list_settlement_reports(NOW - timedelta(days=1))
        elapsed = time.monotonic() - started
    assert elapsed < 5.0
    assert limiter.available("getReports") == pytest.approx(10.0, abs=0.01)
    message = str(failure.value)
    assert f"127.0.0.1:{port}" in message and "getReports" in message and "ConnectError" in message
    assert failure.value.attempts == FAST_BACKOFF.attempts


def test_a_dns_failure_uses_no_quota_and_names_the_host() -> None:
    limiter = RateLimiter(time_scale=1.0)
    nowhere = "https://sellingpartnerapi-xx.invalid"  # .invalid never resolves (RFC 2606)
    account = replace(_unreachable_account(1), endpoint=nowhere, token_url=f"{nowhere}/auth/o2/token")
    with AmazonConnector(account, rate_limiter=limiter, backoff=FAST_BACKOFF) as connector:
        started = time.monotonic()
        with pytest.raises(AmazonUnreachable, match="sellingpartnerapi-xx.invalid") as failure:
            connector.get_order(DE_ORDER)
    assert time.monotonic() - started < 10.0
    assert "getOrder" in str(failure.value)
    assert limiter.available("getOrder") == pytest.approx(30.0, abs=0.01)  # burst 30, nothing charged


def test_the_deadline_bounds_all_retries() -> None:
    many_slow_retries = Backoff(attempts=100, base=0.25, cap=0.25)
    with AmazonConnector(_unreachable_account(_closed_port()), backoff=many_slow_retries, deadline=1.0) as connector:
        started = time.monotonic()
        with pytest.raises(AmazonUnreachable) as failure:
            connector.get_order(DE_ORDER)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 and failure.value.attempts < 100
    assert "getOrder" in str(failure.value)


def test_settle_from_an_unreachable_amazon_exits_4_within_a_minute(tmp_path: Path, prefect_api_url: str) -> None:
    port = _closed_port()
    (tmp_path / "config.toml").write_text(
        f'[amazon]\nendpoint = "http://127.0.0.1:{port}"\ntoken_url = "http://127.0.0.1:{port}/auth/o2/token"\n'
        f'refresh_token = "Atzr|x"\nlwa_app_id = "amzn1.application-oa2-client.x"\nlwa_client_secret = "s"\n'
        f'marketplaces = ["{DE}"]\nseller_id = "{SELLER}"\n',
        encoding="utf-8",
    )
    started = time.monotonic()
    run = m3sync("settle", "--from-amazon", "--dry-run", "--home", str(tmp_path), api_url=prefect_api_url, timeout=120)
    elapsed = time.monotonic() - started
    assert run.code == 4, run.stderr
    assert elapsed < 60
    assert f"127.0.0.1:{port}" in run.stderr and "getReports" in run.stderr
    assert "Traceback" not in run.stderr


# ---- item 10: report documents -------------------------------------------------------------------


def _post_report(server, document: SettlementDocument, compression: str) -> str:
    answer = httpx.post(
        f"{server.base_url}/sandbox/reports",
        timeout=30,
        json={
            "text": document.text,
            "settlement_id": document.settlement_id,
            "marketplace_id": document.marketplace_id,
            "created_time": (NOW - timedelta(days=1)).isoformat(),
            "charset": "utf-8",
            "compression": compression,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["reportDocumentId"]


def test_a_gzip_bomb_and_an_oversized_download_are_refused(regions) -> None:
    # 2 MB of one character in promotion-id compresses to a few KB: a small download, a large inflation.
    bomb = settlement("34000000001", 5, marketplace=DE, note="x" * 2_000_000)
    document_id = _post_report(regions["eu"], bomb, "GZIP")
    small = DocumentLimits(max_download_bytes=1 << 20, max_decompressed_bytes=1 << 20)
    with AmazonConnector(
        _account(regions["eu"], "eu", (DE,)), time_scale=TIME_SCALE, backoff=FAST_BACKOFF, document_limits=small
    ) as connector:
        with pytest.raises(AmazonDocumentError, match="inflates to more than 1048576 bytes"):
            connector.download_report_document(document_id)
        plain = _post_report(regions["eu"], settlement("34000000002", 6, marketplace=DE, note="y" * 5000), "")
        tiny = AmazonConnector(
            connector.account,
            time_scale=TIME_SCALE,
            backoff=FAST_BACKOFF,
            document_limits=DocumentLimits(max_download_bytes=4000),
        )
        with tiny, pytest.raises(AmazonDocumentError, match="max_download_bytes 4000"):
            tiny.download_report_document(plain)
        # Within the default bounds the same bomb is just a big document.
        with AmazonConnector(connector.account, time_scale=TIME_SCALE, backoff=FAST_BACKOFF) as roomy:
            assert len(roomy.download_report_document(document_id).text) > 2_000_000


def test_inflation_stops_at_the_bound_without_inflating_everything() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros: about 64 KB compressed
    with pytest.raises(DocumentRefused, match="more than 1000000 bytes"):
        inflate_bounded(bomb, 1_000_000)
    two_members = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert inflate_bounded(two_members, 10) == b"abcd"


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://evil.example.com", "evil.example.com is not one of Amazon's document hosts"),
        ("http://tortuga-prod-eu.s3-eu-west-1.amazonaws.com", "fetched over https only"),
    ],
)
def test_document_urls_off_amazons_hosts_or_without_https_are_refused(regions, base: str, expected: str) -> None:
    server = regions["eu"]
    document_id = _post_report(server, settlement("35000000001", 7, marketplace=DE), "")
    httpx.post(f"{server.base_url}/sandbox/document-url", json={"base": base}).raise_for_status()
    try:
        with AmazonConnector(_account(server, "eu", (DE,)), time_scale=TIME_SCALE, backoff=FAST_BACKOFF) as connector:
            with pytest.raises(AmazonDocumentError, match=expected) as refused:
                connector.download_report_document(document_id)
        assert "X-Amz-Signature" not in str(refused.value)  # the presigned query is a credential
    finally:
        httpx.post(f"{server.base_url}/sandbox/document-url", json={"base": None}).raise_for_status()


def test_document_host_rules_in_live_mode() -> None:
    live = "https://sellingpartnerapi-eu.amazon.com"
    check_document_url("https://tortuga-prod-eu.s3-eu-west-1.amazonaws.com/%2FNinetyDays/doc?X-Amz-Signature=s", live)
    for url, expected in [
        ("http://tortuga-prod-eu.s3-eu-west-1.amazonaws.com/doc", "https only"),
        ("http://127.0.0.1:8765/s3/tortuga/doc", "https only"),  # the sandbox is no S3 in live mode
        ("https://s3.amazonaws.com.evil.example/doc", "not one of Amazon's document hosts"),
        ("https://127.0.0.1:8765/doc", "not one of Amazon's document hosts"),
    ]:
        with pytest.raises(DocumentRefused, match=expected):
            check_document_url(url, live)
    check_document_url("http://127.0.0.1:8765/s3/tortuga/doc?x=1", "http://127.0.0.1:8765")  # the sandbox's own host
    with pytest.raises(DocumentRefused):
        check_document_url("http://127.0.0.1:9999/s3/tortuga/doc", "http://127.0.0.1:8765")
