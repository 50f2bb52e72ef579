"""An M3 sandbox of a test's own, configured through HOME/config.toml as a live M3 would be.

Configuring the sandbox through config.toml (not --sandbox) exercises the path a real
installation takes: the .ionapi file, the profile, the state store under HOME.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from connectors.m3 import M3Client, M3Operations, OrderLineRequest, OrderRequest
from sandbox.m3.app import create_app
from sandbox.m3.ionapi import sandbox_credentials, write_ionapi
from sandbox.server import serve_in_thread


@pytest.fixture
def live_m3(tmp_path: Path):
    """An M3 sandbox of the test's own, and a home whose config.toml points at it."""
    data = tmp_path / "m3"
    server = serve_in_thread(lambda url: create_app(data, url, tenant="TST"))
    home = tmp_path / "home"
    home.mkdir()
    ionapi = write_ionapi(home / "m3.ionapi", server.base_url, "TST", sandbox_credentials(data))

    def configure(profile: str) -> Path:
        (home / "config.toml").write_text(
            f'[m3]\nionapi = "{ionapi}"\nprofile = "{profile}"\ncono = 100\ndivi = "AAA"\n'
        )
        return home

    yield server, configure, ionapi
    server.stop()


def invoice_amzus_orders(base_url: str, ionapi: Path, orders: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """Amazon.com orders ``(Amazon order id, price, invoice date yyyyMMdd)`` entered in the
    sandbox M3 for customer AMZUS (one item, quantity 1) and invoiced on their date; returns the
    M3 order number of each Amazon order id."""
    ornos: dict[str, str] = {}
    with M3Client.from_ionapi(ionapi) as client:
        ops = M3Operations(client, "brief", divi="AAA")
        itno = client.execute("MMS080MI", "LstItemBal", {"WHLO": "100"}, maxrecs=1)[0]["ITNO"]
        for cuor, price, day in orders:
            orno = ops.create_order(
                OrderRequest(
                    cuno="AMZUS",
                    customer_order_ref=cuor,
                    order_type="AMZ",
                    lines=(OrderLineRequest(itno=itno, quantity=1, unit_price=Decimal(price)),),
                )
            ).orno
            answer = httpx.post(f"{base_url}/sandbox/advance", json={"to": "77", "orders": [orno], "date": day})
            assert answer.status_code == 200, answer.text
            ornos[cuor] = orno
    return ornos
