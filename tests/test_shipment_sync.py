"""Shipment confirmations (issue #14, item 5): the pure plan (sync/shipments.py) and the flow
(flows/shipments.py) against both sandboxes: orders entered in the sandbox M3, delivered there
with tracking numbers, confirmed to the SP-API sandbox once each."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors.m3 import OrderLineRequest, OrderRequest
from flows.connections import open_connections
from flows.contract import run_document
from sandbox.m3.seed import FREIGHT_ITEM
from sync.routing import SHIPPED_ROUTING, load_routing
from sync.shipments import (
    BAD_DELIVERY,
    UNKNOWN_CARRIER,
    UNMATCHED_LINE,
    AmazonItem,
    Carrier,
    CarrierMapping,
    CarrierSettingsError,
    PackageItem,
    load_carriers,
    parse_carriers,
    plan_shipments,
)

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Line:
    itno: str
    quantity: Decimal


@dataclass(frozen=True)
class Head:
    dlix: str
    tracking: str
    carrier: str
    departure_date: date | None
    lines: tuple[Line, ...]


CARRIERS = CarrierMapping({"DHL": Carrier("DHL"), "VAN": Carrier("Other", "Our van")})
ITEMS = (AmazonItem("A1", "KNIFE", 2), AmazonItem("A2", "BOARD", 1), AmazonItem("A3", "KNIFE", 1))


# -- the plan -----------------------------------------------------------------------------------


def test_two_deliveries_split_the_items_and_the_freight_line_is_left_out() -> None:
    first = Head(
        "10000000002", "JJD1", "DHL", date(2026, 11, 20), (Line("KNIFE", Decimal("2")), Line("FREIGHT", Decimal(1)))
    )
    second = Head(
        "10000000003", "JJD2", "VAN", date(2026, 11, 21), (Line("KNIFE", Decimal(1)), Line("BOARD", Decimal(1)))
    )
    plan = plan_shipments("111-1", [second, first], ITEMS, CARRIERS, now=NOW, ignored_items={"FREIGHT"})
    assert plan.problems == () and plan.waiting == ()
    one, two = plan.packages
    assert (one.package_reference_id, one.carrier_code, one.carrier_name, one.tracking_number) == (
        "10000000002",
        "DHL",
        None,
        "JJD1",
    )
    assert one.ship_date == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert one.items == (PackageItem("A1", 2),)  # the first KNIFE item takes both pieces
    assert (two.carrier_code, two.carrier_name) == ("Other", "Our van")
    assert two.items == (PackageItem("A2", 1), PackageItem("A3", 1))


def test_without_tracking_number_waits_and_still_holds_its_quantities() -> None:
    packed_later = Head("10000000002", " ", "DHL", date(2026, 11, 20), (Line("KNIFE", Decimal(2)),))
    shipped = Head("10000000003", "JJD2", "DHL", date(2026, 11, 21), (Line("KNIFE", Decimal(1)),))
    plan = plan_shipments("111-1", [packed_later, shipped], ITEMS, CARRIERS, now=NOW)
    assert plan.waiting == ("10000000002",)
    assert [p.items for p in plan.packages] == [(PackageItem("A3", 1),)]  # A1's two are the waiting delivery's


def test_unknown_agent_bad_quantity_and_foreign_item_are_problems_not_packages() -> None:
    deliveries = [
        Head("10000000002", "1Z9", "PIGEON", date(2026, 11, 20), (Line("BOARD", Decimal(1)),)),
        Head("10000000003", "JJD2", "DHL", date(2026, 11, 21), (Line("KNIFE", Decimal("1.5")),)),
        Head("10000000004", "JJD3", "DHL", date(2026, 11, 21), (Line("SPOON", Decimal(1)),)),
        Head("10000000005", "JJD4", "DHL", date(2026, 11, 21), (Line("KNIFE", Decimal(4)),)),
    ]
    plan = plan_shipments("111-1", deliveries, ITEMS, CARRIERS, now=NOW)
    assert plan.packages == ()
    assert [(p.kind, p.dlix) for p in plan.problems] == [
        (UNKNOWN_CARRIER, "10000000002"),
        (BAD_DELIVERY, "10000000003"),
        (UNMATCHED_LINE, "10000000004"),
        (UNMATCHED_LINE, "10000000005"),  # 3 KNIFE pieces ordered, 4 delivered: 1 too many
    ]
    assert "'PIGEON'" in plan.problems[0].message and "1 of 4" in plan.problems[3].message
    assert plan.message.startswith("order 111-1: delivery 10000000002: unknown forwarding agent")


def test_ship_date_never_in_the_future_and_package_reference_is_numeric() -> None:
    today = Head("10000000002", "JJD1", "DHL", NOW.date(), (Line("BOARD", Decimal(1)),))
    odd = Head("D-7", "JJD2", "DHL", NOW.date(), (Line("KNIFE", Decimal(1)),))
    plan = plan_shipments("111-1", [today, odd], ITEMS, CARRIERS, now=NOW)
    assert plan.packages[0].ship_date == NOW  # noon would be after 09:30
    assert [(p.kind, p.dlix) for p in plan.problems] == [(BAD_DELIVERY, "D-7")]


def test_carrier_mapping_file_rules(tmp_path: Path) -> None:
    shipped = load_carriers(None)
    assert shipped.carrier_for("DHL") == Carrier("DHL") and shipped.carrier_for("UPS ") == Carrier("UPS")
    (tmp_path / "carriers.yaml").write_text("carriers:\n  DHL: {code: DHL}\n  BIKE: {code: Other, name: City Bike}\n")
    merged = load_carriers(tmp_path)
    assert merged.carrier_for("BIKE") == Carrier("Other", "City Bike") and merged.carrier_for("UPS") == Carrier("UPS")
    with pytest.raises(CarrierSettingsError, match=r"x\.yaml: carriers\.BIKE: code Other needs the carrier's name"):
        parse_carriers({"carriers": {"BIKE": {"code": "Other"}}}, "x.yaml")
    with pytest.raises(CarrierSettingsError, match="x.yaml: carriers.DHL: must be"):
        parse_carriers({"carriers": {"DHL": {"code": "DHL", "colour": "yellow"}}}, "x.yaml")
    (tmp_path / "carriers.yaml").write_text("carriers: [\n")
    with pytest.raises(CarrierSettingsError, match=r"carriers\.yaml: line \d+, column \d+: not valid YAML"):
        load_carriers(tmp_path)


# -- the flow against both sandboxes ------------------------------------------------------------

SEED, ORDERS = 9, 200  # this world has three unshipped merchant-fulfilled orders (FR, UK, UK)
CONFIRMED, NO_TRACKING, UNKNOWN_AGENT = "202-5791484-6873901", "203-1441058-1767392", "171-4855956-7371579"


def _enter_and_deliver(home: Path) -> dict[str, dict]:
    """The three orders entered in the sandbox M3 as order sync would (items by SKU, a freight
    line), recorded in the id map, delivered by M3; then one delivery loses its tracking number
    and one gets a forwarding agent no mapping knows. Returns each order's delivery as M3 holds it
    and its Amazon items."""
    with open_connections(home, sandbox=True, seed=SEED, orders=ORDERS) as connections:
        world = connections.sandbox_env.world()
        itno_of = {i.sku: i.itno for i in world.catalog}
        routing_text = yaml.safe_load(SHIPPED_ROUTING.read_text(encoding="utf-8"))
        routing_text["items"] = itno_of
        (home / "order_routing.yaml").write_text(yaml.safe_dump(routing_text), encoding="utf-8")
        routing = load_routing(home)
        m3, amazon = connections.require_m3(), connections.require_amazon()
        markets = {o.order_id: o.market for o in world.orders}
        facts: dict[str, dict] = {}
        for order_id in (CONFIRMED, NO_TRACKING, UNKNOWN_AGENT):
            route = next(r for r in routing.marketplaces.values() if r.marketplace.code == markets[order_id])
            connector = amazon.for_marketplace(route.marketplace.marketplace_id)
            items = connector.get_order_items(order_id)
            lines = [OrderLineRequest(itno=itno_of[i["SellerSKU"]], quantity=i["QuantityOrdered"]) for i in items]
            lines.append(OrderLineRequest(itno=FREIGHT_ITEM, quantity=1, unit_price=Decimal("4.99")))
            orno = m3.create_order(
                OrderRequest(
                    cuno=route.customer,
                    customer_order_ref=order_id,
                    order_type=route.mfn.order_type,
                    lines=tuple(lines),
                    currency=route.currency,
                )
            ).orno
            connections.state.map_id("order", order_id, orno, marketplace=markets[order_id])
            connections.sandbox_env.advance_m3_order(orno, "deliver")
            facts[order_id] = {"orno": orno, "items": items, "marketplace_id": route.marketplace.marketplace_id}
        # An order Amazon already shows Shipped (e.g. confirmed in Seller Central): done without M3.
        shipped = next(o for o in world.orders if o.status == "Shipped" and o.market == "UK")
        connections.state.map_id("order", shipped.order_id, "9999999999", marketplace="UK")
    database = sqlite3.connect(home / "sandbox" / "m3" / "m3.sqlite")
    with database:
        for order_id, change in ((NO_TRACKING, {"ETRN": ""}), (UNKNOWN_AGENT, {"FWNO": "PIGEON"})):
            ((dlix, data),) = database.execute(
                "SELECT dlix, data FROM deliveries WHERE orno = ?", (facts[order_id]["orno"],)
            )
            database.execute(
                "UPDATE deliveries SET data = ? WHERE dlix = ?", (json.dumps({**json.loads(data), **change}), dlix)
            )
        for order_id in facts:
            ((dlix, data),) = database.execute(
                "SELECT dlix, data FROM deliveries WHERE orno = ?", (facts[order_id]["orno"],)
            )
            facts[order_id]["delivery"] = json.loads(data)
    database.close()
    return facts


def _shipments(env: Any) -> list[dict]:
    """The packages the SP-API sandbox recorded (its regions' hosts share one store: FR and UK are EU)."""
    answer = httpx.get(f"{env.spapi['eu'].base_url}/sandbox/state", timeout=30)
    return list(answer.json()["shipments"])


def test_each_package_is_confirmed_once_waiting_and_unknown_agents_are_kept_apart(
    prefect_api_url: str, tmp_path: Path
) -> None:
    from flows.shipments import package_key, shipment_sync

    home = tmp_path / "home"
    facts = _enter_and_deliver(home)
    state = shipment_sync(sandbox=True, home=str(home), return_state=True)
    assert state.is_failed() and state.message == f"1 order(s) dead-lettered: {UNKNOWN_AGENT}"
    document = run_document(state)
    delivery = facts[CONFIRMED]["delivery"]
    # The sandbox M3 ships non-USD orders with DHL, tracking JJD<DLIX><last 4 of ORNO>.
    assert delivery["FWNO"] == "DHL"
    assert delivery["ETRN"] == f"JJD{delivery['DLIX']}{facts[CONFIRMED]['orno'][-4:]}"
    items = facts[CONFIRMED]["items"]
    assert [(c["order"], c["package"], c["carrier"], c["tracking"], c["items"]) for c in document["confirmed"]] == [
        (
            CONFIRMED,
            delivery["DLIX"],
            "DHL",
            delivery["ETRN"],
            [{"order_item_id": i["OrderItemId"], "quantity": i["QuantityOrdered"]} for i in items],
        )
    ]
    assert document["waiting"] == [{"order": NO_TRACKING, "delivery": facts[NO_TRACKING]["delivery"]["DLIX"]}]
    [letter] = document["dead_lettered"]
    assert letter["order"] == UNKNOWN_AGENT and "forwarding agent 'PIGEON'" in letter["error"]

    with open_connections(home, sandbox=True) as connections:
        env = connections.sandbox_env
        shipments = _shipments(env)
        amazon = connections.require_amazon()
        order = amazon.for_marketplace(facts[CONFIRMED]["marketplace_id"]).get_order(CONFIRMED)
        letters = connections.state.list_dead_letters(flow="shipment-sync")
        posting = connections.state.get_posting(package_key(CONFIRMED, delivery["DLIX"]))
    assert order["OrderStatus"] == "Shipped"
    assert [
        (s["amazonOrderId"], s["packageDetail"]["trackingNumber"], s["packageDetail"]["carrierCode"]) for s in shipments
    ] == [(CONFIRMED, delivery["ETRN"], "DHL")]
    assert shipments[0]["packageDetail"]["shipDate"].startswith(
        f"{delivery['DSDT'][:4]}-{delivery['DSDT'][4:6]}-{delivery['DSDT'][6:]}"
    )
    assert [(l.entity_key, l.attempts) for l in letters] == [(UNKNOWN_AGENT, 1)]
    assert posting is not None and posting.status == "posted"

    # A rerun confirms nothing: the shipped order is done, the waiting one still waits.
    again = run_document(shipment_sync(sandbox=True, home=str(home), return_state=True))
    assert again["confirmed"] == [] and len(again["waiting"]) == 1 and len(again["dead_lettered"]) == 1
    # Four orders in the id map: the first run finished two (confirmed; Shipped on Amazon already).
    assert (document["orders"], again["orders"]) == (4, 2)
    with open_connections(home, sandbox=True) as connections:
        after = _shipments(connections.sandbox_env)
        [letter_again] = connections.state.list_dead_letters(flow="shipment-sync")
    assert len(after) == 1 and letter_again.attempts == 2


def _m3_delivery_change(home: Path, dlix: str, change: dict) -> None:
    with sqlite3.connect(home / "sandbox" / "m3" / "m3.sqlite") as database:
        ((data,),) = database.execute("SELECT data FROM deliveries WHERE dlix = ?", (dlix,))
        database.execute(
            "UPDATE deliveries SET data = ? WHERE dlix = ?", (json.dumps({**json.loads(data), **change}), dlix)
        )
    database.close()


def test_a_package_in_doubt_is_found_on_amazon_and_never_confirmed_twice(prefect_api_url: str, tmp_path: Path) -> None:
    from flows.shipments import package_key, shipment_sync

    home = tmp_path / "home"
    facts = _enter_and_deliver(home)
    orno, first = facts[CONFIRMED]["orno"], facts[CONFIRMED]["delivery"]
    item_one, item_two = facts[CONFIRMED]["items"]
    # M3 splits the order: its second line leaves later, in a delivery of its own not packed yet.
    second = str(int(first["DLIX"]) + 100)
    with sqlite3.connect(home / "sandbox" / "m3" / "m3.sqlite") as database:
        database.execute(
            "INSERT INTO deliveries (dlix, orno, data) VALUES (?, ?, ?)",
            (second, orno, json.dumps({**first, "DLIX": second, "ETRN": ""})),
        )
        ((ponr, data),) = database.execute("SELECT ponr, data FROM order_lines WHERE orno = ? AND ponr = 2", (orno,))
        database.execute(
            "UPDATE order_lines SET data = ? WHERE orno = ? AND ponr = ?",
            (json.dumps({**json.loads(data), "DLIX": second}), orno, ponr),
        )
    database.close()

    def run() -> dict:
        return run_document(shipment_sync(sandbox=True, home=str(home), return_state=True))

    one = run()
    assert [(c["order"], c["package"], c["items"]) for c in one["confirmed"]] == [
        (
            CONFIRMED,
            first["DLIX"],
            [{"order_item_id": item_one["OrderItemId"], "quantity": item_one["QuantityOrdered"]}],
        )
    ]
    assert {"order": CONFIRMED, "delivery": second} in one["waiting"]
    # The answer to that confirmation never came (as far as the state store knows).
    with open_connections(home, sandbox=True) as connections:
        connections.state.mark_in_doubt(package_key(CONFIRMED, first["DLIX"]), "read timeout")
    two = run()
    assert [(c["package"], c.get("found_on_amazon")) for c in two["confirmed"]] == [(first["DLIX"], True)]
    _m3_delivery_change(home, second, {"ETRN": "JJD-LATER-1"})
    three = run()
    assert [(c["package"], c["tracking"], c["items"]) for c in three["confirmed"]] == [
        (second, "JJD-LATER-1", [{"order_item_id": item_two["OrderItemId"], "quantity": item_two["QuantityOrdered"]}])
    ]
    with open_connections(home, sandbox=True) as connections:
        shipments = _shipments(connections.sandbox_env)
        status = connections.require_amazon().for_marketplace(facts[CONFIRMED]["marketplace_id"]).get_order(CONFIRMED)
        postings = [connections.state.get_posting(package_key(CONFIRMED, d)) for d in (first["DLIX"], second)]
    # Two packages at Amazon, each once; both postings posted.
    assert [(s["amazonOrderId"], s["packageDetail"]["packageReferenceId"]) for s in shipments] == [
        (CONFIRMED, first["DLIX"]),
        (CONFIRMED, second),
    ]
    assert status["OrderStatus"] == "Shipped"
    assert [p.status if p else None for p in postings] == ["posted", "posted"]


def test_cli_exit_codes_json_and_one_line_errors(prefect_api_url: str, tmp_path: Path) -> None:
    from _cli import m3sync

    home = tmp_path / "home"
    facts = _enter_and_deliver(home)
    run = m3sync("shipments", "--sandbox", "--json", "--home", str(home), api_url=prefect_api_url)
    assert run.code == 3, run.stderr  # an order was dead-lettered
    document = run.document
    assert [c["order"] for c in document["confirmed"]] == [CONFIRMED]
    assert [w["order"] for w in document["waiting"]] == [NO_TRACKING]
    assert [line for line in run.stderr.splitlines() if line.startswith("order ")] == [
        f"order {UNKNOWN_AGENT}: dead letter 1: {document['dead_lettered'][0]['error']}"
    ]
    assert facts[UNKNOWN_AGENT]["delivery"]["DLIX"] in document["dead_lettered"][0]["error"]

    (home / "carriers.yaml").write_text("carriers:\n  PIGEON: {code: Other}\n", encoding="utf-8")
    bad = m3sync("shipments", "--sandbox", "--home", str(home), api_url=prefect_api_url)
    assert bad.code == 2
    assert bad.stderr.strip().splitlines() == [
        f"m3sync: {home / 'carriers.yaml'}: carriers.PIGEON: code Other needs the carrier's name"
    ]
