"""Immutable records the generator produces and hands to the SP-API sandbox and the tests.

Amounts inside the generator are integer minor units; the public edges (settlement totals,
M3 order lines) use ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class SettlementRow:
    """One transaction row of a settlement (one amount component), before formatting."""

    transaction_type: str
    amount_type: str
    amount_description: str
    amount: int  # signed minor units of the settlement currency
    posted: datetime  # UTC aware
    marketplace_name: str = ""
    order_id: str = ""
    merchant_order_id: str = ""
    adjustment_id: str = ""
    shipment_id: str = ""
    fulfillment_id: str = ""
    order_item_code: str = ""
    merchant_order_item_id: str = ""
    merchant_adjustment_item_id: str = ""
    sku: str = ""
    quantity: int | None = None  # None = empty cell (refund rows, account-level rows)
    promotion_id: str = ""


@dataclass(frozen=True)
class SettlementDocument:
    """A complete settlement flat file V2 as Amazon would deliver it, plus its header values."""

    settlement_id: str
    marketplace_id: str
    currency: str
    start: datetime
    end: datetime
    deposit_date: datetime
    total: Decimal
    text: str
    created_time: datetime
    # The unformatted rows behind ``text`` (used by the V1 writer); kept out of repr/eq.
    rows: tuple[SettlementRow, ...] = field(default=(), repr=False, compare=False)

    @property
    def line_count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class InjectedAnomaly:
    """Ground truth for one deliberately wrong thing in a settlement (anomalies=True only)."""

    kind: str  # fee_overcharge_fba | fee_overcharge_commission | duplicate_refund
    # | missing_reimbursement | price_error
    settlement_id: str
    order_id: str  # "" when the anomaly is not tied to an order (missing reimbursement)
    sku: str
    detail: str


@dataclass(frozen=True)
class M3OrderLine:
    """What M3 would invoice for one line of a shipped Amazon order.

    Amounts are line totals in the marketplace currency (``unit_price`` is per unit), net of
    VAT; ``tax`` is the VAT / sales tax on the line, ``promotion`` the discount (positive).
    """

    amazon_order_id: str
    order_item_id: str
    marketplace_id: str
    currency: str
    fulfillment_channel: str  # AFN / MFN
    sku: str
    itno: str
    quantity: int
    unit_price: Decimal
    line_amount: Decimal
    tax: Decimal
    shipping: Decimal
    shipping_tax: Decimal
    promotion: Decimal
    shipped: datetime
    # True where Amazon collects and remits the tax as marketplace facilitator (US): the seller
    # does not invoice it, and the settlement withholds it again (ItemWithheldTax).
    tax_collected_by_amazon: bool = False
    item_promotion: Decimal = Decimal(0)  # the part of ``promotion`` on the item price
    shipping_promotion: Decimal = Decimal(0)  # the part of ``promotion`` waiving shipping
