"""Amazon refunds -> M3 credit (return) orders, as pure functions (issue #14, credit notes).

Input: a settlement's ``Refund`` rows (``reconciliation.model.LINE_COLUMNS``), as the settlement
flow reads them, and the synced M3 order's lines. Output: a :class:`PlannedCredit` (the return
order the flow creates: ``connectors.m3.OrderRequest`` field for field, mirrored here because the
domain may not import the connectors) or a :class:`CreditRefused` naming why. Bad refunds are
data, never exceptions.

Rules:
- One refund is the rows of one Amazon adjustment id (else: order id + posted date + SKU); that
  key is the credit's, and the return order's YREF is its first 30 characters. The same row twice
  under one key (a report or file repeating it) counts once.
- Per refunded SKU, refunded item = Principal less the item Promotion taken back. When the
  refunded principal is a whole number of the original line's units (SAPR is rounded up to the
  minor unit, so ``n`` units are ``n × SAPR`` less under ``n`` minor units) and not more than were
  ordered, the credit line returns those units at the original SAPR, and its discount (DIA1) is
  what makes the line equal the refund: the original discount in proportion. Otherwise (a partial
  refund) it is one line of quantity -1 at the refunded amount.
- A restocking fee the seller keeps makes the returned units' credit smaller (on the discount,
  as a promotion taken back); goodwill paid on top is one more line of quantity -1 at its amount.
- Refunded shipping (less the shipping promotion taken back) is one line of quantity -1 of the
  routing's shipping item.
- A SKU the M3 order does not have, or more refunded than M3 invoiced less what was credited
  before, refuses the credit; a refund repeating one credited before (same lines, another
  adjustment id: Amazon refunded twice) is a duplicate and is credited once, as the sandbox's
  generator models it. M3 computes the credit note's VAT itself, as for the invoice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from reconciliation.marketplaces import find_marketplace
from reconciliation.model import currency_decimals, minor_to_decimal
from sync.routing import RoutingSettings

REFUND = "Refund"  # settlement transaction type
ITEM_PRICE, PROMOTION = "ItemPrice", "Promotion"  # amount types of a refund's money
PRINCIPAL, SHIPPING = "Principal", "Shipping"  # amount descriptions
RESTOCKING_FEE, GOODWILL = "RestockingFee", "Goodwill"  # ItemPrice of a refund: kept by the seller, paid extra
YREF_LENGTH = 30  # OIS100MI YREF: A30
CREDIT_ID_KIND = "credit"  # the id map's kind: credit key -> M3 return order number

# Problem kinds a CreditRefused names.
UNKNOWN_SKU = "SKU not on the M3 order"
OVER_REFUNDED = "more refunded than invoiced"
NOTHING_TO_CREDIT = "nothing to credit"
DUPLICATE = "duplicate refund"


@dataclass(frozen=True)
class RefundedItem:
    """What one refund gives back for one SKU, positive amounts in the settlement's currency."""

    sku: str
    principal: Decimal = Decimal(0)  # ItemPrice/Principal refunded
    promotion: Decimal = Decimal(0)  # Promotion/Principal taken back (makes the refund smaller)
    shipping: Decimal = Decimal(0)  # ItemPrice/Shipping refunded
    shipping_promotion: Decimal = Decimal(0)  # Promotion/Shipping taken back
    restocking_fee: Decimal = Decimal(0)  # ItemPrice/RestockingFee the seller keeps (makes the refund smaller)
    goodwill: Decimal = Decimal(0)  # ItemPrice/Goodwill paid to the buyer on top (no goods come back)

    @property
    def item_net(self) -> Decimal:
        return self.principal - self.promotion - self.restocking_fee + self.goodwill

    @property
    def shipping_net(self) -> Decimal:
        return self.shipping - self.shipping_promotion


@dataclass(frozen=True)
class AmazonRefund:
    """One refund of one Amazon order (no buyer data: ids, SKUs, amounts)."""

    order_id: str
    key: str  # the credit key: Amazon's adjustment id, else order id + posted date + SKU
    posted: date
    marketplace_name: str
    currency: str
    items: tuple[RefundedItem, ...]
    adjustment_id: str = ""
    settlement_id: str = ""

    @property
    def reference(self) -> str:
        """The return order's YREF: the credit key's first 30 characters."""
        return credit_reference(self.key)

    @property
    def marketplace_id(self) -> str:
        marketplace = find_marketplace(self.marketplace_name)
        return marketplace.marketplace_id if marketplace is not None else ""

    @property
    def total(self) -> Decimal:
        """What Amazon refunded net of promotions (tax aside): what the credit order comes to."""
        return sum((item.item_net + item.shipping_net for item in self.items), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        """The refund as a dead letter's payload: what replays it (amounts as text, exact)."""
        return {
            "amazon_order_id": self.order_id,
            "credit_key": self.key,
            "posted": self.posted.isoformat(),
            "marketplace_name": self.marketplace_name,
            "currency": self.currency,
            "adjustment_id": self.adjustment_id,
            "settlement_id": self.settlement_id,
            "items": [
                {
                    "sku": i.sku,
                    "principal": str(i.principal),
                    "promotion": str(i.promotion),
                    "shipping": str(i.shipping),
                    "shipping_promotion": str(i.shipping_promotion),
                    "restocking_fee": str(i.restocking_fee),
                    "goodwill": str(i.goodwill),
                }
                for i in self.items
            ],
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> AmazonRefund:
        return cls(
            order_id=str(payload["amazon_order_id"]),
            key=str(payload["credit_key"]),
            posted=date.fromisoformat(str(payload["posted"])),
            marketplace_name=str(payload["marketplace_name"]),
            currency=str(payload["currency"]),
            adjustment_id=str(payload.get("adjustment_id") or ""),
            settlement_id=str(payload.get("settlement_id") or ""),
            items=tuple(
                RefundedItem(
                    sku=str(i["sku"]),
                    principal=Decimal(str(i["principal"])),
                    promotion=Decimal(str(i["promotion"])),
                    shipping=Decimal(str(i["shipping"])),
                    shipping_promotion=Decimal(str(i["shipping_promotion"])),
                    restocking_fee=Decimal(str(i.get("restocking_fee", "0"))),
                    goodwill=Decimal(str(i.get("goodwill", "0"))),
                )
                for i in payload["items"]
            ),
        )


@dataclass(frozen=True)
class M3OrderLine:
    """A line of the synced M3 order (``connectors.m3.OrderLine``'s fields used here)."""

    itno: str
    quantity: Decimal  # ORQT
    unit_price: Decimal  # SAPR
    net_amount: Decimal  # NLAM


@dataclass(frozen=True)
class CreditLine:
    """A return order's line (``connectors.m3.OrderLineRequest`` with ``returned``): ORQT < 0."""

    itno: str
    quantity: Decimal  # negative
    unit_price: Decimal  # SAPR
    discount: Decimal | None = None  # DIA1, positive: makes the credit smaller

    @property
    def amount(self) -> Decimal:
        """The line's amount in M3 (NLAM, negative): ORQT × SAPR + DIA1."""
        return self.quantity * self.unit_price + (self.discount or Decimal(0))


@dataclass(frozen=True)
class PlannedCredit:
    order_id: str
    key: str
    reference: str  # YREF
    lines: tuple[CreditLine, ...]

    @property
    def total(self) -> Decimal:
        """The credit order's net amount, positive."""
        return -sum((line.amount for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class CreditRefused:
    order_id: str
    key: str
    reason: str  # names SKUs and amounts, never buyer data
    duplicate: bool = False  # the refund repeats one credited before: nothing to do, not an error


# ---- reading refunds -----------------------------------------------------------------------------


def refunds_of(lines: pd.DataFrame, currency: str, settlement_id: str = "") -> tuple[AmazonRefund, ...]:
    """The refunds in a settlement's ``lines`` (``LINE_COLUMNS``), one per credit key, in posting order."""
    # In posting order: of a refund Amazon repeated, the first is credited and the later is the duplicate.
    rows = lines.sort_values("posted_date", kind="stable")
    rows = rows[
        (rows["transaction_type"] == REFUND)
        & (rows["order_id"] != "")
        & pd.Series(
            [key in _AMOUNT_FIELDS for key in zip(rows["amount_type"], rows["amount_description"], strict=True)],
            index=rows.index,
            dtype=bool,
        )
    ]
    decimals = currency_decimals(currency)
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows.itertuples(index=False):
        posted = pd.Timestamp(row.posted_date).date()
        key = credit_key(str(row.order_id), str(row.adjustment_id), posted, str(row.sku))
        refund = grouped.setdefault(
            key,
            {"row": row, "posted": posted, "seen": set(), "amounts": {}},
        )
        identity = (row.sku, row.order_item_code, row.amount_type, row.amount_description, int(row.amount_minor))
        if identity in refund["seen"]:
            continue  # the same row again: a report or file repeating it
        refund["seen"].add(identity)
        field = _AMOUNT_FIELDS[(str(row.amount_type), str(row.amount_description))]
        per_sku = refund["amounts"].setdefault(str(row.sku), {})
        # Refunded money is negative on the settlement, what is taken back or kept positive: all as positive amounts.
        sign = -1 if field in _PAID else 1
        per_sku[field] = per_sku.get(field, 0) + sign * int(row.amount_minor)
    refunds = [
        AmazonRefund(
            order_id=str(group["row"].order_id),
            key=key,
            posted=group["posted"],
            marketplace_name=str(group["row"].marketplace_name),
            currency=currency,
            adjustment_id=str(group["row"].adjustment_id),
            settlement_id=settlement_id,
            items=tuple(
                RefundedItem(sku, **{f: minor_to_decimal(v, decimals) for f, v in amounts.items()})
                for sku, amounts in sorted(group["amounts"].items())
            ),
        )
        for key, group in grouped.items()
    ]
    return tuple(refunds)  # dicts keep insertion order: the order of each refund's first row


_PAID = frozenset({"principal", "shipping", "goodwill"})
_AMOUNT_FIELDS = {
    (ITEM_PRICE, RESTOCKING_FEE): "restocking_fee",
    (ITEM_PRICE, GOODWILL): "goodwill",
    (ITEM_PRICE, PRINCIPAL): "principal",
    (PROMOTION, PRINCIPAL): "promotion",
    (ITEM_PRICE, SHIPPING): "shipping",
    (PROMOTION, SHIPPING): "shipping_promotion",
}


def unique_refunds(refunds: Iterable[AmazonRefund]) -> list[AmazonRefund]:
    """Each credit key once (a refund in two settlements, or two copies of one file): the first wins."""
    seen: dict[str, AmazonRefund] = {}
    for refund in refunds:
        seen.setdefault(refund.key, refund)
    return list(seen.values())


def credit_key(order_id: str, adjustment_id: str, posted: date, sku: str) -> str:
    """Amazon's adjustment id, else order id + posted date + SKU."""
    return adjustment_id.strip() or f"{order_id}-{posted:%Y%m%d}-{sku}"


def credit_reference(key: str) -> str:
    return key[:YREF_LENGTH]


# ---- planning ------------------------------------------------------------------------------------


def plan_credit(
    refund: AmazonRefund,
    order_lines: Sequence[M3OrderLine],
    earlier_credits: Sequence[Sequence[CreditLine]],
    routing: RoutingSettings,
) -> PlannedCredit | CreditRefused:
    """The return order crediting ``refund`` on the M3 order of ``order_lines``, given the lines
    of the return orders crediting it before (``earlier_credits``), or why not."""
    minor = Decimal(1).scaleb(-currency_decimals(refund.currency))
    invoiced: dict[str, Decimal] = {}
    for line in order_lines:
        invoiced[line.itno] = invoiced.get(line.itno, Decimal(0)) + line.net_amount
    credited: dict[str, Decimal] = {}
    for credit in earlier_credits:
        for credit_line in credit:
            credited[credit_line.itno] = credited.get(credit_line.itno, Decimal(0)) - credit_line.amount
    lines: list[CreditLine] = []
    problems: list[str] = []
    over: list[str] = []

    def check_left(itno: str, what: str, amount: Decimal) -> None:
        left = invoiced.get(itno, Decimal(0)) - credited.get(itno, Decimal(0))
        if amount > left:
            over.append(
                f"{what}: refunds {amount}, M3 invoiced {invoiced.get(itno, Decimal(0))} and credited "
                f"{credited.get(itno, Decimal(0))} before"
            )
        credited[itno] = credited.get(itno, Decimal(0)) + amount

    shipping = shipping_promotion = Decimal(0)
    for item in refund.items:
        shipping += item.shipping
        shipping_promotion += item.shipping_promotion
        if not (item.principal or item.promotion or item.restocking_fee or item.goodwill):
            continue
        itno = routing.item_number(item.sku)
        originals = [line for line in order_lines if line.itno == itno and line.quantity > 0]
        if not originals:
            problems.append(f"{UNKNOWN_SKU}: {item.sku} (item {itno})")
            continue
        goods = item.item_net - item.goodwill  # for what comes back: less promotion and restocking fee
        if item.item_net <= 0 or goods < 0 or item.goodwill < 0:
            problems.append(f"{NOTHING_TO_CREDIT}: SKU {item.sku} refunds {item.item_net}")
            continue
        check_left(itno, f"SKU {item.sku}", item.item_net)
        original = originals[0]
        ordered = sum((line.quantity for line in originals), Decimal(0))
        units = whole_units(item.principal, original.unit_price, ordered, minor)
        if goods and units is None:  # a partial refund: the refunded amount as one returned piece
            lines.append(CreditLine(itno, Decimal(-1), goods))
        elif goods and units is not None:
            discount = units * original.unit_price - goods
            lines.append(CreditLine(itno, -units, original.unit_price, discount or None))
        if item.goodwill:  # money only: one piece at the goodwill amount
            lines.append(CreditLine(itno, Decimal(-1), item.goodwill))
    shipping_net = shipping - shipping_promotion
    if shipping_net < 0:
        problems.append(f"{NOTHING_TO_CREDIT}: shipping refunds {shipping_net}")
    elif shipping_net > 0:
        check_left(routing.shipping_item, "shipping", shipping_net)
        lines.append(CreditLine(routing.shipping_item, Decimal(-1), shipping, shipping_promotion or None))
    if problems:
        return CreditRefused(refund.order_id, refund.key, f"refund {refund.key}: " + "; ".join(problems))
    if not lines:
        return CreditRefused(refund.order_id, refund.key, f"refund {refund.key}: {NOTHING_TO_CREDIT}")
    if over:
        planned = sorted(lines, key=_line_order)
        if any(sorted(credit, key=_line_order) == planned for credit in earlier_credits):
            return CreditRefused(
                refund.order_id,
                refund.key,
                f"refund {refund.key}: {DUPLICATE}: the order's same lines are credited already",
                duplicate=True,
            )
        return CreditRefused(refund.order_id, refund.key, f"refund {refund.key}: {OVER_REFUNDED}: " + "; ".join(over))
    return PlannedCredit(refund.order_id, refund.key, refund.reference, tuple(lines))


def whole_units(principal: Decimal, unit_price: Decimal, ordered: Decimal, minor: Decimal) -> Decimal | None:
    """How many units ``principal`` refunds at ``unit_price`` (SAPR, the line total ÷ quantity
    rounded up to the minor unit, so n units cost n × SAPR less under n minor units), when a
    whole number from 1 to ``ordered``; else None."""
    if unit_price <= 0 or principal <= 0:
        return None
    units = Decimal(math.ceil(principal / unit_price))
    if units > ordered or units * unit_price - principal >= units * minor:
        return None
    return units


def _line_order(line: CreditLine) -> tuple[str, Decimal, Decimal, Decimal]:
    return (line.itno, line.quantity, line.unit_price, line.discount or Decimal(0))
