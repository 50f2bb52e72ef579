"""Seed data and helpers for the Amazon connector tests (real SP-API sandbox over HTTP)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from connectors.amazon import AmazonAccount, AmazonConnector
from connectors.retry import Backoff
from sandbox.generator.records import SettlementDocument
from sandbox.server import RunningServer, serve_in_thread
from sandbox.spapi import SpApiStore, create_app, credentials
from tests._settlement_builders import V2_HEADER as HEADER

DE = "A1PA6795UKMFR9"
FR = "A13V1IB3VIYZZH"
TIME_SCALE = 1000.0  # sandbox buckets and ours refill 1000x faster (getOrders: 16.7 tokens/s)
FAST_BACKOFF = Backoff(attempts=5, base=0.01, cap=0.1)

WINDOW_START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 1, 2, 12, tzinfo=UTC)  # 36 h: orders 0..24 (hourly) are inside
SHIP_MFN = "302-9000001-9000001"  # MFN, Unshipped, 12 items (two item pages of 10)
SHIP_AFN = "302-9000002-9000002"  # AFN: confirmShipment must be refused

# Non-ASCII that cp1252 can carry: é, è, ö, ß, en dash (0x96), euro sign (0x80).
SPECIAL = "Entgelt für Café-Crème – Größe 5 €"
# (charset served, compression) for each seeded settlement: every variant the sandbox serves.
VARIANTS = [("utf-8", ""), ("Cp1252", ""), ("", ""), ("utf-8", "GZIP"), ("Cp1252", "GZIP"), ("", "GZIP")]


def settlement_text(settlement_id: str) -> str:
    summary = [
        settlement_id,
        "01.11.2026 08:00:00 UTC",
        "15.11.2026 08:00:00 UTC",
        "17.11.2026 08:00:00 UTC",
        "12,50",
        "EUR",
    ] + [""] * 18
    row = [
        settlement_id,
        "",
        "",
        "",
        "",
        "",
        "other-transaction",
        "",
        "",
        "",
        "",
        "Amazon.de",
        "other-transaction",
        SPECIAL,
        "12,50",
        "",
        "02.11.2026",
        "02.11.2026 10:00:00 UTC",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    return "\n".join([HEADER, "\t".join(summary), "\t".join(row)]) + "\n"


def order(order_id: str, marketplace_id: str, updated: datetime, status: str, channel: str) -> dict:
    stamp = updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "AmazonOrderId": order_id,
        "MarketplaceId": marketplace_id,
        "PurchaseDate": stamp,
        "LastUpdateDate": stamp,
        "OrderStatus": status,
        "FulfillmentChannel": channel,
        "OrderTotal": {"CurrencyCode": "EUR", "Amount": "10.00"},
    }


def item(n: int) -> dict:
    return {
        "OrderItemId": f"{10000000000000 + n}",
        "ASIN": f"B0000000{n:02d}",
        "SellerSKU": f"SKU-{n}",
        "QuantityOrdered": 1,
        "QuantityShipped": 0,
        "ItemPrice": {"CurrencyCode": "EUR", "Amount": "10.00"},
    }


def de_order_id(n: int) -> str:
    return f"302-{1000000 + n:07d}-{2000000 + n:07d}"


def seed(data_dir: Path, now: datetime) -> dict[str, tuple[str, str, str]]:
    """Seed a world; returns {report_id: (settlement_id, charset, compression)} of the seeded reports."""
    orders = [
        (
            order(
                de_order_id(n),
                DE,
                WINDOW_START + timedelta(hours=n),
                ("Unshipped", "Shipped", "Canceled")[n % 3],
                ("MFN", "AFN")[n % 2],
            ),
            [item(1)],
        )
        for n in range(25)
    ]
    orders += [
        (
            order(f"171-{3000000 + n:07d}-{4000000 + n:07d}", FR, WINDOW_START + timedelta(hours=n), "Shipped", "AFN"),
            [item(1)],
        )
        for n in range(2)
    ]
    shipping_day = datetime(2026, 2, 1, tzinfo=UTC)
    orders.append((order(SHIP_MFN, DE, shipping_day, "Unshipped", "MFN"), [item(n) for n in range(12)]))
    orders.append((order(SHIP_AFN, DE, shipping_day, "Unshipped", "AFN"), [item(1)]))
    listings = [
        {
            "sku": "KIT/CHEF KNIFE-01",
            "marketplace_id": DE,
            "price": "24.99",
            "quantity": 7,
            "title": "Chef Knife",
            "currency": "EUR",
            "product_type": "KITCHEN",
            "asin": "B000TEST01",
        }
    ]
    store = SpApiStore(data_dir)
    try:
        store.seed(orders, [], listings, "A2SANDBOXSELLER")
        variants: dict[str, tuple[str, str, str]] = {}
        for n, (charset, compression) in enumerate(VARIANTS):
            settlement_id = f"2400000000{n}"
            created = now - timedelta(days=10 - n)
            end = created - timedelta(days=2)
            doc = SettlementDocument(
                settlement_id,
                DE,
                "EUR",
                end - timedelta(days=14),
                end,
                end + timedelta(days=2),
                Decimal("0"),
                settlement_text(settlement_id),
                created,
            )
            report_id = store.add_settlement_report(doc, charset=charset, compression=compression)
            variants[report_id] = (settlement_id, charset, compression)
        return variants
    finally:
        store.close()


@dataclass(frozen=True)
class Sandbox:
    server: RunningServer
    data_dir: Path
    variants: dict[str, tuple[str, str, str]]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def account(self, **overrides: object) -> AmazonAccount:
        values: dict[str, object] = dict(
            endpoint=self.base_url,
            token_url=f"{self.base_url}/auth/o2/token",
            seller_id="A2SANDBOXSELLER",
            marketplace_ids=(DE,),
            **credentials(self.data_dir),
        )
        values.update(overrides)
        return AmazonAccount(**values)  # type: ignore[arg-type]  # the fields by name

    def connector(self, time_scale: float = TIME_SCALE, **overrides: object) -> AmazonConnector:
        return AmazonConnector(self.account(**overrides), time_scale=time_scale, backoff=FAST_BACKOFF)

    def arm_fault(self, status: int, count: int, operations: list[str], with_body: bool) -> None:
        answer = httpx.post(
            f"{self.base_url}/sandbox/faults",
            json={"status": status, "count": count, "operations": operations, "with_body": with_body},
        )
        answer.raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.base_url}/sandbox/faults").raise_for_status()

    def state(self) -> dict:
        return httpx.get(f"{self.base_url}/sandbox/state").json()


def start_sandbox(data_dir: Path, seed_world: bool = True, time_scale: float = TIME_SCALE) -> Iterator[Sandbox]:
    data_dir.mkdir(parents=True, exist_ok=True)
    variants = seed(data_dir, datetime.now(UTC)) if seed_world else {}
    server = serve_in_thread(lambda base_url: create_app(data_dir, base_url, time_scale=time_scale))
    try:
        yield Sandbox(server, data_dir, variants)
    finally:
        server.stop()


def share_lwa_app(source_dir: Path, target_dir: Path) -> None:
    """Make ``target``'s LWA accept ``source``'s app and refresh token (one app, two Amazon hosts)."""
    creds = credentials(source_dir)
    SpApiStore(target_dir).close()  # creates the schema
    with sqlite3.connect(target_dir / "spapi.sqlite3") as db:
        db.execute(
            "UPDATE lwa_apps SET client_id = ?, client_secret = ?, refresh_token = ?",
            (creds["lwa_app_id"], creds["lwa_client_secret"], creds["refresh_token"]),
        )
