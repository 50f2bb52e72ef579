"""M3's customer ledger: which set-up a tenant has, and customer payments that settle invoices.

Transactions (docs/m3-contract.md "Customer ledger"): ``MRS001MI/LstTransactions`` (does the
tenant offer ``ARS040MI``), ``ARS200MI/LstInvByDivi`` (the customer ledger's items),
``ARS040MI/AddBatchHead``, ``AddBatchLine``, ``AddBatchCharge`` (the payment differences written
off), ``ControlBatch`` (one payment batch per posting key).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal

from connectors.m3.client import FieldValue
from connectors.m3.errors import M3Error, M3TransactionError, M3Unavailable, M3WriteInDoubt
from connectors.m3.operations import M3Operations, held_key_lock, refused_before_sending
from connectors.m3.records import PostedVoucher, m3_int, m3_text

log = logging.getLogger(__name__)

LedgerMode = Literal["allocate", "gl-clearing"]
PAYMENT_TRANSACTIONS = frozenset({"AddBatchHead", "AddBatchLine", "ControlBatch"})
BATCH_PAYMENT_TYPE = "1"  # ARS040MI BOPE [ours: the sandbox accepts any; a tenant's own payment type]
# ARS040MI CHRI of the batch's payment-difference charge [ours: a tenant names its own charge];
# one charge per batch, so M3 refuses a second one and a resumed batch never writes off twice
WRITE_OFF_CHARGE = "PAYDIFF"
SETTLED = "9"  # ARS200MI RECO "9=payed"
LEDGER_SAMPLE = 500  # ledger items read to tell the set-up: the most recent invoices say it
NOT_FOUND = "TransactionNotFound"


@dataclass(frozen=True)
class LedgerSetup:
    """How the Amazon customers' invoices are settled: ``allocate`` (open items in M3's customer
    ledger, paid by ARS040MI batches) or ``gl-clearing`` (the GL voucher alone is right)."""

    mode: LedgerMode
    reason: str


@dataclass(frozen=True)
class PaymentLine:
    customer: str  # CUNO
    invoice: str  # CINO, the ledger's invoice number (M3's extended invoice number)
    year: int  # INYR
    amount: Decimal  # paid on the invoice; negative for a credit note
    write_off: Decimal = Decimal(0)  # the invoice's payment difference written off (the line settles both)


@dataclass(frozen=True)
class CustomerPayment:
    """One ARS040MI batch: the settlement paying its invoices, in the invoices' currency.
    ``clearing`` is the accounting string (AIT1..AIT7) the payment debits, which the settlement's
    voucher credits; ``rate`` the exchange rate into the division's local currency sent as each
    line's ARAT (None: M3's own rate for the accounting date; ARS040MI takes no rate type).
    ``write_off_account`` is the accounting string the lines' write-offs are booked to (the
    batch's charge): the payment's debit is what Amazon paid, the receivable credit each
    invoice in full."""

    key: str
    divi: str
    accounting_date: date
    currency: str
    clearing: tuple[str, ...]
    lines: tuple[PaymentLine, ...]
    rate: Decimal | None = None
    write_off_account: tuple[str, ...] = ()

    @property
    def written_off(self) -> Decimal:
        return sum((line.write_off for line in self.lines), Decimal(0))


def payment_batch_id(key: str) -> int:
    """PBID (N10) of a posting key: the same key always gives the same batch, so M3 refuses a
    second one (an earlier attempt's batch is finished, never replaced)."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % (10**10 - 1) + 1


def detect_setup(m3: M3Operations, customers: Collection[str] = (), *, divi: str | None = None) -> LedgerSetup:
    """Which set-up the tenant has, from harmless reads: the transactions it offers and the
    Amazon customers' (``customers``; all when empty) ledger items."""
    divi = divi or m3.divi
    try:
        offered = {m3_text(r, "TRNM") for r in m3.client.execute("MRS001MI", "LstTransactions", {"MINM": "ARS040MI"})}
    except M3TransactionError as exc:
        return LedgerSetup("gl-clearing", f"M3 offers no customer payment transactions (ARS040MI: {exc.message})")
    if not PAYMENT_TRANSACTIONS <= offered:
        missing = ", ".join(sorted(PAYMENT_TRANSACTIONS - offered))
        return LedgerSetup("gl-clearing", f"M3 offers no customer payment transactions (ARS040MI lacks {missing})")
    try:
        items = m3.client.execute(
            "ARS200MI", "LstInvByDivi", {"FDIV": divi, "TDIV": divi}, maxrecs=LEDGER_SAMPLE, idempotent=True
        )
    except M3TransactionError as exc:
        return LedgerSetup("gl-clearing", f"M3 offers no customer ledger reads (ARS200MI: {exc.message})")
    items = [r for r in items if not customers or m3_text(r, "CUNO") in customers]
    if not items:
        return LedgerSetup("gl-clearing", "no Amazon customer invoice in M3's customer ledger: nothing there to settle")
    if all(m3_text(r, "RECO") == SETTLED and m3_text(r, "REDE") == m3_text(r, "IVDT") for r in items):
        return LedgerSetup(
            "gl-clearing",
            "the Amazon customers' invoices are settled when invoiced (posted to a GL clearing account)",
        )
    return LedgerSetup(
        "allocate", "the Amazon customers' invoices stay open in M3's customer ledger (ARS040MI pays them)"
    )


def pay_invoices(m3: M3Operations, payment: CustomerPayment) -> PostedVoucher:
    """Post ``payment`` exactly once as ARS040MI batch ``payment_batch_id(key)``: head, lines,
    control (which books it); each step tolerates an earlier attempt having done it. A lost
    answer resumes the same batch at once. Returns the payment's voucher (``already_posted``
    when an earlier attempt had booked it)."""
    with held_key_lock(m3, payment.divi, payment.key):
        try:
            return _post_batch(m3, payment)
        except M3Unavailable as exc:
            if isinstance(exc, M3WriteInDoubt) or not refused_before_sending(exc):
                log.warning(
                    "payment %s: %s; resuming payment batch %s", payment.key, exc, payment_batch_id(payment.key)
                )
                return _post_batch(m3, payment)  # M3 refuses a second head and every line already added
            raise


def _post_batch(m3: M3Operations, payment: CustomerPayment) -> PostedVoucher:
    base: dict[str, FieldValue | None] = {"DIVI": payment.divi, "PBID": payment_batch_id(payment.key)}
    try:
        m3.client.execute(
            "ARS040MI", "AddBatchHead", {**base, "BOPE": BATCH_PAYMENT_TYPE, "ACDT": payment.accounting_date}
        )
    except M3TransactionError as exc:
        if exc.code != "XRE0104":
            raise
        log.info("payment batch %s exists (an earlier attempt opened it): finishing it", base["PBID"])
    lines = [
        (
            "AddBatchLine",
            {
                **base,
                "TRNO": n,
                "CUNO": line.customer,
                "CINO": line.invoice,
                "INYR": line.year,
                "PYAM": line.amount + line.write_off,  # the invoice in full where a difference is written off
                "CUCD": payment.currency,
                "ARAT": payment.rate,
                **{f"AIT{i}": dim for i, dim in enumerate(payment.clearing, start=1) if dim},
            },
        )
        for n, line in enumerate(payment.lines, start=1)
    ]
    booked_before = False
    for result in m3.client.execute_bulk("ARS040MI", lines):
        if result.error is None:
            continue
        if result.error.code != "XRE0104":
            raise result.error
        booked_before = booked_before or result.error.field == "PBID"  # the batch is updated already
    if payment.written_off and not booked_before:
        _add_write_off(m3, payment, base)
    records = m3.client.execute("ARS040MI", "ControlBatch", base, idempotent=True)
    head = records[0] if records else {}
    if not m3_text(head, "VONO"):
        raise M3Error(f"ARS040MI/ControlBatch: payment batch {base['PBID']} booked no voucher")
    voucher = m3.read_voucher(payment.divi, m3_int(head, "YEA4"), m3_text(head, "VONO"))
    return replace(voucher, key=payment.key, already_posted=booked_before)


def _add_write_off(m3: M3Operations, payment: CustomerPayment, base: dict[str, FieldValue | None]) -> None:
    """The batch's payment differences as one charge on ``payment.write_off_account`` (positive:
    paid short, a debit): M3 refuses a second charge of the batch, so a resumed batch skips it."""
    if not payment.write_off_account:
        raise M3Error(f"payment {payment.key}: a write-off needs an account (mapping category payment_differences)")
    try:
        m3.client.execute(
            "ARS040MI",
            "AddBatchCharge",
            {
                **base,
                "CHRI": WRITE_OFF_CHARGE,
                "CHAM": payment.written_off,
                "CUCD": payment.currency,
                "ARAT": payment.rate,
                **{f"AIT{i}": dim for i, dim in enumerate(payment.write_off_account, start=1) if dim},
            },
        )
    except M3TransactionError as exc:
        if exc.code != "XRE0104":
            raise
        log.info("payment batch %s already has its write-off (an earlier attempt added it)", base["PBID"])
