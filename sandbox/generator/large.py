"""Benchmark-size settlements: one balanced V2 file of N lines, built column-wise with numpy.

Every order is a block of five rows (Principal, Tax, withheld tax / zero facilitator VAT, FBA
fee, Commission); the N mod 5 leftover rows are advertising charges. No per-row Python loop:
a million lines take a few seconds. ``write_matching_invoices`` writes the M3 invoices that
match those orders exactly (one per order, ``reconciliation.matching.INVOICE_COLUMNS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox.catalog import FBA_FEES, MARKETPLACES, build_catalog

from .formats import V2_COLUMNS, format_amount, format_date, format_datetime

BLOCK = 5
_START = date(2026, 9, 1)
_ORDER_PREFIX = {"US": "111", "DE": "302", "FR": "402", "UK": "202"}
_US_TAX_BP = np.array([0, 600, 625, 650, 725, 888])


@dataclass(frozen=True)
class LargeOrders:
    """The orders behind a large settlement, one array element per order."""

    order_id: np.ndarray
    order_item_code: np.ndarray
    sku: np.ndarray
    itno: np.ndarray
    quantity: np.ndarray
    principal: np.ndarray  # int64 minor units, net
    tax: np.ndarray
    fba_fee: np.ndarray  # positive
    commission: np.ndarray  # positive
    posted: pd.DatetimeIndex  # UTC
    extra_rows: int
    advertising: np.ndarray  # positive, one per leftover row


def _window() -> tuple[datetime, datetime]:
    # Benchmarks need one fixed fortnight; the clock matches the real US file.
    start = datetime.combine(_START, time(14, 28, 38), tzinfo=UTC)
    return start, start + timedelta(days=14, seconds=1)


def _half_up(numerator: np.ndarray, denominator: int | np.ndarray) -> np.ndarray:
    return (2 * numerator + denominator) // (2 * denominator)


def large_orders(lines: int, seed: int, marketplace: str = "US") -> LargeOrders:
    if lines < 1:
        raise ValueError(f"large settlement: lines must be >= 1, got {lines}")
    if marketplace not in MARKETPLACES:
        raise ValueError(f"large settlement: unknown marketplace {marketplace!r}; use one of {sorted(MARKETPLACES)}")
    mp = MARKETPLACES[marketplace]
    rng = np.random.default_rng(seed)
    catalog = [i for i in build_catalog(seed) if marketplace in i.marketplaces]
    n, extra = divmod(lines, BLOCK)
    pick = rng.integers(0, len(catalog), n)
    quantity = rng.choice(np.array([1, 1, 1, 1, 2, 3]), n)
    gross = np.array([i.price(marketplace) for i in catalog], dtype=np.int64)[pick]
    if mp.vat_rate_pct:
        unit_net = _half_up(gross * 100, 100 + mp.vat_rate_pct)
        tax = (gross - unit_net) * quantity
    else:
        unit_net = gross
        tax = _half_up(unit_net * quantity * rng.choice(_US_TAX_BP, n), 10000)
    principal = unit_net * quantity
    referral = np.array([i.referral_bp for i in catalog], dtype=np.int64)[pick]
    commission = np.maximum(_half_up(principal * referral, 10000), 30 * quantity)
    fba_fee = np.array([FBA_FEES[i.size_tier][mp.currency] for i in catalog], dtype=np.int64)[pick] * quantity
    start, end = _window()
    span = int((end - start).total_seconds()) - 120
    offsets = np.sort(rng.integers(60, span, n))
    posted = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s"))
    serial = pd.Series(np.arange(n, dtype=np.int64))
    order_id = (
        _ORDER_PREFIX[marketplace]
        + "-"
        + pd.Series(rng.integers(10**6, 10**7, n)).astype(str)
        + "-"
        + serial.astype(str).str.zfill(7)
    ).to_numpy()
    item_code = pd.Series(rng.integers(10**13, 9 * 10**13, n, dtype=np.int64)) // 10**7 * 10**7 + serial
    return LargeOrders(
        order_id=order_id,
        order_item_code=item_code.astype(str).to_numpy(),
        sku=np.array([i.sku for i in catalog], dtype=object)[pick],
        itno=np.array([i.itno for i in catalog], dtype=object)[pick],
        quantity=quantity,
        principal=principal,
        tax=tax,
        fba_fee=fba_fee,
        commission=commission,
        posted=posted,
        extra_rows=extra,
        advertising=rng.integers(500, 5000, extra),
    )


def _amount_strings(minor: np.ndarray, decimal_comma: bool) -> pd.Series:
    values = pd.Series(minor, dtype="int64")
    absolute = values.abs()
    text = (absolute // 100).astype(str) + ("," if decimal_comma else ".") + (absolute % 100).astype(str).str.zfill(2)
    return text.where(values >= 0, "-" + text)


def _text(values: np.ndarray | pd.Series) -> pd.Series:
    return pd.Series(np.asarray(values)).astype(str)


def write_large_settlement(path: str | Path, lines: int, seed: int, marketplace: str = "US") -> Path:
    """Write one balanced V2 settlement with exactly ``lines`` transaction rows to ``path``."""
    orders = large_orders(lines, seed, marketplace)
    mp = MARKETPLACES[marketplace]
    n, style = len(orders.principal), mp.date_style
    settlement_id = str(10**10 + seed % (9 * 10**10))
    withheld = -orders.tax if mp.facilitator_tax else np.zeros(n, dtype=np.int64)
    order_amounts = np.column_stack([orders.principal, orders.tax, withheld, -orders.fba_fee, -orders.commission])
    amounts = np.concatenate([order_amounts.ravel(), -orders.advertising])

    # The five rows of an order share every column except amount-type/-description/amount, so
    # each line is built as per-order prefix + per-row middle + per-order suffix (string
    # concatenation over whole arrays; far faster than DataFrame.to_csv on 24 object columns).
    withheld_kind = (
        "MarketplaceFacilitatorTax-Principal" if mp.facilitator_tax else "MarketplaceFacilitatorVAT-Principal"
    )
    kinds = np.array(
        [
            "ItemPrice\tPrincipal\t",
            "ItemPrice\tTax\t",
            f"ItemWithheldTax\t{withheld_kind}\t",
            "ItemFees\tFBAPerUnitFulfillmentFee\t",
            "ItemFees\tCommission\t",
        ],
        dtype=object,
    )
    order_id, code = _text(orders.order_id), _text(orders.order_item_code)
    prefix = (
        f"{settlement_id}\t\t\t\t\t\tOrder\t" + order_id + "\t" + order_id + "\t\t" + code.str[-9:] + f"\t{mp.name}\t"
    )
    suffix = (
        "\tAFN\t"
        + _text(orders.posted.strftime("%d.%m.%Y" if style == "eu" else "%Y-%m-%d"))
        + "\t"
        + _text(orders.posted.strftime("%d.%m.%Y %H:%M:%S UTC" if style == "eu" else "%Y-%m-%d %H:%M:%S UTC"))
        + "\t"
        + code
        + "\t\t\t"
        + _text(orders.sku)
        + "\t"
        + _text(orders.quantity)
        + "\t"
    )
    amount_text = _amount_strings(amounts, mp.decimal_comma).to_numpy()
    order_lines = (
        np.repeat(prefix.to_numpy(), BLOCK)
        + np.tile(kinds, n)
        + amount_text[: n * BLOCK]
        + np.repeat(suffix.to_numpy(), BLOCK)
    )
    start, end = _window()
    ad_time = end - timedelta(hours=1)
    ad_suffix = f"\t\t{format_date(ad_time, style)}\t{format_datetime(ad_time, style)}\t\t\t\t\t\t"
    ad_lines = [
        f"{settlement_id}\t\t\t\t\t\tServiceFee\t\t\t\t\t\tCost of Advertising\tTransactionTotalAmount\t"
        f"{text}{ad_suffix}"
        for text in amount_text[n * BLOCK :]
    ]
    total = int(amounts.sum())
    deposit = end + timedelta(days=2)
    summary = [
        settlement_id,
        format_datetime(start, style),
        format_datetime(end, style),
        format_datetime(deposit, style),
        format_amount(total, mp.decimal_comma),
        mp.currency,
    ]
    target = Path(path)
    with target.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(V2_COLUMNS) + "\n")
        handle.write("\t".join(summary + [""] * (len(V2_COLUMNS) - len(summary))) + "\n")
        handle.write("\n".join(order_lines.tolist() + ad_lines) + "\n")
    return target


def matching_invoices(lines: int, seed: int, marketplace: str = "US") -> pd.DataFrame:
    """M3 invoices (one per order of the large settlement) that reconcile to the cent.

    Gross = what the settlement credits as sales: net + VAT in EU marketplaces; net only in
    the US, where Amazon collects and withholds the sales tax itself.
    """
    orders = large_orders(lines, seed, marketplace)
    mp = MARKETPLACES[marketplace]
    n = len(orders.principal)
    tax = np.zeros(n, dtype=np.int64) if mp.facilitator_tax else orders.tax
    serial = pd.Series(np.arange(n, dtype=np.int64))
    return pd.DataFrame(
        {
            "orno": ("1" + serial.astype(str).str.zfill(9)).astype(str),
            "cuor": pd.Series(orders.order_id, dtype=str),
            "ivno": (serial + 500000000).astype(str),
            "ivdt": pd.Series(orders.posted.tz_localize(None).normalize()).astype("datetime64[us]"),
            "currency": mp.currency,
            "net_minor": pd.Series(orders.principal, dtype="int64"),
            "tax_minor": pd.Series(tax, dtype="int64"),
            "gross_minor": pd.Series(orders.principal + tax, dtype="int64"),
            "sku": pd.Series(orders.sku, dtype=str),
            "itno": pd.Series(orders.itno, dtype=str),
            "quantity": pd.Series(orders.quantity, dtype="int64"),
        }
    )


def write_matching_invoices(path: str | Path, lines: int, seed: int, marketplace: str = "US") -> Path:
    """CSV of ``matching_invoices`` (identifiers as text, amounts in minor units)."""
    target = Path(path)
    matching_invoices(lines, seed, marketplace).to_csv(target, index=False, lineterminator="\n")
    return target
