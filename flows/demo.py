"""``m3sync demo``: the whole story against the embedded sandbox, with no configuration.

1. start both emulators under HOME/sandbox with one seeded world;
2. ORDER SYNC (``flows/orders.py``) creates the world's Amazon orders in M3, reading from the
   world's first purchase (it lies weeks back, beyond a first run's look-back);
3. the sandbox plays M3's warehouse: it delivers each order order sync created (DLIX and a
   tracking number) on Amazon's ship date, a merchant-fulfilled order Amazon has not shipped yet
   on the world's last day;
4. SHIPMENT SYNC (``flows/shipments.py``) confirms those merchant-fulfilled shipments to Amazon;
5. the sandbox invoices the delivered orders on their delivery days;
6. REFUND CREDIT (``flows/refunds.py``) makes an M3 return order of each refund in Amazon's
   settlement reports of an order order sync created, then the sandbox delivers and invoices every
   M3 order not invoiced yet but the orders Amazon has not shipped (the return orders: their
   invoices are the credit notes the settlement reconciliation looks for);
7. INVENTORY SYNC (``flows/inventory.py``) publishes M3's available-to-sell to Amazon's listings
   once the orders have moved M3's stock (allocated, delivered, returned); the demo then reads
   back every merchant-fulfilled listing Amazon holds and checks its quantity against M3's
   allocatable stock over the marketplace's warehouses minus the buffer of inventory.yaml,
   worked out here on its own (not by the sync's rules), and names every listing that differs;
8. the settlement flow runs on every settlement report Amazon lists;
9. each step's counts, what was dead-lettered, and where the workbook is.

``m3sync sandbox --advance`` moves the world on and runs steps 2 to 6 on it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from flows.connections import Connections, open_connections
from flows.contract import exit_code, run_document
from flows.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE

MERCHANT_CHANNEL = "DEFAULT"  # fulfillment_channel_code of a listing the seller fulfils (MFN)
NEXT_STEP = "next: m3sync sandbox --advance 14d, then run the deployment"
# Order sync reads from the world's first purchase less this: every order of the world is read.
BEFORE_FIRST_PURCHASE = timedelta(minutes=1)


@dataclass(frozen=True)
class WorldInM3:
    """What the product's flows and the sandbox's warehouse did with one world."""

    orders: dict[str, Any]  # order sync's document (docs/cli-contract.md, "m3sync orders")
    delivered: int  # orders the sandbox's warehouse delivered
    shipments: dict[str, Any]  # shipment sync's document
    invoiced: int  # orders the sandbox invoiced (return orders included)
    refunds: dict[str, Any]  # refund credit's document (docs/cli-contract.md, "m3sync refunds")


def order_sync_since(world: Any) -> str:
    """Order sync's ``since`` for ``world``: its first purchase less a minute (ISO 8601, UTC)."""
    first = min(order.purchased for order in world.orders)
    return (first - BEFORE_FIRST_PURCHASE).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def delivery_days(world: Any, ornos: Mapping[str, str]) -> dict[date, list[str]]:
    """The day M3's warehouse delivers each order in M3 (``ornos``: Amazon id -> ORNO): the day
    Amazon shipped it; a merchant-fulfilled order Amazon has not shipped yet ships on the world's
    last day (shipment sync tells Amazon); an order Amazon fulfils and has not shipped waits."""
    days: dict[date, list[str]] = defaultdict(list)
    for order in world.orders:
        orno = ornos.get(order.order_id)
        if orno is None:  # order sync did not create it: Pending, Canceled, skipped or dead-lettered
            continue
        if order.shipped is not None:
            days[order.shipped.date()].append(orno)
        elif order.channel == "MFN" and order.status in ("Unshipped", "PartiallyShipped"):
            days[world.clock - timedelta(days=1)].append(orno)
    return dict(days)


def world_through_the_flows(home: Path, world: Any) -> WorldInM3:
    """Steps 2 to 6 of the module docstring on ``world`` (its orders already at Amazon's). Each
    step is idempotent: a second run finds everything done."""
    from flows.orders import order_sync
    from flows.refunds import refund_credit
    from flows.shipments import shipment_sync

    orders = run_document(order_sync(since=order_sync_since(world), sandbox=True, home=str(home), return_state=True))
    with open_connections(home, sandbox=True) as connections:
        ornos = connections.state.all_ids("order")
        days = delivery_days(world, ornos)
        env = connections.sandbox_env
        delivered = sum(len(env.advance_m3_orders("deliver", day, sorted(batch))) for day, batch in days.items())
    shipments = run_document(shipment_sync(sandbox=True, home=str(home), return_state=True))
    with open_connections(home, sandbox=True) as connections:
        env = connections.sandbox_env
        invoiced = sum(len(env.advance_m3_orders("invoice", day, sorted(batch))) for day, batch in days.items())
    refunds = run_document(refund_credit(from_amazon=True, sandbox=True, home=str(home), return_state=True))
    not_shipped = set(ornos.values()) - {orno for batch in days.values() for orno in batch}
    invoiced += deliver_and_invoice_the_rest(home, world.clock - timedelta(days=1), leave=not_shipped)
    return WorldInM3(orders, delivered, shipments, invoiced, refunds)


def deliver_and_invoice_the_rest(home: Path, day: date, *, leave: set[str]) -> int:
    """Every M3 order not invoiced yet but those in ``leave`` (orders Amazon has not shipped),
    delivered and invoiced on ``day``: the return orders a refund credit creates. Returns how many."""
    with open_connections(home, sandbox=True) as connections:
        return len(connections.sandbox_env.advance_m3_orders("invoice", day, leave=leave))


@dataclass(frozen=True)
class ListingCheck:
    """Amazon's merchant-fulfilled listings read back against M3's available-to-sell."""

    checked: int  # merchant-fulfilled listings of the synced marketplaces Amazon holds
    amazon_fulfilled: int  # listings Amazon fulfils (its stock, not M3's): not checked
    differences: tuple[str, ...]  # one line per listing whose quantity is not M3's


def inventory_through_the_flow(home: Path) -> tuple[dict[str, Any], ListingCheck]:
    """Step 7: inventory sync on the demo's M3 and Amazon, then Amazon's listings checked."""
    from flows.inventory import inventory_sync

    document = run_document(inventory_sync(sandbox=True, home=str(home), return_state=True))
    with open_connections(home, sandbox=True) as connections:
        return document, check_amazon_quantities(connections)


def check_amazon_quantities(connections: Connections) -> ListingCheck:
    """Every merchant-fulfilled listing Amazon's sandbox stores in a marketplace inventory.yaml
    configures, its quantity against M3's allocatable stock (MMS080MI/LstItemBal or MMS060MI)
    over the marketplace's warehouses less the buffer (the SKU's rule, else its item group's,
    else the default: fixed units or the percentage of the allocatable rounded up, whichever is
    larger), floored at zero; an item M3 does not know or has not released (status 20) shows 0.
    Worked out here from the settings' numbers, independently of sync/inventory.py's rules."""
    from flows.inventory import check_settings

    settings, routing = check_settings(connections.home, sandbox=True)
    m3 = connections.require_m3()
    allocatable: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # (item, warehouse)
    for whlo in settings.warehouses:
        for balance in m3.read_balances(whlo):
            allocatable[(balance.itno, whlo)] += balance.allocatable
    listings = [
        listing
        for listing in connections.sandbox_env.amazon_listings()
        if listing["marketplaceId"] in settings.marketplaces and (not settings.skus or listing["sku"] in settings.skus)
    ]
    merchant = [listing for listing in listings if set(listing["fulfillmentChannels"]) <= {MERCHANT_CHANNEL}]
    items = m3.get_items(sorted({routing.item_number(listing["sku"]) for listing in merchant}))
    differences = []
    for listing in merchant:
        sku, marketplace = listing["sku"], settings.marketplaces[listing["marketplaceId"]]
        itno = routing.item_number(sku)
        item = items.get(itno)
        total = sum((allocatable.get((itno, w), Decimal(0)) for w in marketplace.warehouses), Decimal(0))
        whole = int(total.to_integral_value(ROUND_FLOOR))
        group_rule = settings.group_buffers.get(item.item_group) if item is not None else None
        rule = settings.sku_buffers.get(sku) or group_rule or settings.default_buffer
        buffer = max(rule.units, math.ceil(Decimal(max(whole, 0)) * rule.percent / 100))
        sellable = item is not None and item.status == "20"
        expected = max(whole - buffer, 0) if sellable else 0
        if listing["quantity"] != expected:
            why = f"{whole} allocatable minus buffer {buffer}" if sellable else "item not released in M3"
            differences.append(
                f"  DIFFERS: {sku} in {marketplace.marketplace.code}: Amazon shows {listing['quantity']}, "
                f"M3 can promise {expected} ({why})"
            )
    return ListingCheck(len(merchant), len(listings) - len(merchant), tuple(differences))


def inventory_lines(document: dict[str, Any], check: ListingCheck) -> list[str]:
    """The sync's counts, what it held, Amazon rejected or noted, and the check of Amazon's quantities."""
    from flows.inventory_steps import inventory_summary

    body = document["inventory"]
    shown = "all" if not check.differences else f"{check.checked - len(check.differences)} of"
    return [
        inventory_summary(document),
        *(
            f"  {entry['outcome']}: {entry['sku']} in {entry['marketplace']}: {entry['reason']}"
            for entry in body["items"]
            if entry["outcome"] in ("held", "rejected")
        ),
        *(f"  exception: {e['sku']} in {e['marketplace']}: {e['reason']}" for e in body["exceptions"]),
        f"Amazon listings: {shown} {check.checked} merchant-fulfilled listings show M3's available-to-sell "
        f"(allocatable minus buffer)"
        + (f"; {check.amazon_fulfilled} fulfilled by Amazon left alone" if check.amazon_fulfilled else ""),
        *check.differences,
    ]


def story_lines(done: WorldInM3) -> list[str]:
    """One line per step, and every dead letter: an order the product refused is shown, not hidden."""
    from flows.shipments import shipment_summary

    counts = done.orders["counts"]
    shipments = done.shipments
    lines = [
        "Order sync: " + ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in counts.items()),
        *(
            f"  dead-lettered: {letter['amazon_order_id']}: "
            + letter["reason"].removeprefix(f"order {letter['amazon_order_id']}: ")
            for letter in done.orders["dead_lettered"]
        ),
        f"M3 warehouse: {done.delivered} orders delivered",
        shipment_summary(shipments),
        *(f"  dead-lettered: {letter['order']}: {letter['error']}" for letter in shipments["dead_lettered"]),
        f"M3 invoices: {done.invoiced} orders invoiced",
        "Refunds (settlement reports): "
        + ", ".join(
            f"{n} {outcome.replace('_', ' ')}"
            for outcome, n in done.refunds["counts"].items()
            if n or outcome != "unreadable"
        ),
        *(
            f"  dead-lettered: {letter['amazon_order_id']}: {letter['reason']}"
            for letter in done.refunds["dead_lettered"]
        ),
    ]
    return lines


def run_demo(home: str | None, seed: int, echo: Callable[[str], None] = print, *, orders: int = 400) -> int:
    from flows.settlement import settlement_reconciliation

    with open_connections(home, sandbox=True, seed=seed, orders=orders) as connections:
        env = connections.sandbox_env
        hosts = ", ".join(f"{region.upper()} {server.base_url}" for region, server in env.spapi.items())
        echo(f"Sandbox up: M3 {env.m3.base_url}, SP-API {hosts} (world seed {env.seed}, home {connections.home})")
        world = env.world()
        home_path = connections.home
    for line in story_lines(world_through_the_flows(home_path, world)):
        echo(line)
    for line in inventory_lines(*inventory_through_the_flow(home_path)):
        echo(line)
    # The demo's M3 has every settled order's invoice and every refund's credit note, so it keeps
    # the accountant's default: a refund or order without its M3 document would be held.
    document = run_document(
        settlement_reconciliation(
            from_amazon=True,
            sandbox=True,
            home=str(home_path),
            refunds_without_credit="hold",
            missing_invoices="hold",
            return_state=True,
        )
    )
    for line in summary_lines(document):
        echo(line)
    echo(NEXT_STEP)
    # A held settlement is a result worth showing; unreadable reports, an unreachable sandbox
    # or an unexpected error are failures of the demo itself.
    code = exit_code(document)
    return code if code in (EXIT_INVALID, EXIT_UNREACHABLE, EXIT_FAILED) else 0


def summary_lines(document: dict[str, Any]) -> list[str]:
    entries = document["settlements"]
    by_status: dict[str, int] = defaultdict(int)
    for entry in entries:
        by_status[entry["status"]] += 1
    lines = [
        f"Settlements: {len(entries)} processed"
        + (
            ": " + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
            if entries
            else " (no settlement report new since the last run)"
        )
    ]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    rec: dict[str, int] = defaultdict(int)
    anomalies: list[tuple[float, str, str]] = []
    for e in entries:
        if e["settlement_id"] is None:  # a file that could not be read
            lines.append(f"  {e['source']}: {e['status']}: {'; '.join(e['reasons'])}")
            continue
        totals[e["currency"]] += Decimal(e["total_amount"])
        refs = ", ".join(v["m3_ref"] or v["key"] for v in e["journal"]["vouchers"]) or "-"
        lines.append(
            f"  {e['settlement_id']} {e['marketplace']:<13} {e['total_amount']:>10} {e['currency']} "
            f"{e['status']:<9} {refs}"
        )
        for reason in e["reasons"] if e["status"] in ("held", "failed") else []:
            lines.append(f"      {e['status']}: {reason}")
        for key in ("matched", "amount_mismatch", "missing_in_m3", "not_settled", "refund_without_credit"):
            rec[key] += int(e["reconciliation"].get(key, 0))
        anomalies += [
            (a["score"], e["settlement_id"], f"{a['order_id'] or '-'} {a['sku'] or ''}: {'; '.join(a['reasons'])}")
            for a in e["anomalies"]
        ]
    lines.append("Deposits: " + ", ".join(f"{amount} {currency}" for currency, amount in sorted(totals.items())))
    lines.append(
        "Reconciliation against M3 invoices: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in rec.items())
    )
    lines.append(f"Anomalies flagged: {len(anomalies)}")
    for score, settlement_id, text in sorted(anomalies, reverse=True)[:5]:
        lines.append(f"  {score:.2f} settlement {settlement_id} {text}")
    if document.get("report"):
        lines.append(f"Workbook: {document['report']}")
    if document.get("report_error"):
        lines.append(f"Workbook: {document['report_error']}")
    if document.get("lines_file"):
        lines.append(f"Every line: {document['lines_file']}")
    return lines


def run_advance(home: str | None, days: int, echo: Callable[[str], None] = print) -> int:
    """``m3sync sandbox --advance``: the sandbox world ``days`` on. Amazon's SP-API sandbox gets
    the new orders and the settlement reports its marketplaces' 14-day cycles create in those
    days; then the product's flows and the sandbox's warehouse bring the whole world into M3 as
    the demo does (what M3 has is found, not made again), so that a settlement run finds every
    settled order's invoice. One line per marketplace, then each step's counts; servers stop."""
    from sandbox.runtime import marketplace_lines

    with open_connections(home, sandbox=True) as connections:
        env = connections.sandbox_env
        before = env.world()
        after = env.advanced_world(days)
        env.publish(after, days)
        home_path = connections.home
    done = world_through_the_flows(home_path, after)
    for line in marketplace_lines(before, after):
        echo(line)
    for line in story_lines(done):
        echo(line)
    echo(f"World clock {before.clock} -> {after.clock}")
    return 0
