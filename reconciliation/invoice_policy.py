"""Orders M3 has no document for: refunds without a credit note, sales without an invoice.

Reconciliation (``reconciliation.matching``) finds them; this stage applies the accountant's
choice to the mapped lines, after reconciliation and before the vouchers are built again
(``reconciliation.pipeline.with_invoice_policy``):

- ``hold`` (the default for both): the settlement is held by the ``invoices`` gate, with a
  reason naming the orders (the first few and how many) and the amounts, and how to release
  it. Nothing is posted; once M3 has the credit note or invoice, the next run finds the order
  matched and posts (held settlements are retried).
- refunds without a credit note, ``returns``: the refund's sales lines of those orders post
  to ``sales_returns`` (principal, shipping, gift wrap, promotions) and ``sales_returns_tax``
  (the tax refunded: the output tax reversal) instead of the receivable. Withheld
  marketplace-facilitator tax keeps its category: Amazon remits it, no M3 document carries it.
- orders without an invoice, ``suspense``: every sales line of those orders (their refunds
  too: the order was never invoiced, so no credit note can follow) posts to
  ``missing_invoice_suspense`` instead of the receivable, withheld tax again excepted.

Tax lines the marketplace's tax profile booked to ``facilitator_tax_clearing`` before this stage
(``reconciliation.tax.book_facilitator_tax``: the orders Amazon collects and remits the tax for,
where M3 invoices them net) stay there with the withheld tax, so the two still net to nil; only
the refunded tax of an order the seller charged the tax on reverses output tax on
``sales_returns_tax``.

A mapping whose ``invoices_in_m3`` is false (the ``summary`` preset: the settlement is the
sales journal) has no order waiting for an M3 document: nothing is held or moved.
Order ids name no buyer; they are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from reconciliation.gates import GateFailure
from reconciliation.mapping import GLMapping, MappedLines, normalise_key
from reconciliation.matching import REFUND_TRANSACTION_TYPE, Reconciliation, sales_lines, withheld_tax_lines
from reconciliation.model import exact_sum, format_minor
from reconciliation.tax import FACILITATOR_CLEARING

GATE_INVOICES = "invoices"
RefundsWithoutCredit = Literal["hold", "returns"]
MissingInvoices = Literal["hold", "suspense"]
REFUNDS_WITHOUT_CREDIT: tuple[RefundsWithoutCredit, ...] = get_args(RefundsWithoutCredit)
MISSING_INVOICES: tuple[MissingInvoices, ...] = get_args(MissingInvoices)
SALES_RETURNS = "sales_returns"
SALES_RETURNS_TAX = "sales_returns_tax"
MISSING_INVOICE_SUSPENSE = "missing_invoice_suspense"
# How the reasons end when the orders were posted elsewhere by choice (the Exceptions sheet reads them).
RETURNS_CHOSEN = "by choice (returns)"
SUSPENSE_CHOSEN = "by choice (suspense)"
SHOWN_ORDERS = 5  # order ids named in a reason; the count says how many more


@dataclass(frozen=True)
class InvoicePolicy:
    """The accountant's choice for orders M3 has no document for (``m3sync settle`` options,
    ``[settlement]`` in config.toml)."""

    refunds_without_credit: RefundsWithoutCredit = "hold"
    missing_invoices: MissingInvoices = "hold"

    def __post_init__(self) -> None:
        if self.refunds_without_credit not in REFUNDS_WITHOUT_CREDIT:
            raise ValueError(f"refunds without credit: {self.refunds_without_credit!r} is not one of hold, returns")
        if self.missing_invoices not in MISSING_INVOICES:
            raise ValueError(f"missing invoices: {self.missing_invoices!r} is not one of hold, suspense")


@dataclass(frozen=True, eq=False)
class InvoicePolicyResult:
    """``mapped`` with the chosen lines moved; ``holds`` (the ``invoices`` gate's failures) and
    ``notes`` (which orders were moved where) for the reasons. Compares by identity: it holds a DataFrame."""

    mapped: MappedLines
    holds: tuple[GateFailure, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.holds or self.notes)


def apply_invoice_policy(
    mapped: MappedLines,
    reconciliation: Reconciliation,
    mapping: GLMapping,
    policy: InvoicePolicy,
    *,
    decimals: int,
) -> InvoicePolicyResult:
    """Hold, or move to the chosen categories, the lines of orders without an M3 document (never
    the lines the tax profile booked to the facilitator clearing: those stay)."""
    if not mapping.invoices_in_m3:
        return InvoicePolicyResult(mapped)
    orders = reconciliation.orders
    refunds = orders[orders["category"] == "refund_without_credit"]
    missing = orders[orders["category"] == "missing_in_m3"]
    money = _Money(decimals, mapped.currency)
    holds: list[GateFailure] = []
    notes: list[str] = []
    moved = mapped
    if not missing.empty:
        what = f"{_orders(missing)} without an M3 invoice (sold {money(missing['settled_minor'])})"
        if policy.missing_invoices == "hold":
            holds.append(GateFailure(GATE_INVOICES, f"{what}: {_MISSING_RELEASE}"))
        else:
            absent = _absent(mapping, (MISSING_INVOICE_SUSPENSE,), "--missing-invoices suspense")
            if absent:
                holds.append(GateFailure(GATE_INVOICES, f"{what}: {absent}"))
            else:
                receivable = _receivable_lines(moved.lines, missing["order_id"])
                moved = mapping.rebooked(moved, receivable, MISSING_INVOICE_SUSPENSE)
                notes.append(f"{what} posted to {_account(mapping, MISSING_INVOICE_SUSPENSE)} {SUSPENSE_CHOSEN}")
    if not refunds.empty:
        what = f"refunds of {_orders(refunds)} without an M3 credit note (refunded {money(-refunds['refunded_minor'])})"
        if policy.refunds_without_credit == "hold":
            holds.append(GateFailure(GATE_INVOICES, f"{what}: {_REFUNDS_RELEASE}"))
        else:
            absent = _absent(mapping, (SALES_RETURNS, SALES_RETURNS_TAX), "--refunds-without-credit returns")
            if absent:
                holds.append(GateFailure(GATE_INVOICES, f"{what}: {absent}"))
            else:
                lines = moved.lines
                refunded = _receivable_lines(lines, refunds["order_id"]) & (
                    lines["transaction_type"] == REFUND_TRANSACTION_TYPE
                ).to_numpy(dtype=bool)
                tax = _tax_lines(lines)
                moved = mapping.rebooked(moved, refunded & ~tax, SALES_RETURNS)
                moved = mapping.rebooked(moved, refunded & tax, SALES_RETURNS_TAX)
                facilitator_tax = _receivable_lines(lines, refunds["order_id"], cleared=True).any()
                booked = [f"tax reversed on {_account(mapping, SALES_RETURNS_TAX)}"] if (refunded & tax).any() else []
                booked += ["facilitator tax on the facilitator clearing"] if facilitator_tax else []
                tax_booked = " and ".join(booked) or "no tax"
                notes.append(
                    f"{what} posted as sales returns ({_account(mapping, SALES_RETURNS)}; {tax_booked}) "
                    f"{RETURNS_CHOSEN}"
                )
    if moved is mapped and not holds:
        return InvoicePolicyResult(mapped)
    return InvoicePolicyResult(moved, tuple(holds), tuple(notes))


_REFUNDS_RELEASE = (
    "held, nothing posted. Create the credit notes in M3 (the next run posts the settlement), or post "
    "the refunds as sales returns with `m3sync settle --refunds-without-credit returns` "
    '(or [settlement] refunds_without_credit = "returns" in config.toml)'
)
_MISSING_RELEASE = (
    "held, nothing posted. Create the invoices in M3 (the next run posts the settlement), or post "
    "these sales to a suspense account with `m3sync settle --missing-invoices suspense` "
    '(or [settlement] missing_invoices = "suspense" in config.toml)'
)


class _Money:
    """Exact sums of minor-unit columns as "12.34 USD"."""

    def __init__(self, decimals: int, currency: str) -> None:
        self.decimals, self.currency = decimals, currency

    def __call__(self, amounts: pd.Series) -> str:
        return f"{format_minor(exact_sum(amounts.to_numpy(dtype=np.int64)), self.decimals)} {self.currency}"


def _orders(orders: pd.DataFrame) -> str:
    """'3 orders (A, B, C)' or '12 orders (A, B, C, D, E and 7 more)'."""
    ids: Sequence[str] = sorted(orders["order_id"].tolist())
    shown = ", ".join(ids[:SHOWN_ORDERS])
    more = f" and {len(ids) - SHOWN_ORDERS} more" if len(ids) > SHOWN_ORDERS else ""
    return f"{len(ids)} order{'s' if len(ids) != 1 else ''} ({shown}{more})"


def _absent(mapping: GLMapping, categories: tuple[str, ...], option: str) -> str:
    missing = [c for c in categories if c not in mapping.categories]
    if not missing:
        return ""
    return (
        f"held: {option} needs the categor{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)} "
        f"in mapping {mapping.name} (the shipped presets have them)"
    )


def _account(mapping: GLMapping, category: str) -> str:
    return f"{category} {mapping.categories[category].account}"


def _receivable_lines(lines: pd.DataFrame, order_ids: pd.Series, *, cleared: bool = False) -> np.ndarray:
    """The sales lines of these orders that an M3 document would carry: not the withheld tax, nor
    the tax the profile booked to the facilitator clearing (``cleared``: those instead)."""
    of_orders = np.asarray(lines["order_id"].isin(order_ids), dtype=bool)
    not_withheld = ~withheld_tax_lines(lines)
    on_clearing = np.asarray(lines["category"] == FACILITATOR_CLEARING, dtype=bool)
    receivable: np.ndarray = sales_lines(lines) & of_orders & not_withheld & (on_clearing if cleared else ~on_clearing)
    return receivable


def _tax_lines(lines: pd.DataFrame) -> np.ndarray:
    """Lines whose description names a tax (Tax, ShippingTax, GiftWrapTax, TaxDiscount: VAT on a
    discount given back), in any of Amazon's spellings."""
    descriptions = lines["amount_description"].astype(str)
    distinct = descriptions.unique()
    taxed = {d for d in distinct if "TAX" in normalise_key(d)}
    return np.asarray(descriptions.isin(taxed), dtype=bool)
