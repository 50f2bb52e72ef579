"""The settlement as a customer payment: which M3 invoice each receivable amount settles.

Pure. In the ``allocate`` set-up (M3's customer ledger keeps the Amazon invoices open) the
settlement's receivable lines go to a payment clearing account instead of the receivable, and a
customer payment (ARS040MI) credits the receivable invoice by invoice and debits that clearing
account: the GL receivable and the customer ledger move together, once. What no invoice takes
stays on the clearing account, named. Amazon's fees are the payment's deductions: the
settlement pays the invoices' amounts less its fees (the deposit), booked by the voucher.

Amazon computes VAT per item, M3 per invoice, so an invoice is often paid a few cents off its
amount. Within a limit (``[m3] payment_write_off``) the payment pays the invoice in full and
writes the difference off to the ``payment_differences`` category, as an accountant would when
entering the payment; a larger difference (a short payment) stays open on the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd

from reconciliation.m3_fields import MAX_VOUCHER_LINES
from reconciliation.model import exact_sum
from reconciliation.vouchers import Voucher, key_at_version

# Invoices per payment batch: its voucher has a line per invoice and the clearing line, and no
# voucher has more than MAX_VOUCHER_LINES.
MAX_PAYMENT_LINES = MAX_VOUCHER_LINES - 1

# The mapping category payment differences are written off to (an invoice paid a few cents off).
WRITE_OFF_CATEGORY = "payment_differences"

# Columns of the reconciliation's invoice frame the ledger needs besides matching's.
LEDGER_INVOICE_COLUMNS: dict[str, str] = {
    "cuno": "str",  # the invoice's customer (AMZUS, ...)
    "cino": "str",  # the ledger's invoice number (M3's extended invoice number)
    "year": "int64",  # the invoice year (INYR)
}


@dataclass(frozen=True)
class InvoiceAllocation:
    order_id: str
    customer: str
    invoice: str  # CINO
    year: int
    amount_minor: int  # paid on the invoice; negative on a credit note
    # written off on the invoice: its amount less all this settlement pays on it (0.02 when a
    # 100.00 invoice is paid 99.98, -0.03 when overpaid 100.03), so the payment closes it
    write_off_minor: int = 0

    @property
    def settles_minor(self) -> int:
        """What the payment line settles on the invoice: the payment and the write-off."""
        return self.amount_minor + self.write_off_minor


@dataclass(frozen=True)
class PaymentAllocation:
    """What the settlement pays in the customer ledger. ``receivable_minor`` is what its vouchers
    move off the receivable (now onto the clearing account); ``unallocated_minor`` the part no
    invoice takes; ``deductions_minor`` the rest of the settlement (fees, reserves, ...), so
    ``receivable_minor + deductions_minor`` is the deposit."""

    allocations: tuple[InvoiceAllocation, ...]
    receivable_minor: int
    unallocated_minor: int
    deductions_minor: int
    unallocated_orders: tuple[str, ...] = ()

    @property
    def allocated_minor(self) -> int:
        return sum(a.amount_minor for a in self.allocations)

    @property
    def written_off_minor(self) -> int:
        """The payment differences written off (positive: paid short, a loss)."""
        return sum(a.write_off_minor for a in self.allocations)

    @property
    def written_off_invoices(self) -> int:
        return sum(1 for a in self.allocations if a.write_off_minor)


def allocate_payment(
    mapped_lines: pd.DataFrame,
    invoices: pd.DataFrame,
    receivable_account: str,
    total_minor: int,
    write_off_limit_minor: int = 0,
) -> PaymentAllocation:
    """Per order, its receivable amounts (principal, shipping, tax, promotions; refunds apart)
    to the order's invoices (credit notes for refunds) oldest first, each up to its amount, the
    last taking the rest. ``mapped_lines`` carries ``order_id``, ``transaction_type``,
    ``amount_minor`` and ``account``; ``invoices`` matching's columns plus LEDGER_INVOICE_COLUMNS.
    An invoice paid within ``write_off_limit_minor`` of its amount (either way; 0: never) is paid
    in full, the difference written off (``with_write_offs``)."""
    receivable = mapped_lines[mapped_lines["account"] == receivable_account]
    receivable_minor = exact_sum(receivable["amount_minor"].to_numpy(dtype=np.int64))
    groups = (
        receivable[receivable["order_id"] != ""]
        .groupby(["order_id", "transaction_type"], sort=True)["amount_minor"]
        .sum()
    )
    # Each order's invoices oldest first, as plain tuples: one pass, not a DataFrame per order
    # (a settlement of 200k orders allocates in about a second).
    ordered = invoices[invoices["cino"] != ""].sort_values(["ivdt", "cino"], kind="stable")
    targets: dict[str, list[_Invoice]] = {}
    for row in zip(ordered["cuor"], ordered["gross_minor"], ordered["cuno"], ordered["cino"], ordered["year"]):
        targets.setdefault(str(row[0]), []).append(_Invoice(int(row[1]), str(row[2]), str(row[3]), int(row[4])))
    allocations: list[InvoiceAllocation] = []
    unallocated: list[str] = []
    for (order_id, _), amount in groups.items():
        amount = int(amount)
        if amount == 0:
            continue
        # invoices for a payment, credit notes for a refund
        candidates = [i for i in targets.get(str(order_id), ()) if (i.gross_minor > 0) == (amount > 0)]
        if not candidates:
            unallocated.append(str(order_id))
            continue
        allocations += _spread(str(order_id), amount, candidates)
    allocated = sum(a.amount_minor for a in allocations)
    return PaymentAllocation(
        allocations=with_write_offs(allocations, targets, write_off_limit_minor),
        receivable_minor=receivable_minor,
        unallocated_minor=receivable_minor - allocated,
        deductions_minor=total_minor - receivable_minor,
        unallocated_orders=tuple(sorted(set(unallocated))),
    )


def limit_in_minor_units(limit: Decimal, decimals: int) -> int:
    """``limit`` in the currency's minor units, exact, rounded down: a limit finer than the
    currency's smallest unit writes off only whole units within it (JPY: 0.05 -> 0)."""
    return int(limit.scaleb(decimals).to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class _Invoice:
    gross_minor: int
    customer: str
    invoice: str
    year: int


def with_write_offs(
    allocations: list[InvoiceAllocation], invoices: dict[str, list[_Invoice]], limit_minor: int
) -> tuple[InvoiceAllocation, ...]:
    """``allocations`` with each invoice's payment difference written off on its last allocation
    where it is non-zero and at most ``limit_minor`` either way: the invoice's amount less all
    the settlement pays on it (an order's sale and its adjustments may pay one invoice twice)."""
    if limit_minor <= 0:
        return tuple(allocations)
    amounts = {(i.customer, i.invoice, i.year): i.gross_minor for targets in invoices.values() for i in targets}
    paid: dict[tuple[str, str, int], int] = {}
    last: dict[tuple[str, str, int], int] = {}
    for n, a in enumerate(allocations):
        key = (a.customer, a.invoice, a.year)
        paid[key] = paid.get(key, 0) + a.amount_minor
        last[key] = n
    result = list(allocations)
    for key, n in last.items():
        difference = amounts[key] - paid[key]
        if difference and abs(difference) <= limit_minor:
            result[n] = replace(result[n], write_off_minor=difference)
    return tuple(result)


def _spread(order_id: str, amount: int, invoices: list[_Invoice]) -> list[InvoiceAllocation]:
    """``amount`` over ``invoices`` in order: each up to its gross, the last takes the rest."""
    result, left = [], amount
    for n, inv in enumerate(invoices):
        last = n == len(invoices) - 1
        take = left if last else (min(left, inv.gross_minor) if amount > 0 else max(left, inv.gross_minor))
        if take != 0:
            result.append(InvoiceAllocation(order_id, inv.customer, inv.invoice, inv.year, take))
        left -= take
    return result


def receivable_to_clearing(voucher: Voucher, receivable_account: str, clearing_account: str) -> Voucher:
    """``voucher`` with its receivable lines on the payment clearing account (same dimensions):
    the customer payment moves the receivable instead, invoice by invoice."""
    lines = tuple(
        replace(line, account=clearing_account) if line.account == receivable_account else line
        for line in voucher.lines
    )
    return replace(voucher, lines=lines)


def clearing_string(vouchers: tuple[Voucher, ...] | list[Voucher], clearing_account: str) -> tuple[str, ...]:
    """AIT1..AIT7 the payment debits: the clearing account with the dimensions the vouchers give it."""
    for voucher in vouchers:
        for line in voucher.lines:
            if line.account == clearing_account:
                return (clearing_account, *line.dimensions)
    return (clearing_account,)


def payment_batches(
    settlement_id: str, version: int, allocations: tuple[InvoiceAllocation, ...], limit: int = MAX_PAYMENT_LINES
) -> list[tuple[str, tuple[InvoiceAllocation, ...]]]:
    """(posting key, allocations) per payment batch of at most ``limit`` invoices: ``PAY-{id}``,
    or ``PAY-{id}-P1``, ``-P2`` … when one batch cannot take them all; at the vouchers' key version."""
    chunks = [allocations[i : i + limit] for i in range(0, len(allocations), limit)]
    return [
        (key_at_version(f"PAY-{settlement_id}" + (f"-P{n}" if len(chunks) > 1 else ""), version), chunk)
        for n, chunk in enumerate(chunks, start=1)
    ]
