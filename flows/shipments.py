"""Shipment confirmations: M3 deliveries of merchant-fulfilled orders -> Amazon confirmShipment.

orders in the id map (kind "order", recorded by order sync) not yet done -> per order: Amazon's
order and items, M3's deliveries (MWS411MI/MWS410MI, with tracking numbers) -> the packages
(``sync.shipments``) -> each package confirmed ONCE: its posting key (order + delivery) is
claimed in the state store before the call and marked posted after it. A claim whose answer
never came (``in_doubt``, or the claimer died) is checked against Amazon's shipped quantities
before any second call, as the settlement's voucher posting checks M3. An order Amazon shows
Shipped, Canceled or fulfilled by Amazon is done and not read again.

One bad order (a forwarding agent the carrier mapping does not know, a package Amazon refuses,
anything unexpected) becomes a dead letter; the others go on. M3 or Amazon out of reach stops
the run (exit 4) without dead letters: the next run picks up where it stopped. The run ends
Failed when anything was dead-lettered or out of reach.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task

from connectors.amazon import (
    AmazonConnector,
    AmazonError,
    AmazonRequestError,
    AmazonUnreachable,
    PackageDetail,
    ShipmentItem,
)
from connectors.m3 import Delivery, M3Error, M3TransactionError
from connectors.settings import ConfigurationError, load_settings
from connectors.state import StateStore
from flows.artifacts import artifact_environment, publish_shipment_artifacts
from flows.connections import Connections, open_connections
from flows.exit_codes import EXIT_HELD, EXIT_OK, EXIT_UNREACHABLE
from flows.failures import contained, end_run, flow_boundary, one_line, run_logger
from flows.settlement_steps import CONNECTOR_RETRIES, RECLAIM_CLAIMED_AFTER
from reconciliation.marketplaces import MARKETPLACES
from sync.routing import RoutingSettings, RoutingSettingsError, load_routing
from sync.shipments import (
    AmazonItem,
    CarrierMapping,
    CarrierSettingsError,
    PlannedPackage,
    ShipmentPlan,
    load_carriers,
    plan_shipments,
)

FLOW_NAME = "shipment-sync"
SHIPMENT_KIND = "shipment"  # posting kind of one confirmed package
ORDER_DONE_KIND = "shipment-order"  # posting kind of an order nothing is left to confirm of
DONE_STATUSES = ("Shipped", "Canceled")  # Amazon's order statuses with nothing to confirm


def package_key(amazon_order_id: str, dlix: str) -> str:
    return f"SHIP-{amazon_order_id}-{dlix}"


def order_done_key(amazon_order_id: str) -> str:
    return f"SHIPPED-{amazon_order_id}"


@dataclass(frozen=True)
class OrderToShip:
    amazon_order_id: str
    orno: str
    marketplace_id: str


@dataclass(frozen=True)
class OrderRead:
    status: str
    channel: str
    items: tuple[dict[str, Any], ...]
    deliveries: tuple[Delivery, ...]


@flow(name="shipment-sync")  # a literal: ops setup reads flow names from the source
@flow_boundary
def shipment_sync(sandbox: bool = False, home: str | None = None) -> dict:
    """Confirm the shipments of merchant-fulfilled Amazon orders M3 has delivered with a tracking
    number, each package once.

    Args:
        sandbox: Use the embedded M3 and SP-API emulators under HOME/sandbox instead of the
            configured systems.
        home: The m3sync home folder: config.toml, state and carriers.yaml (default
            $M3SYNC_HOME, else ./.m3sync in the worker's directory).

    Returns:
        The run's JSON document (docs/cli-contract.md, "m3sync shipments"): confirmed packages,
        deliveries waiting for a tracking number, dead-lettered orders.
    """
    with open_connections(home, sandbox=sandbox, need_m3=True, need_amazon=True) as connections:
        carriers, routing = check_mappings(connections.home, sandbox=sandbox)
        environment = artifact_environment(load_settings(connections.home), sandbox)  # the artifacts' keys end in it
        connections.require_m3()
        accounts = connections.require_amazon()
        document: dict[str, Any] = {
            "orders": 0,
            "confirmed": [],
            "already_confirmed": 0,
            "waiting": [],
            "dead_lettered": [],
            "unreachable": None,
        }
        for order in orders_to_ship(connections.state, accounts.marketplace_ids):
            document["orders"] += 1
            if not ship_order(connections, carriers, routing, order, document):
                break
        run_logger().info("%s", shipment_summary(document))
        contained("publishing the run's artifacts", lambda: publish_shipment_artifacts(environment, document))
        return end_run(document, shipment_exit_code(document), shipment_message(document))


def ship_order(
    connections: Connections,
    carriers: CarrierMapping,
    routing: RoutingSettings,
    order: OrderToShip,
    document: dict[str, Any],
) -> bool:
    """One order's packages confirmed, each once, into ``document``; a bad order is a dead letter
    there. False when M3 or Amazon is out of reach (``document["unreachable"]``): stop the run.
    The flow's per-order path, and the dead-letter replay's (flows/dead_letters.py)."""
    accounts = connections.require_amazon()
    try:
        read = read_order(connections, order)
        if read.channel == "AFN" or read.status in DONE_STATUSES:
            mark_order_done(connections.state, order.amazon_order_id, read.status or read.channel)
            return True
        items = tuple(
            AmazonItem(
                str(i["OrderItemId"]),
                routing.item_number(str(i.get("SellerSKU") or "")),
                int(i.get("QuantityOrdered") or 0),
            )
            for i in read.items
        )
        plan = plan_shipments(
            order.amazon_order_id,
            read.deliveries,
            items,
            carriers,
            now=datetime.now(UTC),
            ignored_items={routing.shipping_item},
        )
        document["waiting"] += [{"order": order.amazon_order_id, "delivery": d} for d in plan.waiting]
        if plan.problems:
            raise ShipmentRefused(plan.message)
        connector = accounts.for_marketplace(order.marketplace_id)
        for package in plan.packages:
            confirmed = confirm_once(connections.state, connector, order, package)
            if confirmed is None:
                document["already_confirmed"] += 1
            else:
                document["confirmed"].append(confirmed)
        if not plan.waiting and _all_items_confirmed(plan, items):
            mark_order_done(connections.state, order.amazon_order_id, "Shipped")
    except (ShipmentRefused, AmazonRequestError, M3TransactionError) as exc:  # this order's
        document["dead_lettered"].append(dead_letter(connections.state, order, str(exc)))
    except (AmazonError, M3Error) as exc:  # out of reach or refusing us: the next run goes on from here
        document["unreachable"] = one_line(str(exc))
        return False
    except Exception as exc:  # noqa: BLE001 - one bad order is a dead letter, the others go on
        run_logger().exception("Unexpected error on the shipments of order %s", order.amazon_order_id)
        document["dead_lettered"].append(dead_letter(connections.state, order, f"{type(exc).__name__}: {exc}"))
    return True


def check_mappings(home: Path, *, sandbox: bool = False) -> tuple[CarrierMapping, RoutingSettings]:
    """The carrier mapping and the order routing (SKU -> item number, the shipping item) of
    ``home`` (the sandbox's routing for a sandbox run); a bad file is a ConfigurationError naming
    it (exit 2)."""
    try:
        return load_carriers(home), load_routing(home, sandbox=sandbox)
    except (CarrierSettingsError, RoutingSettingsError) as exc:
        raise ConfigurationError(str(exc)) from None


def shipment_summary(document: Mapping[str, Any]) -> str:
    """The one line ``m3sync shipments`` prints without --json."""
    line = (
        f"Shipments: {document['orders']} orders checked, {len(document['confirmed'])} packages confirmed "
        f"({document['already_confirmed']} confirmed before), {len(document['waiting'])} deliveries waiting "
        f"for a tracking number, {len(document['dead_lettered'])} orders dead-lettered"
    )
    return line + (f"; stopped: {document['unreachable']}" if document.get("unreachable") else "")


class ShipmentRefused(Exception):
    """An order's deliveries cannot be confirmed as they stand (the plan's problems)."""


def orders_to_ship(state: StateStore, marketplace_ids: Sequence[str]) -> list[OrderToShip]:
    """Orders in the id map of the configured marketplaces (recorded by marketplace code or id)
    that are not done yet, in Amazon order id order."""
    done = {p.source for p in state.list_postings(kind=ORDER_DONE_KIND, status="posted")}
    codes = {m.marketplace_id: m.code for m in MARKETPLACES}
    orders: dict[str, OrderToShip] = {}
    for marketplace_id in marketplace_ids:
        for recorded_as in dict.fromkeys((marketplace_id, codes.get(marketplace_id, marketplace_id))):
            for amazon_id, orno in state.all_ids("order", marketplace=recorded_as).items():
                if amazon_id not in done:
                    orders[amazon_id] = OrderToShip(amazon_id, orno, marketplace_id)
    return [orders[k] for k in sorted(orders)]


@task(**CONNECTOR_RETRIES, task_run_name="read-{order.amazon_order_id}")
def read_order(connections: Connections, order: OrderToShip) -> OrderRead:
    """Amazon's order and items, and M3's deliveries of it (retried when out of reach)."""
    connector = connections.require_amazon().for_marketplace(order.marketplace_id)
    head = connector.get_order(order.amazon_order_id)
    status, channel = str(head.get("OrderStatus") or ""), str(head.get("FulfillmentChannel") or "")
    if channel == "AFN" or status in DONE_STATUSES:
        return OrderRead(status, channel, (), ())
    items = tuple(connector.get_order_items(order.amazon_order_id))
    deliveries = tuple(connections.require_m3().delivery_tracking(order.orno))
    return OrderRead(status, channel, items, deliveries)


def confirm_once(
    state: StateStore, connector: AmazonConnector, order: OrderToShip, package: PlannedPackage
) -> dict[str, Any] | None:
    """Confirm one package exactly once; its document entry, or None when an earlier run did.

    A claim left ``in_doubt`` or ``claimed`` (the answer never came, or the claimer died) is
    checked first: when Amazon's shipped quantities already hold this package on top of the
    packages posted before it, it is recorded as posted without a second call."""
    key = package_key(order.amazon_order_id, package.dlix)
    entry = _entry(order, package)
    claim = state.claim_posting(
        key,
        kind=SHIPMENT_KIND,
        source=order.amazon_order_id,
        content_hash=_content_hash(package),
        reclaim_claimed_after=RECLAIM_CLAIMED_AFTER,
        audit={"orno": order.orno, "dlix": package.dlix},
    )
    if not claim.won and claim.posting.status == "posted":
        return None
    if not claim.won:
        raise ShipmentRefused(
            f"package {key} is being confirmed by another run (process {claim.posting.owner or 'unknown'})"
        )
    previous = claim.previous.status if claim.previous is not None else None
    if previous in ("in_doubt", "claimed", "submitted") and _amazon_has(state, connector, order, package):
        state.mark_posted(key, entry["package"], detail=entry)
        return {**entry, "found_on_amazon": True}
    detail = PackageDetail(
        package_reference_id=package.package_reference_id,
        carrier_code=package.carrier_code,
        carrier_name=package.carrier_name,
        tracking_number=package.tracking_number,
        ship_date=package.ship_date,
        items=tuple(ShipmentItem(i.order_item_id, i.quantity) for i in package.items),
    )
    try:
        connector.confirm_shipment(order.amazon_order_id, order.marketplace_id, detail)
    except AmazonRequestError as exc:  # refused: nothing was confirmed
        state.mark_failed(key, str(exc))
        raise
    except AmazonUnreachable as exc:  # no connection was made: an earlier attempt's doubt still stands
        (state.mark_failed if previous is None or previous == "failed" else state.mark_in_doubt)(key, str(exc))
        raise
    except BaseException as exc:  # may have reached Amazon: the next attempt looks there first
        state.mark_in_doubt(key, type(exc).__name__)
        raise
    state.mark_posted(key, entry["package"], detail=entry)
    return entry


def _amazon_has(state: StateStore, connector: AmazonConnector, order: OrderToShip, package: PlannedPackage) -> bool:
    """Amazon's shipped quantities cover this package on top of the order's posted packages."""
    shipped = {
        str(i["OrderItemId"]): int(i.get("QuantityShipped") or 0)
        for i in connector.get_order_items(order.amazon_order_id)
    }
    accounted: dict[str, int] = {}
    for posting in state.list_postings(kind=SHIPMENT_KIND, status="posted"):
        if posting.source == order.amazon_order_id and isinstance(posting.detail, Mapping):
            for item in posting.detail.get("items", []):
                accounted[item["order_item_id"]] = accounted.get(item["order_item_id"], 0) + int(item["quantity"])
    return all(shipped.get(i.order_item_id, 0) >= accounted.get(i.order_item_id, 0) + i.quantity for i in package.items)


def _all_items_confirmed(plan: ShipmentPlan, items: Sequence[AmazonItem]) -> bool:
    confirmed: dict[str, int] = {}
    for package in plan.packages:
        for item in package.items:
            confirmed[item.order_item_id] = confirmed.get(item.order_item_id, 0) + item.quantity
    return bool(items) and all(confirmed.get(i.order_item_id, 0) >= i.quantity for i in items)


def mark_order_done(state: StateStore, amazon_order_id: str, why: str) -> None:
    """Record that nothing is left to confirm of the order: later runs do not read it again."""
    key = order_done_key(amazon_order_id)
    claim = state.claim_posting(key, kind=ORDER_DONE_KIND, source=amazon_order_id, content_hash=why)
    if claim.won:
        state.mark_posted(key, why)


def nothing_to_confirm(state: StateStore, amazon_order_id: str, status: str, channel: str) -> bool:
    """Record an order fulfilled by Amazon, or one Amazon already shows Shipped or Canceled, as
    done, as ``ship_order`` would on reading it: order sync has just read it, so shipment sync
    spends no getOrder (0.5/s) on it. True when it was recorded."""
    if channel != "AFN" and status not in DONE_STATUSES:
        return False
    mark_order_done(state, amazon_order_id, status or channel)
    return True


def dead_letter(state: StateStore, order: OrderToShip, error: str) -> dict[str, Any]:
    payload = {"amazon_order_id": order.amazon_order_id, "orno": order.orno, "marketplace_id": order.marketplace_id}
    letter = state.add_dead_letter(FLOW_NAME, "order", order.amazon_order_id, payload, error)
    run_logger().warning("Shipments of order %s dead-lettered: %s", order.amazon_order_id, one_line(error))
    return {"order": order.amazon_order_id, "orno": order.orno, "error": one_line(error), "dead_letter": letter.id}


def _entry(order: OrderToShip, package: PlannedPackage) -> dict[str, Any]:
    return {
        "order": order.amazon_order_id,
        "orno": order.orno,
        "delivery": package.dlix,
        "package": package.package_reference_id,
        "carrier": package.carrier_code,
        "carrier_name": package.carrier_name,
        "tracking": package.tracking_number,
        "ship_date": package.ship_date.isoformat().replace("+00:00", "Z"),
        "items": [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in package.items],
    }


def _content_hash(package: PlannedPackage) -> str:
    text = json.dumps(
        [package.carrier_code, package.tracking_number, [[i.order_item_id, i.quantity] for i in package.items]]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def shipment_exit_code(document: Mapping[str, Any]) -> int:
    """4 out of reach, else 3 when an order was dead-lettered, else 0."""
    if document.get("unreachable"):
        return EXIT_UNREACHABLE
    return EXIT_HELD if document["dead_lettered"] else EXIT_OK


def shipment_message(document: Mapping[str, Any]) -> str:
    """The one-line reason a shipment run fails: out of reach, or the orders dead-lettered; "" when none."""
    if document.get("unreachable"):
        return f"shipment sync stopped: {document['unreachable']}"
    letters = document["dead_lettered"]
    if not letters:
        return ""
    names = ", ".join(entry["order"] for entry in letters[:3]) + (
        f" and {len(letters) - 3} more" if len(letters) > 3 else ""
    )
    return f"{len(letters)} order(s) dead-lettered: {names}"
