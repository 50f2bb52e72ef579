"""The parsed settlement: what every later stage (validate, gate, map, reconcile) reads.

A settlement is a header plus a long frame of lines, one row per amount component, in both
the V2 and the legacy V1 format (V1's per-kind columns are melted into this shape). Amounts
are integer minor units; identifiers are strings; times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

# Re-exported (the `as` form says so to ruff and mypy): one table, defined in marketplaces.
from reconciliation.marketplaces import CURRENCY_DECIMALS as CURRENCY_DECIMALS

# Columns of Settlement.lines, in order, with their dtypes.
LINE_COLUMNS: dict[str, str] = {
    "settlement_id": "str",
    "line_no": "int64",  # 1-based line number in the source file (header = line 1)
    "transaction_type": "str",  # Order, Refund, other-transaction, ServiceFee, ...
    "order_id": "str",
    "merchant_order_id": "str",
    "adjustment_id": "str",
    "shipment_id": "str",
    "marketplace_name": "str",
    "amount_type": "str",  # ItemPrice, ItemFees, Promotion, ItemWithheldTax, other-transaction, ...
    "amount_description": "str",  # Principal, Commission, FBAPerUnitFulfillmentFee, Current Reserve Amount, ...
    "amount_minor": "int64",  # signed, in minor units of the settlement currency
    "fulfillment_id": "str",  # AFN / MFN / ""
    "posted_date": "datetime64[us, UTC]",  # posted-date-time when present, else posted-date at 00:00 UTC
    "order_item_code": "str",
    "merchant_order_item_id": "str",
    "merchant_adjustment_item_id": "str",
    "sku": "str",
    "quantity": "Int64",  # empty on refund rows
    "promotion_id": "str",
}


def currency_decimals(currency: str) -> int:
    """Minor-unit exponent (ISO 4217) of the currency: from the marketplace table (JPY has
    none); 2 for a currency no marketplace uses."""
    return CURRENCY_DECIMALS.get(currency.strip().upper(), 2)


@dataclass(frozen=True, eq=False)
class Settlement:
    """One settlement as Amazon reported it. ``lines`` follows ``LINE_COLUMNS``.

    Compares by identity (``eq=False``): a DataFrame has no single truth value. Its key is
    ``settlement_id``; whether two copies hold the same content is ``parse.dedupe_settlements``'s
    question, not ``==``'s."""

    settlement_id: str
    source: str  # file name (or report document id) it came from
    format: str  # "v2" or "v1"
    currency: str
    start: pd.Timestamp  # UTC
    end: pd.Timestamp  # UTC
    deposit_date: pd.Timestamp  # UTC
    total_minor: int  # total-amount in minor units
    marketplace: str  # the Amazon marketplace most lines belong to, e.g. "Amazon.com"
    lines: pd.DataFrame
    source_sha256: str = ""  # of the bytes it was parsed from (for an Amazon report, the decoded document)

    @property
    def line_count(self) -> int:
        return len(self.lines)

    @property
    def decimals(self) -> int:
        return currency_decimals(self.currency)


def minor_to_decimal(amount_minor: int, decimals: int) -> Decimal:
    """Exact Decimal of an amount in minor units (1234, 2 -> Decimal('12.34'))."""
    return Decimal(int(amount_minor)).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals))


def decimal_to_minor(amount: Decimal, decimals: int) -> int:
    """Minor units of an exact amount; refuses amounts with more decimals than the currency has."""
    scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(scaled)


def format_minor(amount_minor: int, decimals: int) -> str:
    """Minor units as a plain decimal string with the currency's decimals ("-4.50", "120")."""
    return str(minor_to_decimal(amount_minor, decimals))


def format_amount(amount_minor: int, currency: str) -> str:
    """Minor units as the JSON contract's string: the currency's decimals, no float ("31.81")."""
    return format_minor(amount_minor, currency_decimals(currency))


INT64_MAX = int(np.iinfo(np.int64).max)


def int64_sum_is_exact(values: np.ndarray) -> bool:
    """True when no sum of any subset of ``values`` can leave int64 (n * max|value| bounds them all)."""
    if len(values) == 0:
        return True
    return max(abs(int(values.max())), abs(int(values.min()))) * len(values) <= INT64_MAX


def exact_sum(amounts: np.ndarray | pd.Series) -> int:
    """Σ of int64 amounts as a Python int: exact at any size (int64 .sum() wraps silently)."""
    values = np.asarray(amounts, dtype=np.int64)
    if int64_sum_is_exact(values):
        return int(values.sum())  # the usual case: one vectorised pass
    # Split every value into high and low 32 bits; each half's int64 sum cannot wrap below 2**31 rows.
    high, low = values >> 32, values & 0xFFFFFFFF
    return int(high.sum()) * (1 << 32) + int(low.sum())
