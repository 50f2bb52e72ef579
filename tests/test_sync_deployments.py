"""Order sync and shipment sync as deployed (issue #14, item 7): a sandbox run maps the world's
SKUs through the routing the sandbox writes, and each run leaves its artifacts.

The sandbox world (seed 0, 20 orders) sells the catalog's SKUs (HOM-10001, ...) while its M3
stocks the item numbers (A10001, ...): with the shipped routing alone (``items: {}``) every order
would be dead-lettered as an unknown SKU. One order seeded here sells NO-SUCH-SKU, which no
routing maps: the one dead letter. Expected values come from the world and that order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from _flow_artifacts import flow_run_artifacts
from _spapi_fixtures import order

from flows.connections import open_connections
from flows.contract import run_document
from sandbox.catalog import build_catalog
from sandbox.spapi import SpApiStore
from sync.routing import SHIPPED_ROUTING

UNKNOWN_SKU_ORDER = "111-4100000-0000001"
US = "ATVPDKIKX0DER"
USER_ROUTING = "items: [a user's file, half edited\n"  # not even YAML: a run reading it would fail
CREATED_STATUSES = ("Unshipped", "Shipped")  # what order sync creates in M3 (Pending waits)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded sandbox home whose user has an order_routing.yaml of their own, plus one order
    of an SKU nobody maps."""
    path = tmp_path_factory.mktemp("sync-deployments-home")
    (path / "order_routing.yaml").write_text(USER_ROUTING, encoding="utf-8")
    with open_connections(path, sandbox=True, orders=20):
        pass
    head, items = order(UNKNOWN_SKU_ORDER, datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    items[0].update(SellerSKU="NO-SUCH-SKU")
    store = SpApiStore(path / "sandbox" / "spapi")
    try:
        store.seed([(head, items)], [], [], json.loads((path / "sandbox" / "world.json").read_text())["seller_id"])
    finally:
        store.close()
    return path


def _world_orders(home: Path) -> dict[str, str]:
    """The world's orders (id -> status), rebuilt from the home's seed."""
    with open_connections(home, sandbox=True) as connections:
        world = connections.sandbox_env.world()
    return {head["AmazonOrderId"]: head["OrderStatus"] for head, _ in world.orders_v0()}


def test_the_sandbox_writes_its_own_routing_from_the_catalog_and_leaves_the_users_alone(home: Path) -> None:
    written = yaml.safe_load((home / "sandbox" / "order_routing.yaml").read_text(encoding="utf-8"))
    shipped = yaml.safe_load(SHIPPED_ROUTING.read_text(encoding="utf-8"))
    catalog = build_catalog(0)
    assert written["items"]["HOM-10001"] == "A10001"  # sandbox/catalog.py: category prefix, A + number
    assert written["items"] == {item.sku: item.itno for item in catalog} and len(written["items"]) == 24
    assert {k: v for k, v in written.items() if k != "items"} == {k: v for k, v in shipped.items() if k != "items"}
    assert (home / "order_routing.yaml").read_text(encoding="utf-8") == USER_ROUTING


def test_sandbox_runs_create_the_worlds_orders_and_leave_their_artifacts(prefect_api_url: str, home: Path) -> None:
    from flows.orders import order_sync
    from flows.shipments import shipment_sync

    world = _world_orders(home)
    expected = {order_id for order_id, status in world.items() if status in CREATED_STATUSES}
    assert expected, "the world has no order to create"
    start = json.loads((home / "sandbox" / "world.json").read_text(encoding="utf-8"))["start"]

    state = order_sync(since=f"{start}T00:00:00Z", sandbox=True, home=str(home), return_state=True)
    document = run_document(state)
    assert {e["amazon_order_id"] for e in document["created"]} == expected
    [letter] = document["dead_lettered"]  # only the order no routing maps
    assert letter["amazon_order_id"] == UNKNOWN_SKU_ORDER and "NO-SUCH-SKU" in letter["reason"]

    artifacts = flow_run_artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {"order-sync-summary-sandbox", "order-sync-dead-letters-sandbox"}
    assert artifacts["order-sync-summary-sandbox"] == (
        "# Amazon orders into M3\n\n| | count |\n|---|---|\n"
        f"| created in M3 | {len(expected)} |\n| already in M3 | 0 |\n| cancelled in M3 | 0 |\n| skipped | 0 |\n"
        "| waiting (not confirmed by Amazon yet) | 0 |\n| dead-lettered | 1 |\n"
    )
    assert artifacts["order-sync-dead-letters-sandbox"] == [{"order": UNKNOWN_SKU_ORDER, "reason": letter["reason"]}]

    # Shipments: the world's orders are Shipped on Amazon already, so order sync recorded them as
    # done for shipment sync: none is read again, nothing is confirmed and nothing dead-lettered.
    assert {world[o] for o in expected} == {"Shipped"}
    state = shipment_sync(sandbox=True, home=str(home), return_state=True)
    assert run_document(state)["dead_lettered"] == []
    artifacts = flow_run_artifacts(state.state_details.flow_run_id)
    assert artifacts == {
        "shipment-sync-summary-sandbox": (
            "# Shipment confirmations to Amazon\n\n| | count |\n|---|---|\n"
            "| orders checked | 0 |\n| packages confirmed | 0 |\n| packages confirmed before | 0 |\n"
            "| deliveries waiting for a tracking number | 0 |\n| orders dead-lettered | 0 |\n"
        ),
        "shipment-sync-dead-letters-sandbox": [{"order": "", "reason": "no order was dead-lettered"}],
    }


def test_an_inventory_run_leaves_its_artifacts(prefect_api_url: str, home: Path) -> None:
    """One SKU in one marketplace, no buffer: Amazon gets M3's allocatable quantity (read from the
    sandbox M3 here) when it differs from the listing's; the price list holds the listing's price."""
    from flows.inventory import inventory_sync

    settings = {
        "skus": ["HOM-10001"],
        "buffers": {"default": {"units": 0}},
        "marketplaces": {"US": {"warehouses": ["100"], "price_list": "AMZUSD"}},
    }
    (home / "inventory.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    with open_connections(home, sandbox=True) as connections:
        assert connections.m3 is not None
        (balance,) = connections.m3.read_balances("100", ["A10001"])
        listing = connections.require_amazon().for_marketplace(US).get_listing("HOM-10001", US)
    allocatable = int(balance.allocatable)
    shown = listing["fulfillmentAvailability"][0]["quantity"]
    price = str(Decimal(build_catalog(0)[0].prices["US"]) / 100)
    state = inventory_sync(sandbox=True, home=str(home), return_state=True)
    body = run_document(state)["inventory"]
    sent = int(shown != allocatable)
    assert (body["sent"], body["unchanged"], body["held"], body["rejected"]) == (sent, 1 - sent, 0, 0)
    artifacts = flow_run_artifacts(state.state_details.flow_run_id)
    assert artifacts["inventory-sync-summary-sandbox"] == (
        "# Stock and prices to Amazon listings\n\n| | count |\n|---|---|\n"
        f"| listings patched | {sent} |\n| skipped as unchanged | {1 - sent} |\n| held | 0 |\n"
        "| rejected (dead-lettered) | 0 |\n| fulfilled by Amazon (never patched) | 0 |\n| read back | 0 |\n"
        "| exceptions | 0 |\n"
    )
    row = {"outcome": "sent", "sku": "HOM-10001", "marketplace": "US", "quantity": str(allocatable)}
    row |= {"price": f"{price} USD", "sent": "quantity", "reason": ""}
    empty = {"outcome": "", "sku": "", "marketplace": "", "quantity": "", "price": "", "sent": ""}
    assert artifacts["inventory-sync-listings-sandbox"] == (
        [row] if sent else [empty | {"reason": "no listing was patched, held or rejected"}]
    )
