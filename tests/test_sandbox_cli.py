"""``m3sync sandbox`` in the foreground, used as a newcomer would: through the files it writes.

The M3 connector reaches it with the written .ionapi file; the unmodified python-amazon-sp-api
client, aimed at it with the written credentials, lists and downloads the seeded settlements
and pages through the orders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def running_sandbox(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("sandbox-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("M3SYNC_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "sandbox", "--home", str(home), "--seed", "7"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if line.startswith("world"):
            break
    assert any(l.startswith("world") for l in banner), ("".join(banner), process.stderr.read())
    yield home, "".join(banner)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_banner_names_both_emulators_and_the_files(running_sandbox) -> None:
    home, banner = running_sandbox
    assert "M3 MI REST" in banner
    assert all(f"SP-API {region}" in banner for region in ("NA", "EU", "FE"))  # one host per region
    assert str(home / "sandbox" / "m3.ionapi") in banner
    assert (home / "sandbox" / "m3.ionapi").stat().st_mode & 0o077 == 0  # secrets: owner only


def test_written_ionapi_file_works_with_the_m3_connector(running_sandbox) -> None:
    from connectors.m3 import M3Client, M3Operations

    home, _ = running_sandbox
    with M3Client.from_ionapi(home / "sandbox" / "m3.ionapi") as client:
        ops = M3Operations(client)
        assert ops.get_customer("AMZDE").currency == "EUR"
        from sandbox.catalog import build_catalog

        first = build_catalog(7)[0]
        assert ops.get_item(first.itno).name == first.name


def test_plain_python_amazon_sp_api_lists_downloads_and_pages(running_sandbox) -> None:
    import sp_api.auth.access_token_client as token_module
    from sp_api.api import Orders, Reports
    from sp_api.auth import AccessTokenClient

    home, _ = running_sandbox
    settings = json.loads((home / "sandbox" / "spapi-credentials.json").read_text())
    assert (home / "sandbox" / "spapi-credentials.json").stat().st_mode & 0o077 == 0
    na, eu = settings["regions"]["na"], settings["regions"]["eu"]
    assert na["endpoint"] != eu["endpoint"] and na["refresh_token"] != eu["refresh_token"]
    assert na["marketplace_ids"] == ["ATVPDKIKX0DER"]
    endpoint = na["endpoint"]
    token_host = settings["token_url"].removeprefix("http://").removesuffix("/auth/o2/token")

    class SandboxLWA(AccessTokenClient):  # sp-api.md §7.8: the library's own hook
        scheme = "http://"
        host = token_host

    token_module.cache.clear()
    marketplace = types.SimpleNamespace(endpoint=endpoint, marketplace_id="ATVPDKIKX0DER", region="us-east-1")
    credentials = {
        "refresh_token": na["refresh_token"],
        "lwa_app_id": settings["lwa_app_id"],
        "lwa_client_secret": settings["lwa_client_secret"],
    }

    reports = Reports(marketplace, credentials=credentials, auth_token_client_class=SandboxLWA)
    listed = reports.get_reports(reportTypes=["GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"], pageSize=100)
    found = listed.payload["reports"]
    # The North America host lists the region's settlements (Amazon.com's four fortnightly ones of
    # the seeded eight weeks); the EU ones live on the EU host.
    assert len(found) == 4
    assert {tuple(r["marketplaceIds"]) for r in found} == {("ATVPDKIKX0DER",)}
    document = reports.get_report_document(found[0]["reportDocumentId"], download=True)
    text = document.payload["document"]
    assert text.startswith("settlement-id\tsettlement-start-date")

    orders = Orders(marketplace, credentials=credentials, auth_token_client_class=SandboxLWA)
    since = (datetime.now(UTC) - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = orders.get_orders(CreatedAfter=since, MaxResultsPerPage=50, MarketplaceIds=["ATVPDKIKX0DER"])
    seen = list(page.payload["Orders"])
    pages = 1
    while page.next_token:
        page = orders.get_orders(NextToken=page.next_token, MarketplaceIds=["ATVPDKIKX0DER"])
        seen += page.payload["Orders"]
        pages += 1
    assert pages >= 2
    assert len({o["AmazonOrderId"] for o in seen}) == len(seen)
    assert {o["MarketplaceId"] for o in seen} == {"ATVPDKIKX0DER"}
    token_module.cache.clear()


def test_each_region_host_takes_its_own_refresh_token_only(running_sandbox) -> None:
    import httpx

    home, _ = running_sandbox
    settings = json.loads((home / "sandbox" / "spapi-credentials.json").read_text())

    def access_token(region: str) -> str:
        answer = httpx.post(
            settings["token_url"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": settings["regions"][region]["refresh_token"],
                "client_id": settings["lwa_app_id"],
                "client_secret": settings["lwa_client_secret"],
            },
        )
        return answer.json()["access_token"]

    na_token = access_token("na")
    path = "/reports/2021-06-30/reports?reportTypes=GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2&pageSize=100"
    on_na = httpx.get(settings["regions"]["na"]["endpoint"] + path, headers={"x-amz-access-token": na_token})
    on_eu = httpx.get(settings["regions"]["eu"]["endpoint"] + path, headers={"x-amz-access-token": na_token})
    assert on_na.status_code == 200
    # Amazon's answer to another region's token (selling-partner-api-models#4825).
    assert (on_eu.status_code, on_eu.json()) == (
        403,
        {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""}]},
    )
    eu_reports = httpx.get(
        settings["regions"]["eu"]["endpoint"] + path, headers={"x-amz-access-token": access_token("eu")}
    ).json()["reports"]
    # Amazon.de, .fr and .co.uk: four fortnights each, whatever marketplaceIds would say.
    assert len(eu_reports) == 12 and "ATVPDKIKX0DER" not in {m for r in eu_reports for m in r["marketplaceIds"]}
