"""Issue #14, item 1: a CloudSuite batch order that M3's check rejects at Confirm stays in OIS275
below status 90; Confirm still answers OK, so order sync reads the order's messages
(OIS100MI/LstErrMsgOrder) and makes the order a dead letter with them, never "created".

Two Unshipped orders on the SP-API sandbox, one of an item M3 has not released (status 10, set in
the sandbox M3's own database); the brief profile's AddHead refuses a blocked customer at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from _spapi_fixtures import order

from flows.connections import open_connections
from flows.orders_steps import FLOW, AmazonOrder, M3Lookups, sync_order
from sandbox.m3.store import Store
from sandbox.spapi import SpApiStore
from sync.routing import load_routing

PURCHASED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
GOOD, HELD = "111-4200000-0000001", "111-4200000-0000002"


def _home(path: Path, profile: str) -> tuple[dict[str, str], str]:
    """A seeded sandbox home with the profile; the catalog's SKU -> item map and the seller."""
    with open_connections(path, sandbox=True, orders=20):
        pass
    if profile == "cloudsuite":
        ionapi = path / "sandbox" / "m3.ionapi"
        (path / "config.toml").write_text(f'[m3]\nionapi = "{ionapi}"\nprofile = "cloudsuite"\n', encoding="utf-8")
    items = yaml.safe_load((path / "sandbox" / "order_routing.yaml").read_text(encoding="utf-8"))["items"]
    seller = json.loads((path / "sandbox" / "world.json").read_text(encoding="utf-8"))["seller_id"]
    return items, seller


def _m3_record(path: Path, table: str, key: str, value: str, **fields: str) -> None:
    """Change one record of the sandbox M3's database (what a person does in M3's own screens)."""
    store = Store(path / "sandbox" / "m3")
    try:
        with store.transaction() as tx:
            record = tx.record(f"SELECT data FROM {table} WHERE {key} = ?", (value,))
            assert record is not None, f"{table} {value} is not in the sandbox M3"
            tx.execute(f"UPDATE {table} SET data = ? WHERE {key} = ?", (json.dumps({**record, **fields}), value))
    finally:
        store.close()


def _orders(path: Path, seller: str, skus: dict[str, str]) -> list[AmazonOrder]:
    seeded = []
    for n, (order_id, sku) in enumerate(skus.items()):
        head, items = order(order_id, PURCHASED + timedelta(hours=n), status="Unshipped", items=1)
        items[0].update(SellerSKU=sku, QuantityOrdered=1)
        seeded.append((head, items))
    store = SpApiStore(path / "sandbox" / "spapi")
    try:
        store.seed(seeded, [], [], seller)
    finally:
        store.close()
    return [AmazonOrder(head, tuple(items)) for head, items in seeded]


def test_a_batch_order_rejected_at_confirm_is_a_dead_letter_with_m3s_messages(tmp_path: Path):
    items, seller = _home(tmp_path, "cloudsuite")
    (good_sku, good_itno), (held_sku, held_itno) = list(items.items())[:2]
    _m3_record(tmp_path, "items", "itno", held_itno, STAT="10")
    orders = _orders(tmp_path, seller, {GOOD: good_sku, HELD: held_sku})
    with open_connections(tmp_path, sandbox=True) as connections:
        assert connections.m3_profile == "cloudsuite" and connections.m3 is not None
        routing = load_routing(tmp_path, sandbox=True)
        good, held = (sync_order(connections, routing, M3Lookups(connections), o) for o in orders)
        assert good.outcome == "created" and good.orno
        assert held.outcome == "dead_lettered" and held.orno is None
        assert "XIT0107" in held.reason and f"Item number {held_itno} is not permitted - status is 10" in held.reason
        in_m3 = connections.m3.orders_by_reference("AMZUS")
        assert in_m3.get(GOOD) == good.orno and HELD not in in_m3  # OIS275 only: no customer order
        [letter] = connections.state.list_dead_letters(FLOW)
        assert letter.entity_key == HELD
        assert connections.state.m3_id_for("order", HELD) is None


@pytest.mark.parametrize("profile", ["brief", "cloudsuite"])
def test_a_blocked_customer_refuses_the_order_with_m3s_message(tmp_path: Path, profile: str):
    items, seller = _home(tmp_path, profile)
    sku = next(iter(items))
    _m3_record(tmp_path, "customers", "cuno", "AMZUS", STAT="90")
    [amazon] = _orders(tmp_path, seller, {GOOD: sku})
    with open_connections(tmp_path, sandbox=True) as connections:
        result = sync_order(connections, load_routing(tmp_path, sandbox=True), M3Lookups(connections), amazon)
        assert result.outcome == "dead_lettered"
        assert "WCU0290" in result.reason and "Customer AMZUS is blocked" in result.reason
        assert connections.m3 is not None and GOOD not in connections.m3.orders_by_reference("AMZUS")
