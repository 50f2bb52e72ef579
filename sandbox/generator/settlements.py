"""Settlement flat files V2 consistent with the generated orders (rows and totals as in real
files: docs/settlement-vocabulary.md;
https://developer-docs.amazon.com/sp-api/docs/report-type-values-settlement).

One settlement per marketplace per ~14-day window; the next window starts where the previous
ended. Every amount is computed in integer minor units and the total is their exact sum.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.catalog import FBA_FEES, MARKETPLACES, CatalogItem, Marketplace

from .formats import format_amount, render_v2
from .orders import AmazonOrder, OrderLine, ratio, split_gross
from .records import InjectedAnomaly, SettlementDocument, SettlementRow

SETTLEMENT_DAYS = 14
CURRENT_RESERVE = "Current Reserve Amount"  # the row holding back part of the window's sales
# Digital services tax charged on Amazon's fees, basis points (FR 3 %, UK 2 %).
DST_BP: dict[str, int] = {"FR": 300, "UK": 200}
MIN_COMMISSION_PER_UNIT = 30  # minor units
REFUND_ADMIN_PCT, REFUND_ADMIN_CAP = 20, 500
RESERVE_PCT = 10  # share of the window's principal held back
SUBSCRIPTION_FEE = {"US": 3999, "DE": 3900}  # EU account pays in EUR through Amazon.de
REMOVAL_FEE_PER_UNIT = {"USD": 97, "EUR": 50, "GBP": 45}
_SIZE_TIERS = list(FBA_FEES)


@dataclass(frozen=True)
class Window:
    market: str
    period: int
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Refund:
    order_id: str
    order_item_id: str
    posted: datetime
    adjustment_id: str
    merchant_adjustment_item_id: str


@dataclass(frozen=True)
class AnomalyPlan:
    """What to falsify, chosen up front so the ground truth is known exactly."""

    price_error_orders: frozenset[str] = frozenset()
    fba_overcharge_items: frozenset[str] = frozenset()  # order item ids
    commission_overcharge_items: frozenset[str] = frozenset()  # order item ids
    duplicate_refund_items: frozenset[str] = frozenset()  # order item ids of refunded lines
    missing_reimbursement: frozenset[tuple[str, int]] = frozenset()  # (market, period)


@dataclass(frozen=True)
class ItemFees:
    fba: int  # positive minor units charged
    commission: int
    dst: int
    chargeback: int
    fba_expected: int
    commission_expected: int


def item_fees(order: AmazonOrder, line: OrderLine, item: CatalogItem, plan: AnomalyPlan) -> ItemFees:
    currency = order.currency
    fba_expected = FBA_FEES[item.size_tier][currency] * line.quantity if order.channel == "AFN" else 0
    fba = fba_expected
    if line.order_item_id in plan.fba_overcharge_items and fba:
        tier_index = _SIZE_TIERS.index(item.size_tier)
        fba = (
            FBA_FEES[_SIZE_TIERS[tier_index + 1]][currency] * line.quantity
            if tier_index + 1 < len(_SIZE_TIERS)
            else ratio(fba_expected, 150, 100)
        )
    base = line.principal + line.shipping
    commission_expected = max(ratio(base, item.referral_bp, 10000), MIN_COMMISSION_PER_UNIT * line.quantity)
    commission = commission_expected
    if line.order_item_id in plan.commission_overcharge_items:
        commission = max(ratio(base, item.referral_bp * 140, 1000000), ratio(commission_expected, 140, 100))
    dst = ratio(commission + fba, DST_BP.get(order.market, 0), 10000)
    chargeback = line.shipping if order.channel == "AFN" and line.shipping and not line.shipping_promotion else 0
    return ItemFees(fba, commission, dst, chargeback, fba_expected, commission_expected)


def _order_rows(order: AmazonOrder, line: OrderLine, mp: Marketplace, fees: ItemFees) -> list[SettlementRow]:
    assert order.shipped is not None
    base = SettlementRow(
        transaction_type="Order",
        amount_type="",
        amount_description="",
        amount=0,
        posted=order.shipped,
        marketplace_name=mp.name,
        order_id=order.order_id,
        merchant_order_id=order.order_id,
        shipment_id=order.shipment_id,
        fulfillment_id=order.channel,
        order_item_code=line.order_item_id,
        sku=line.sku,
        quantity=line.quantity,
    )
    parts: list[tuple[str, str, int, str]] = [("ItemPrice", "Principal", line.principal, "")]
    if line.tax:
        parts.append(("ItemPrice", "Tax", line.tax, ""))
    if line.shipping:
        parts.append(("ItemPrice", "Shipping", line.shipping, ""))
    if line.shipping_tax:
        parts.append(("ItemPrice", "ShippingTax", line.shipping_tax, ""))
    if mp.facilitator_tax:
        parts += _withheld_tax_parts(line, sign=-1)
    else:
        parts.append(("ItemWithheldTax", "MarketplaceFacilitatorVAT-Principal", 0, ""))
    if fees.fba:
        parts.append(("ItemFees", "FBAPerUnitFulfillmentFee", -fees.fba, ""))
    parts.append(("ItemFees", "Commission", -fees.commission, ""))
    if fees.dst:
        parts.append(("ItemFees", "DigitalServicesFee", -fees.dst, ""))
    if fees.chargeback:
        parts.append(("ItemFees", "ShippingChargeback", -fees.chargeback, ""))
    parts += _promotion_parts(line, sign=-1)
    return [replace(base, amount_type=t, amount_description=d, amount=a, promotion_id=p) for t, d, a, p in parts]


def _refund_rows(
    order: AmazonOrder, line: OrderLine, mp: Marketplace, fees: ItemFees, refund: Refund
) -> list[SettlementRow]:
    base = SettlementRow(
        transaction_type="Refund",
        amount_type="",
        amount_description="",
        amount=0,
        posted=refund.posted,
        marketplace_name=mp.name,
        order_id=order.order_id,
        merchant_order_id=order.order_id,
        adjustment_id=refund.adjustment_id,
        fulfillment_id=order.channel,
        order_item_code=line.order_item_id,
        merchant_adjustment_item_id=refund.merchant_adjustment_item_id,
        sku=line.sku,
    )
    parts: list[tuple[str, str, int, str]] = []
    if line.tax:
        parts.append(("ItemPrice", "Tax", -line.tax, ""))
    parts.append(("ItemPrice", "Principal", -line.principal, ""))
    if line.shipping:
        parts.append(("ItemPrice", "Shipping", -line.shipping, ""))
    if line.shipping_tax:
        parts.append(("ItemPrice", "ShippingTax", -line.shipping_tax, ""))
    if mp.facilitator_tax:
        parts += _withheld_tax_parts(line, sign=+1)
    parts.append(("ItemFees", "Commission", fees.commission, ""))
    parts.append(
        ("ItemFees", "RefundCommission", -min(ratio(fees.commission, REFUND_ADMIN_PCT, 100), REFUND_ADMIN_CAP), "")
    )
    dst_refund = ratio(fees.commission, DST_BP.get(order.market, 0), 10000)
    if dst_refund:
        parts.append(("ItemFees", "DigitalServicesFee", dst_refund, ""))
    if fees.chargeback:
        parts.append(("ItemFees", "ShippingChargeback", fees.chargeback, ""))
    parts += _promotion_parts(line, sign=+1)
    return [replace(base, amount_type=t, amount_description=d, amount=a, promotion_id=p) for t, d, a, p in parts]


def _withheld_tax_parts(line: OrderLine, sign: int) -> list[tuple[str, str, int, str]]:
    """Marketplace-facilitator tax Amazon withholds (sign -1 on an order, +1 on its refund)."""
    parts = []
    if line.tax:
        parts.append(("ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", sign * line.tax, ""))
    if line.shipping_tax:
        parts.append(("ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", sign * line.shipping_tax, ""))
    return parts


def _promotion_parts(line: OrderLine, sign: int) -> list[tuple[str, str, int, str]]:
    """Item, shipping and VAT discounts (sign -1 on an order, +1 on its refund)."""
    amounts = (("Principal", line.promotion), ("Shipping", line.shipping_promotion), ("TaxDiscount", line.tax_discount))
    return [("Promotion", description, sign * amount, line.promotion_id) for description, amount in amounts if amount]


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def _crow_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "amzn1:crow:" + "".join(rng.choice(alphabet) for _ in range(22))


def _account_row(
    posted: datetime, transaction_type: str, amount_type: str, description: str, amount: int, **extra: Any
) -> SettlementRow:  # SettlementRow fields by name
    return SettlementRow(
        transaction_type=transaction_type,
        amount_type=amount_type,
        amount_description=description,
        amount=amount,
        posted=posted,
        **extra,
    )


def _moment(rng: random.Random, window: Window) -> datetime:
    return window.start + timedelta(seconds=rng.randrange(60, int((window.end - window.start).total_seconds()) - 60))


def _month_starts(window: Window) -> list[datetime]:
    first = window.start.replace(day=1, hour=0, minute=0, second=0)
    found = []
    while first < window.end:
        if first >= window.start:
            found.append(first)
        first = (first + timedelta(days=32)).replace(day=1)
    return found


@dataclass(frozen=True)
class _Event:
    posted: datetime
    rows: tuple[SettlementRow, ...]


class SettlementBuilder:
    """Assembles the settlements of every marketplace window, carrying reserves forward."""

    def __init__(
        self,
        seed: int,
        catalog: list[CatalogItem],
        orders: list[AmazonOrder],
        refunds: list[Refund],
        windows: list[Window],
        plan: AnomalyPlan,
        negative: tuple[str, int] | None,
    ) -> None:
        self._seed = seed
        self._items = {i.sku: i for i in catalog}
        self._catalog = catalog
        self._orders = orders
        self._refunds = refunds
        self._windows = windows
        self._plan = plan
        self._negative = negative
        self.anomalies: list[InjectedAnomaly] = []

    def build(
        self, settlement_ids: dict[tuple[str, int], str], reserves: dict[str, int] | None = None
    ) -> list[SettlementDocument]:
        """The windows' settlements; ``reserves``: per marketplace, the reserve its previous
        settlement held back (a world that moves on carries it into its next window)."""
        documents: list[SettlementDocument] = []
        previous_reserve: dict[str, int] = dict(reserves or {})
        for window in sorted(self._windows, key=lambda w: (w.period, w.market)):
            sid = settlement_ids[(window.market, window.period)]
            doc, reserve = self._settle(window, sid, previous_reserve.get(window.market, 0))
            previous_reserve[window.market] = reserve
            documents.append(doc)
        documents.sort(key=lambda d: (d.end, d.settlement_id))
        return documents

    def _flag(self, kind: str, sid: str, order_id: str, sku: str, detail: str) -> None:
        self.anomalies.append(InjectedAnomaly(kind, sid, order_id, sku, detail))

    def _order_events(self, window: Window, sid: str, mp: Marketplace) -> tuple[list[_Event], int]:
        events: list[_Event] = []
        principal_total = 0
        by_id = {o.order_id: o for o in self._orders}
        for order in self._orders:
            if order.market != window.market or order.shipped is None or not window.contains(order.shipped):
                continue
            rows: list[SettlementRow] = []
            for line in order.lines:
                item = self._items[line.sku]
                fees = item_fees(order, line, item, self._plan)
                rows += _order_rows(order, line, mp, fees)
                principal_total += line.principal
                self._note_fee_anomalies(sid, order, line, item, fees, mp)
            if order.order_id in self._plan.price_error_orders:
                line = order.lines[0]
                listed = self._items[line.sku].price(order.market)
                catalog_net = split_gross(listed, mp.vat_rate_pct)[0] if mp.vat_rate_pct else listed
                self._flag(
                    "price_error",
                    sid,
                    order.order_id,
                    line.sku,
                    f"unit principal {format_amount(line.unit_price, mp.decimal_comma)} vs catalog "
                    f"{format_amount(catalog_net, mp.decimal_comma)} {mp.currency}",
                )
            events.append(_Event(order.shipped, tuple(rows)))
        for refund in self._refunds:
            order = by_id[refund.order_id]
            if order.market != window.market or not window.contains(refund.posted):
                continue
            line = next(li for li in order.lines if li.order_item_id == refund.order_item_id)
            fees = item_fees(order, line, self._items[line.sku], self._plan)
            events.append(_Event(refund.posted, tuple(_refund_rows(order, line, mp, fees, refund))))
            if line.order_item_id in self._plan.duplicate_refund_items:
                rng = random.Random(f"dup-{self._seed}-{refund.adjustment_id}")
                twin = replace(
                    refund,
                    adjustment_id=_crow_id(rng),
                    merchant_adjustment_item_id=_digits(rng, 19),
                    posted=min(refund.posted + timedelta(hours=rng.randint(1, 30)), window.end - timedelta(seconds=1)),
                )
                events.append(_Event(twin.posted, tuple(_refund_rows(order, line, mp, fees, twin))))
                self._flag(
                    "duplicate_refund",
                    sid,
                    order.order_id,
                    line.sku,
                    f"refund {refund.adjustment_id} repeated as {twin.adjustment_id}",
                )
        return events, principal_total

    def _note_fee_anomalies(
        self, sid: str, order: AmazonOrder, line: OrderLine, item: CatalogItem, fees: ItemFees, mp: Marketplace
    ) -> None:
        def fmt(minor: int) -> str:
            return format_amount(minor, mp.decimal_comma)

        if fees.fba != fees.fba_expected:
            self._flag(
                "fee_overcharge_fba",
                sid,
                order.order_id,
                line.sku,
                f"FBA fee {fmt(fees.fba)} charged, {item.size_tier} fee is {fmt(fees.fba_expected)}",
            )
        if fees.commission != fees.commission_expected:
            self._flag(
                "fee_overcharge_commission",
                sid,
                order.order_id,
                line.sku,
                f"commission {fmt(fees.commission)} charged, {item.referral_bp / 100:.0f}% is "
                f"{fmt(fees.commission_expected)}",
            )

    def _account_events(self, window: Window, sid: str, mp: Marketplace, rng: random.Random) -> list[_Event]:
        events: list[_Event] = []
        afn_items = [i for i in self._catalog if window.market in i.marketplaces]
        # Multi-channel fulfilment: FBA ships the seller's own shop orders; only the fee settles.
        if window.market != "FR":
            for _ in range(rng.randint(0, 2)):
                item, qty, posted = rng.choice(afn_items), rng.randint(1, 2), _moment(rng, window)
                common = dict(
                    marketplace_name=f"Non-Amazon {window.market}",
                    order_id=f"S01-{_digits(rng, 7)}-{_digits(rng, 7)}",
                    merchant_order_id=f"#{rng.randint(1000, 9999)}",
                    shipment_id=_digits(rng, 9),
                    fulfillment_id="AFN",
                    order_item_code=_digits(rng, 14),
                    merchant_order_item_id=item.sku,
                    sku=item.sku,
                    quantity=qty,
                )
                events.append(
                    _Event(
                        posted,
                        (
                            _account_row(posted, "Order", "ItemPrice", "Principal", 0, **common),
                            _account_row(
                                posted,
                                "Order",
                                "ItemFees",
                                "FBAPerUnitFulfillmentFee",
                                -FBA_FEES[item.size_tier][mp.currency] * qty,
                                **common,
                            ),
                        ),
                    )
                )
        # FBA inventory reimbursements (lost / damaged in Amazon's warehouse).
        forced_loss = (window.market, window.period) in self._plan.missing_reimbursement
        happens, damage_roll = rng.random() < 0.6, rng.random()  # drawn always: same stream with anomalies
        if forced_loss or happens:
            item, qty, posted = rng.choice(afn_items), rng.randint(1, 3), _moment(rng, window)
            kind = "WAREHOUSE_DAMAGE" if forced_loss or damage_roll < 0.5 else "REVERSAL_REIMBURSEMENT"
            adjustment = _digits(rng, 10)
            amount = ratio(item.price(window.market), 60, 100) * qty
            if forced_loss:
                self._flag(
                    "missing_reimbursement",
                    sid,
                    "",
                    item.sku,
                    f"{qty} unit(s) lost/damaged ({kind}, event {adjustment}) with no reimbursement; "
                    f"expected about {format_amount(amount, mp.decimal_comma)} {mp.currency}",
                )
            else:
                events.append(
                    _Event(
                        posted,
                        (
                            _account_row(
                                posted,
                                "other-transaction",
                                "FBA Inventory Reimbursement",
                                kind,
                                amount,
                                marketplace_name=mp.name,
                                adjustment_id=adjustment,
                                sku=item.sku,
                                quantity=qty,
                                fulfillment_id="AFN",
                            ),
                        ),
                    )
                )
        if rng.random() < 0.35:
            item, qty, posted = rng.choice(afn_items), rng.randint(1, 10), _moment(rng, window)
            events.append(
                _Event(
                    posted,
                    (
                        _account_row(
                            posted,
                            "other-transaction",
                            "other-transaction",
                            "RemovalComplete",
                            -REMOVAL_FEE_PER_UNIT[mp.currency] * qty,
                            marketplace_name=mp.name,
                            order_id=posted.strftime("%y%m%d%H") + "VO",
                            sku=item.sku,
                            quantity=qty,
                        ),
                    ),
                )
            )
        for first in _month_starts(window):
            if window.market in SUBSCRIPTION_FEE:
                posted = min(first + timedelta(hours=6), window.end - timedelta(seconds=1))
                events.append(
                    _Event(
                        posted,
                        (
                            _account_row(
                                posted,
                                "other-transaction",
                                "other-transaction",
                                "Subscription Fee",
                                -SUBSCRIPTION_FEE[window.market],
                                marketplace_name=mp.name,
                            ),
                        ),
                    )
                )
        return events

    def _settle(self, window: Window, sid: str, previous_reserve: int) -> tuple[SettlementDocument, int]:
        mp = MARKETPLACES[window.market]
        rng = random.Random(f"settlement-{self._seed}-{window.market}-{window.period}")
        events, principal_total = self._order_events(window, sid, mp)
        events += self._account_events(window, sid, mp, rng)
        events.sort(key=lambda e: e.posted)
        body = [row for event in events for row in event.rows]
        running = previous_reserve + sum(r.amount for r in body)
        ad_posted = _moment(rng, window)
        if (window.market, window.period) == self._negative:
            # Heavy advertising in a quiet marketplace: the seller owes Amazon this period.
            advertising = running + rng.randrange(2500, 8000)
        else:
            advertising = rng.randrange(1500, 9000)
        ad_row = _account_row(ad_posted, "ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -advertising)
        body = sorted(body + [ad_row], key=lambda r: r.posted)
        running -= advertising
        # Amazon holds back part of recent sales; it never makes a positive payout negative.
        reserve = min(ratio(principal_total, RESERVE_PCT, 100), max(running, 0))
        rows: list[SettlementRow] = []
        if previous_reserve:
            rows.append(
                _account_row(
                    window.start,
                    "other-transaction",
                    "other-transaction",
                    "Previous Reserve Amount Balance",
                    previous_reserve,
                )
            )
        rows += body
        if reserve:
            rows.append(
                _account_row(
                    window.end - timedelta(seconds=1),
                    "other-transaction",
                    "other-transaction",
                    CURRENT_RESERVE,
                    -reserve,
                )
            )
        total = sum(r.amount for r in rows)
        deposit = window.end + timedelta(days=2)
        doc = SettlementDocument(
            settlement_id=sid,
            marketplace_id=mp.marketplace_id,
            currency=mp.currency,
            start=window.start,
            end=window.end,
            deposit_date=deposit,
            total=Decimal(total).scaleb(-2),
            text=render_v2(sid, mp, window.start, window.end, deposit, total, tuple(rows)),
            created_time=window.end + timedelta(hours=rng.randint(2, 6), minutes=rng.randint(0, 59)),
            rows=tuple(rows),
        )
        return doc, reserve
