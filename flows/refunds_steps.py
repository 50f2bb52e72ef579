"""The steps of the refund credit flow, one job each. The story is in ``flows/refunds.py``.

A refund is credited in M3 at most once: before creating, the state store's id map (kind
"credit": credit key -> return order number) and M3 itself (the Amazon order's return orders,
CUOR = order id, YREF = the credit key's first 30 characters) are asked, so a rerun, or a crash
between M3's answer and our record of it, finds the return order instead of creating it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connectors.m3 import (
    CreditOrder,
    M3DataError,
    M3OrderIncomplete,
    M3TransactionError,
    OrderLineRequest,
    OrderRequest,
)
from flows.connections import Connections
from flows.orders_steps import ORDER_ID_KIND
from flows.settlement_steps import Sources
from sync.credits import (
    CREDIT_ID_KIND,
    AmazonRefund,
    CreditLine,
    CreditRefused,
    M3OrderLine,
    plan_credit,
    refunds_of,
    unique_refunds,
)
from sync.routing import RoutingSettings

FLOW = "refunds"  # the dead letters' flow
REFUNDS_WATERMARK = "refunds.settlement_reports.created_since"  # the settlement flow keeps its own

Outcome = Literal["credited", "already_in_m3", "duplicate", "not_synced", "dead_lettered"]
OUTCOMES: tuple[Outcome, ...] = ("credited", "already_in_m3", "duplicate", "not_synced", "dead_lettered")


@dataclass(frozen=True)
class RefundResult:
    refund: AmazonRefund
    outcome: Outcome
    reason: str = ""  # no buyer data: keys, SKUs, amounts, M3's answer
    orno: str | None = None  # the M3 return order (credited, already in M3)


def refunds_in(sources: Sources) -> list[AmazonRefund]:
    """Every settlement's refunds, each credit key once, oldest first (the same day: as posted)."""
    found = [r for s in sources.settlements for r in refunds_of(s.lines, s.currency, s.settlement_id)]
    return sorted(unique_refunds(found), key=lambda r: r.posted)  # stable: keeps each settlement's posting order


class ReturnOrderLookups:
    """What a run asks M3 once per customer and return order type: CUOR -> return order numbers
    (one LstHead each, kept current as the run creates return orders)."""

    def __init__(self, connections: Connections) -> None:
        self._m3 = connections.require_m3()
        self._listed: dict[tuple[str, str], dict[str, list[str]]] = {}

    def credits(self, cuno: str, order_type: str, cuor: str) -> list[CreditOrder]:
        """The return orders crediting Amazon order ``cuor``, with their YREF and lines."""
        if (cuno, order_type) not in self._listed:
            self._listed[cuno, order_type] = self._m3.return_orders_by_reference(cuno, order_type)
        return [self._m3.get_credit_order(orno) for orno in self._listed[cuno, order_type].get(cuor, [])]

    def add(self, cuno: str, order_type: str, cuor: str, orno: str) -> None:
        self._listed.setdefault((cuno, order_type), {}).setdefault(cuor, []).append(orno)


def credit_refund(
    connections: Connections,
    routing: RoutingSettings,
    refund: AmazonRefund,
    lookups: ReturnOrderLookups | None = None,
) -> RefundResult:
    """One refund into an M3 return order (or why not). M3 out of reach raises: the run stops and
    the refund is not done. ``lookups``: the run's (a replay asks M3 afresh)."""
    state = connections.state

    def result(outcome: Outcome, reason: str = "", orno: str | None = None) -> RefundResult:
        return RefundResult(refund, outcome, reason, orno)

    order_orno = state.m3_id_for(ORDER_ID_KIND, refund.order_id)
    if order_orno is None:  # not an order order sync created: the settlement reports it as before
        return result("not_synced", f"order {refund.order_id} is not in M3 through order sync")
    recorded = state.m3_id_for(CREDIT_ID_KIND, refund.key)
    if recorded is not None:
        return result("already_in_m3", "recorded", recorded)
    route = routing.route(refund.marketplace_id)
    if route is None:
        return dead_letter(
            connections, refund, f"refund {refund.key}: marketplace {refund.marketplace_name} not routed"
        )
    m3 = connections.require_m3()
    head = m3.get_order(order_orno)
    lookups = lookups or ReturnOrderLookups(connections)
    credits = lookups.credits(head.cuno, route.return_order_type, refund.order_id)
    found = next((c for c in credits if c.head.your_reference == refund.reference), None)
    if found is not None:
        letter = open_letter(connections, refund.key)
        if letter is not None:  # left incomplete in M3 by an earlier attempt: a person finishes it
            return dead_letter(connections, refund, letter)
        if not found.lines:  # an earlier attempt stopped after the head: crediting nothing is no credit
            return dead_letter(
                connections,
                refund,
                f"refund {refund.key}: return order {found.head.orno} in M3 has no lines (an earlier attempt "
                "stopped after its head): add them in M3, or delete it and replay",
            )
        state.map_id(CREDIT_ID_KIND, refund.key, found.head.orno, route.marketplace.code)
        return result("already_in_m3", "found in M3", found.head.orno)
    lines = [
        M3OrderLine(line.itno, line.quantity, line.unit_price, line.net_amount)
        for line in m3.list_order_lines(order_orno)
    ]
    plan = plan_credit(refund, lines, [credit_lines(c) for c in credits], routing)
    if isinstance(plan, CreditRefused):
        if plan.duplicate:
            return result("duplicate", plan.reason)
        return dead_letter(connections, refund, plan.reason)
    request = OrderRequest(
        cuno=head.cuno,
        customer_order_ref=refund.order_id,
        order_type=route.return_order_type,
        lines=tuple(
            OrderLineRequest(
                itno=line.itno,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount=line.discount,
                returned=True,
            )
            for line in plan.lines
        ),
        order_date=refund.posted,
        facility=head.facility or None,
        currency=head.currency or None,
        your_reference=plan.reference,
    )
    try:
        created = m3.create_credit_order(request)
    except (M3TransactionError, M3OrderIncomplete, M3DataError) as exc:  # M3 refused it: this refund only
        return dead_letter(connections, refund, f"refund {refund.key}: M3 refused the return order: {exc}")
    lookups.add(head.cuno, route.return_order_type, refund.order_id, created.orno)
    state.map_id(CREDIT_ID_KIND, refund.key, created.orno, route.marketplace.code)
    return result("credited", f"{plan.total} {refund.currency} credited", created.orno)


def credit_lines(credit: CreditOrder) -> tuple[CreditLine, ...]:
    """A return order's lines as the planning compares them."""
    return tuple(CreditLine(line.itno, line.quantity, line.unit_price, line.discount or None) for line in credit.lines)


def open_letter(connections: Connections, key: str) -> str | None:
    """The error of the open dead letter of credit ``key``, if any."""
    for letter in connections.state.list_dead_letters(FLOW):
        if letter.entity_key == key:
            return letter.error
    return None


def dead_letter(connections: Connections, refund: AmazonRefund, reason: str) -> RefundResult:
    """Keep the refund for a person (``m3sync deadletters``): the payload is the refund itself
    (ids, SKUs, amounts: no buyer data), what the replay credits."""
    connections.state.add_dead_letter(FLOW, CREDIT_ID_KIND, refund.key, refund.to_json(), reason)
    return RefundResult(refund, "dead_lettered", reason)


def refunds_document(results: Sequence[RefundResult], sources: Sources) -> dict[str, Any]:
    """The JSON document ``m3sync refunds --json`` prints (docs/cli-contract.md)."""
    document: dict[str, Any] = {}
    for outcome in OUTCOMES:
        document[outcome] = [
            {
                "amazon_order_id": r.refund.order_id,
                "credit_key": r.refund.key,
                **({"m3_order": r.orno} if r.orno else {}),
                "amount": str(r.refund.total),
                "currency": r.refund.currency,
                "reason": r.reason,
            }
            for r in results
            if r.outcome == outcome
        ]
    document["unreadable"] = [{"source": e.source, "error": str(e)} for e in sources.errors] + [
        {"source": f.source, "error": f.error.reason()} for f in sources.failures
    ]
    document["counts"] = {outcome: len(document[outcome]) for outcome in (*OUTCOMES, "unreadable")}
    return document


def refunds_message(document: dict[str, Any]) -> str | None:
    """The one-line reason a run fails, or None."""
    unreadable, letters = document["unreadable"], document["dead_lettered"]
    if unreadable:
        first = unreadable[0]
        more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
        return f"{len(unreadable)} settlement file(s) unreadable: {first['error']}{more}"
    if not letters:
        return None
    total = sum(document["counts"][o] for o in OUTCOMES)
    first = letters[0]
    reason = first["reason"].removeprefix(f"refund {first['credit_key']}: ")
    more = f" and {len(letters) - 1} more" if len(letters) > 1 else ""
    return f"{len(letters)} of {total} refunds dead-lettered: {first['amazon_order_id']} ({reason}){more}"
