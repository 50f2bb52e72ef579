"""``m3sync demo``: the whole story against the embedded sandbox, with no configuration.

1. start both emulators under HOME/sandbox with one seeded world;
2. put the world's shipped Amazon orders into M3 and let sandbox M3 ship and invoice them,
   and credit its refunds (the generator's orders and returns, until order sync lands;
   recorded in the state store's id map);
3. run the settlement flow on every settlement report Amazon lists;
4. print what happened and where the workbook is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from connectors.m3 import M3Operations, OrderLineRequest, OrderRequest
from connectors.state import StateStore
from flows.connections import Connections, open_connections
from flows.contract import exit_code, run_document
from flows.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE
from sandbox.m3.seed import FREIGHT_ITEM  # the sandbox M3's non-stock item for shipping charged to buyers

NEXT_STEP = "next: m3sync sandbox --advance 14d, then run the deployment"


def order_requests(world: Any) -> list[tuple[OrderRequest, Any]]:
    """One M3 order per shipped Amazon order: items, freight (less the shipping promotion)."""
    by_order: dict[str, list[Any]] = defaultdict(list)
    for line in world.m3_order_lines():
        by_order[line.amazon_order_id].append(line)
    shipped = {o.order_id: o for o in world.orders}
    requests = []
    for order_id, lines in by_order.items():
        order = shipped[order_id]
        market = order.market
        request_lines = [
            OrderLineRequest(
                itno=l.itno, quantity=l.quantity, unit_price=l.unit_price, discount=l.item_promotion or None
            )
            for l in lines
        ]
        shipping = sum((l.shipping for l in lines), Decimal(0))
        shipping_promotion = sum((l.shipping_promotion for l in lines), Decimal(0))
        if shipping > 0:
            request_lines.append(
                OrderLineRequest(
                    itno=FREIGHT_ITEM, quantity=1, unit_price=shipping, discount=shipping_promotion or None
                )
            )
        requests.append(
            (
                OrderRequest(
                    cuno=f"AMZ{market}",
                    customer_order_ref=order_id,
                    order_type="AFN" if order.channel == "AFN" else "AMZ",
                    lines=tuple(request_lines),
                    order_date=order.purchased.date(),
                    currency=lines[0].currency,
                ),
                order,
            )
        )
    return requests


def put_orders_in_m3(
    m3: M3Operations, state: StateStore, world: Any, invoice: Callable[[str, Any], str], workers: int = 4
) -> dict[str, int]:
    """Create and invoice the world's shipped orders in M3 once (id map + CUOR make it idempotent)."""
    counts = {"created": 0, "already_in_m3": 0}
    requests = order_requests(world)
    in_m3: dict[str, str] = {}
    for cuno in sorted({request.cuno for request, _ in requests}):
        in_m3.update(m3.orders_by_reference(cuno))  # M3 itself, not only our id map, decides

    def one(item: tuple[OrderRequest, Any]) -> str:
        request, order = item
        if state.m3_id_for("order", request.customer_order_ref):
            return "already_in_m3"
        orno = in_m3.get(request.customer_order_ref)
        outcome = "already_in_m3"
        if orno is None:
            orno = m3.create_order(request).orno
            outcome = "created"
        invoice(orno, order.shipped.date())
        state.map_id("order", request.customer_order_ref, orno, marketplace=order.market)
        return outcome

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(one, requests):
            counts[outcome] += 1
    return counts


def credit_refunds_in_m3(state: StateStore, world: Any, credit: Callable[[str, Any], str]) -> int:
    """The credit notes of the world's refunds, as M3 makes them when order sync books a return
    (until order sync does), so that the demo's refunds are credited in M3 and its settlements
    post; each once (Amazon's refund id is the credit note's reference). Returns how many."""
    count = 0
    for note in world.m3_credit_notes():
        orno = state.m3_id_for("order", note.amazon_order_id)
        if orno:  # an order M3 never had has nothing to credit: its settlement holds it
            credit(orno, note)
            count += 1
    return count


def enter_world_in_m3(connections: Connections, world: Any) -> tuple[dict[str, int], int]:
    """The world's shipped orders entered and invoiced in the sandbox M3, its refunds credited
    (each once): what order sync will do. Returns the order counts and the refunds credited."""
    env = connections.sandbox_env
    counts = put_orders_in_m3(
        connections.require_m3(),
        connections.state,
        world,
        lambda orno, day: env.advance_m3_order(orno, "invoice", day),
    )
    credited = credit_refunds_in_m3(
        connections.state,
        world,
        lambda orno, note: env.credit_m3_order(
            orno, note.net, note.tax, note.refunded.date(), reference=note.adjustment_id
        ),
    )
    return counts, credited


def run_demo(home: str | None, seed: int, echo: Callable[[str], None] = print, *, orders: int = 400) -> int:
    from flows.settlement import settlement_reconciliation

    with open_connections(home, sandbox=True, seed=seed, orders=orders) as connections:
        env = connections.sandbox_env
        hosts = ", ".join(f"{region.upper()} {server.base_url}" for region, server in env.spapi.items())
        echo(f"Sandbox up: M3 {env.m3.base_url}, SP-API {hosts} (world seed {env.seed}, home {connections.home})")
        counts, credited = enter_world_in_m3(connections, env.world())
        echo(
            f"M3 orders: {counts['created']} created and invoiced, {counts['already_in_m3']} already there; "
            f"{credited} refunds credited"
        )
        home_path = connections.home
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
    """``m3sync sandbox --advance``: the sandbox world ``days`` on. M3 gets the orders (entered
    and invoiced) and credit notes first, then Amazon's SP-API sandbox the new orders and the
    settlement reports its marketplaces' 14-day cycles create in those days, so that a
    settlement run finds every settled order's invoice. One line per marketplace; servers stop."""
    from sandbox.runtime import marketplace_lines

    with open_connections(home, sandbox=True) as connections:
        env = connections.sandbox_env
        before = env.world()
        after = env.advanced_world(days)
        # The whole world, not only what is new: M3 skips what it has, and a home the demo never
        # filled gets every invoice its settlements need.
        counts, credited = enter_world_in_m3(connections, after)
        env.publish(after, days)
    for line in marketplace_lines(before, after):
        echo(line)
    echo(
        f"World clock {before.clock} -> {after.clock}; M3: {counts['created']} orders entered and invoiced "
        f"({counts['already_in_m3']} already there), credit notes for {credited} refunds"
    )
    return 0
