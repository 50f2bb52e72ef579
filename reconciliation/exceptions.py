"""What in a settlement run needs a person, one row each, with the next step and where to take it.

``exceptions`` is pure: the workbook's Exceptions sheet writes its rows, and tests read them
without a workbook. A row says which settlement, what kind of thing (in words), the figures,
and what to do next: the M3 program (OIS100 for a customer order, credit note or invoice,
OIS350 to see the invoice, ARS200 for the customer ledger, GLS120 for a voucher), the Seller
Central page, or the GL mapping file to add a rule to.

Rows, per settlement in the run's order:

- a held settlement: one row per gate that held it (which gate, its reason with the figures),
  and one per other reason it was held for (M3 refused or was unreachable, ``--strict``, ...);
- a fee type without a GL rule: the suggested rule and the mapping file to put it in;
- an order whose amount differs from its M3 invoice beyond the tolerance;
- a refund without a credit note, an order without an M3 invoice: held, or posted elsewhere
  by the accountant's choice (``invoice_policy``);
- an invoice no settlement paid more than ``not_settled_after_days`` after its date;
- an item the anomaly model flagged (the outcome keeps only those at or above the threshold);
- a settlement already posted (skipped as a duplicate), one that failed;
- an amount left on the customer ledger's payment clearing account;

and a file that could not be read. When there is nothing, one row says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from reconciliation.gates import GATE_BALANCE, GATE_MAPPING, GATE_PERIOD, GATE_SUM, GateFailure
from reconciliation.invoice_policy import GATE_INVOICES, RETURNS_CHOSEN, SUSPENSE_CHOSEN
from reconciliation.mapping import GLMapping
from reconciliation.matching import listed_once
from reconciliation.model import format_amount
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError
from reconciliation.pipeline import GATE_MARKETPLACE

DEFAULT_NOT_SETTLED_AFTER_DAYS = 30

# Kinds, in the words the sheet shows.
KIND_HELD = "Settlement held"
KIND_UNMAPPED = "Fee type without a GL rule"
KIND_MISMATCH = "Amount differs from the M3 invoice"
KIND_REFUND = "Refund without a credit note"
KIND_MISSING_INVOICE = "Order without an M3 invoice"
KIND_NOT_SETTLED = "Invoice not settled"
KIND_ANOMALY = "Unusual item (anomaly)"
KIND_DUPLICATE = "Already posted (skipped)"
KIND_FAILED = "Failed"
KIND_CLEARING = "Left on the payment clearing account"
KIND_FILE = "File could not be read"
KIND_NONE = "No exceptions"

EXCEPTION_COLUMNS: dict[str, str] = {
    "settlement_id": "str",
    "kind": "str",
    "reference": "str",  # the order, fee type or file the row is about
    "what": "str",  # the figures
    "amount_minor": "Int64",  # in the settlement's currency; empty when the row has no one amount
    "currency": "str",
    "next_step": "str",
}

_RERUN = "then run m3sync settle again (held settlements are retried; nothing is posted twice)"
_GATE_WORDS = {
    GATE_SUM: "the lines do not add up to Amazon's total",
    GATE_MAPPING: "fee types without a GL rule",
    GATE_BALANCE: "a voucher would not balance",
    GATE_PERIOD: "the accounting period is closed in M3",
    GATE_INVOICES: "orders M3 has no invoice or credit note for",
    GATE_MARKETPLACE: "the marketplace is not known",
}
_STATEMENTS = "Seller Central, Payments > All statements"
_ORDER_PAGES = "Seller Central, Orders > Manage Orders and Payments > Transaction view"
# How the customer ledger's note says an amount stayed on (or waits on) the clearing account.
_ON_CLEARING = ("stays on clearing account", "waits on clearing account")
_LEDGER_NOTE = "customer ledger ("
_UNMAPPED_REASON = "unmapped "  # anomaly.suggestions.Suggestion.reason: "unmapped A / B / C: looks like ..."
_ADD = "; to map it add "


def mapping_file_in_home(home: Path, mapping: GLMapping) -> str:
    """Where a rule for an unmapped fee type goes: the mapping file in use, in words.

    A mapping read from ``HOME/mappings/`` or given as a file is that file; a shipped preset is
    used until a copy exists at ``HOME/mappings/<name>.yaml`` (``load_mapping``), so the copy
    is made first."""
    if mapping.source.startswith("mappings/"):
        return str(Path(home) / mapping.source)
    if mapping.source.startswith("reconciliation/mappings/"):
        target = Path(home) / "mappings" / f"{mapping.name}.yaml"
        return f"{target} (copy the shipped preset {mapping.source} there first)"
    return mapping.source


def exceptions(
    outcomes: Sequence[SettlementOutcome],
    *,
    today: date,
    mapping_file: str = "",
    not_settled_after_days: int = DEFAULT_NOT_SETTLED_AFTER_DAYS,
    file_errors: Sequence[SettlementFileError] = (),
) -> pd.DataFrame:
    """One row per thing in the run that needs a person (``EXCEPTION_COLUMNS``).

    ``mapping_file``: where rules for unmapped fee types go (``mapping_file_in_home``; empty:
    "your mapping file under HOME/mappings/"). An invoice is listed as not settled when no
    settlement paid it and it is more than ``not_settled_after_days`` days older than ``today``."""
    if not_settled_after_days < 0:
        raise ValueError(f"not_settled_after_days must not be negative, got {not_settled_after_days}")
    where = mapping_file or "your mapping file under HOME/mappings/ (copy a preset there first)"
    rows: list[dict[str, object]] = []
    for outcome in outcomes:
        rows += _settlement_rows(outcome, where)
    rows += _not_settled_rows(outcomes, today, not_settled_after_days)
    rows += [_file_error_row(error) for error in file_errors]
    if not rows:
        rows = [{"kind": KIND_NONE, "what": "Nothing in this run needs a person."}]
    frame = pd.DataFrame(rows, columns=list(EXCEPTION_COLUMNS))
    frame = frame.assign(amount_minor=pd.array(frame["amount_minor"], dtype="Int64"))
    text = [c for c, kind in EXCEPTION_COLUMNS.items() if kind == "str"]
    return frame.assign(**{c: frame[c].fillna("").astype("str") for c in text})


def run_orders(outcomes: Sequence[SettlementOutcome]) -> pd.DataFrame | None:
    """The run's reconciliation rows, oldest settlement first, each invoice no settlement settled
    listed once (``listed_once``), with the settlement, its currency and decimals and the
    tolerance; None when no settlement was reconciled."""
    chronological = sorted(outcomes, key=lambda o: (o.settlement.end, o.settlement.settlement_id))
    parts = [
        o.reconciliation.orders.assign(
            settlement_id=o.settlement.settlement_id,
            currency=o.settlement.currency,
            decimals=o.settlement.decimals,
            tolerance_minor=o.reconciliation.tolerance_minor,
        )
        for o in chronological
        if o.reconciliation is not None
    ]
    return listed_once(pd.concat(parts, ignore_index=True)) if parts else None


def _settlement_rows(outcome: SettlementOutcome, mapping_file: str) -> list[dict[str, object]]:
    settlement = outcome.settlement
    currency = settlement.currency
    base: dict[str, object] = {"settlement_id": settlement.settlement_id, "currency": currency}
    failures = outcome.gates.failures if outcome.gates is not None else ()
    gate_texts = {f.reason for f in failures} | {str(f) for f in failures}
    suggestions = [r for r in outcome.reasons if r.startswith(_UNMAPPED_REASON)]
    clearing = [r for r in outcome.reasons if r.startswith(_LEDGER_NOTE) and any(s in r for s in _ON_CLEARING)]
    rows: list[dict[str, object]] = []
    if outcome.status == "held":
        rows += [{**base, **_gate_row(failure, settlement.total_minor, mapping_file)} for failure in failures]
        for reason in outcome.reasons:
            if reason in gate_texts or reason in suggestions or reason.startswith(_LEDGER_NOTE):
                continue
            rows.append({**base, "kind": KIND_HELD, "what": reason, "next_step": f"Do what the reason says, {_RERUN}."})
    elif outcome.status == "duplicate":
        rows.append(
            {
                **base,
                "kind": KIND_DUPLICATE,
                "what": "; ".join(outcome.reasons) or "already posted to M3",
                "amount_minor": settlement.total_minor,
                "next_step": "Nothing to post. If this settlement was not expected again, look its vouchers "
                "up in M3 (GLS120) with the numbers given.",
            }
        )
    elif outcome.status == "failed":
        rows.append(
            {
                **base,
                "kind": KIND_FAILED,
                "what": "; ".join(outcome.reasons),
                "next_step": "Run m3sync settle again (nothing is posted twice); if it fails again, pass the "
                "reason and the flow run's log (prefect flow-run logs ID) to whoever runs m3sync.",
            }
        )
    for combination in outcome.mapped.unmapped if outcome.mapped is not None else ():
        named = " / ".join((combination.transaction_type, combination.amount_type, combination.amount_description))
        suggestion = next((s for s in suggestions if s.startswith(f"{_UNMAPPED_REASON}{named}:")), "")
        looks_like, _, rule = suggestion.partition(_ADD)
        step = (
            f"Add this rule under rules: in {mapping_file}: {rule} ({looks_like.partition(': ')[2]}); "
            f"check the category first, {_RERUN}."
            if rule
            else f"Add a rule for it under rules: in {mapping_file} (no category could be suggested: choose "
            f"one), {_RERUN}."
        )
        rows.append(
            {
                **base,
                "kind": KIND_UNMAPPED,
                "reference": named,
                "what": f"{combination.line_count} line(s), total {format_amount(combination.total_minor, currency)} "
                f"{currency}",
                "amount_minor": combination.total_minor,
                "next_step": step,
            }
        )
    rows += _order_rows(outcome, base)
    rows += _anomaly_rows(outcome, base)
    rows += [
        {
            **base,
            "kind": KIND_CLEARING,
            "what": note,
            "next_step": "Allocate the amount to the orders' invoices in M3's customer ledger (ARS200), or move it "
            "to where it belongs with a voucher (GLS120).",
        }
        for note in clearing
    ]
    return rows


def _gate_row(failure: GateFailure, total_minor: int, mapping_file: str) -> dict[str, object]:
    steps = {
        GATE_SUM: f"Compare the settlement with {_STATEMENTS}; download its report again and settle that file. "
        "Nothing was posted.",
        GATE_MAPPING: f'Add a rule for each fee type listed as "{KIND_UNMAPPED}" to {mapping_file}, {_RERUN}. '
        "Nothing was posted.",
        GATE_BALANCE: f"Check the accounts and dimensions of the categories in {mapping_file}, {_RERUN}. "
        "Nothing was posted.",
        GATE_PERIOD: "Open the accounting period in M3 for the division, or run m3sync settle "
        "--first-open-period to post on the first day of the next open period. Nothing was posted.",
        GATE_INVOICES: f'Create the documents of the orders listed as "{KIND_REFUND}" or "{KIND_MISSING_INVOICE}" '
        f"in M3 (OIS100), {_RERUN}; or choose --refunds-without-credit returns / --missing-invoices suspense. "
        "Nothing was posted.",
    }
    gate = _GATE_WORDS.get(failure.gate, failure.gate.replace("_", " "))
    return {
        "kind": KIND_HELD,
        "reference": f"held: {gate}",
        "what": failure.reason,
        "amount_minor": total_minor if failure.gate == GATE_SUM else None,
        "next_step": steps.get(failure.gate, f"Do what the reason says, {_RERUN}. Nothing was posted."),
    }


def _order_rows(outcome: SettlementOutcome, base: dict[str, object]) -> list[dict[str, object]]:
    """Orders differing from M3 beyond the tolerance, and (when held or posted elsewhere by
    choice) refunds without a credit note and orders without an invoice."""
    if outcome.reconciliation is None:
        return []
    orders = outcome.reconciliation.orders
    currency = outcome.settlement.currency
    tolerance = format_amount(outcome.reconciliation.tolerance_minor, currency)
    held_by_invoices = outcome.status == "held" and any(
        f.gate == GATE_INVOICES for f in (outcome.gates.failures if outcome.gates is not None else ())
    )
    returns = any(r.endswith(RETURNS_CHOSEN) for r in outcome.reasons)
    suspense = any(r.endswith(SUSPENSE_CHOSEN) for r in outcome.reasons)
    rows: list[dict[str, object]] = []
    for order in orders[orders["category"] == "amount_mismatch"].itertuples(index=False):
        rows.append(
            {
                **base,
                "kind": KIND_MISMATCH,
                "reference": order.order_id,
                "what": f"settled {_money(order.settled_minor, currency)}, invoiced "
                f"{_money(order.invoiced_minor, currency)} (M3 invoice {order.invoices or '-'})"
                + (
                    f", refunded {_money(order.refunded_minor, currency)}, credited "
                    f"{_money(order.credited_minor, currency)}"
                    if order.refunded_minor or order.credited_minor
                    else ""
                )
                + f": difference {_money(order.difference_minor, currency)}, beyond the tolerance of {tolerance}",
                "amount_minor": order.difference_minor,
                "next_step": f"Compare the order in {_ORDER_PAGES} with its M3 invoice (OIS350); correct M3 with a "
                "credit note or an additional invoice (OIS100), or settle the difference in the customer ledger "
                "(ARS200).",
            }
        )
    if held_by_invoices or returns:
        step = (
            "Posted as a sales return by choice (returns): no credit note is needed in M3; check the return in "
            "Seller Central, Reports > Fulfillment > Customer returns."
            if returns and not held_by_invoices
            else "Create the credit note in M3 (OIS100: a return of the customer order, invoiced; it then shows "
            f"in OIS350), {_RERUN}."
        )
        for order in orders[orders["category"] == "refund_without_credit"].itertuples(index=False):
            rows.append(
                {
                    **base,
                    "kind": KIND_REFUND,
                    "reference": order.order_id,
                    "what": f"refunded {_money(-order.refunded_minor, currency)}; M3 has no credit note "
                    f"(M3 order {order.m3_orders or '-'})",
                    "amount_minor": order.refunded_minor,
                    "next_step": step,
                }
            )
    if held_by_invoices or suspense:
        step = (
            "Posted to the missing-invoice suspense account by choice (suspense): create the invoice in M3 "
            "(OIS100), then clear the suspense account against the receivable with a voucher (GLS120)."
            if suspense and not held_by_invoices
            else f"Create the customer order and its invoice in M3 (OIS100; the invoice shows in OIS350), {_RERUN}."
        )
        for order in orders[orders["category"] == "missing_in_m3"].itertuples(index=False):
            rows.append(
                {
                    **base,
                    "kind": KIND_MISSING_INVOICE,
                    "reference": order.order_id,
                    "what": f"sold {_money(order.settled_minor, currency)}; M3 has no invoice for the order",
                    "amount_minor": order.settled_minor,
                    "next_step": step,
                }
            )
    return rows


def _not_settled_rows(outcomes: Sequence[SettlementOutcome], today: date, after_days: int) -> list[dict[str, object]]:
    """Invoices no settlement of the run (nor any recorded earlier) paid, older than ``after_days``:
    listed once for the run, under the first settlement that lists them."""
    orders = run_orders(outcomes)
    if orders is None:
        return []
    waiting = orders[(orders["category"] == "not_settled") & orders["invoice_date"].notna()]
    age = (pd.Timestamp(today) - waiting["invoice_date"].astype("datetime64[us]").dt.normalize()).dt.days
    waiting = waiting.assign(age=age)[(age > after_days).to_numpy(dtype=bool)]
    rows: list[dict[str, object]] = []
    for order in waiting.itertuples(index=False):
        currency = str(order.currency)
        dated = pd.Timestamp(order.invoice_date).date().isoformat()
        rows.append(
            {
                "settlement_id": order.settlement_id,
                "currency": currency,
                "kind": KIND_NOT_SETTLED,
                "reference": order.order_id,
                "what": f"M3 invoice {order.invoices or '-'} (order {order.m3_orders or '-'}) of "
                f"{_money(order.invoiced_minor, currency)} dated {dated}, {int(order.age)} days ago (more than "
                f"{after_days}); no settlement has paid it",
                "amount_minor": order.invoiced_minor,
                "next_step": f"Look the order up in {_ORDER_PAGES}: if it was cancelled or refunded, credit the "
                "invoice in M3 (OIS100 credit note; the invoice in OIS350); if Amazon has not paid it, ask Seller "
                "Support. Meanwhile it stays open in the customer ledger (ARS200).",
            }
        )
    return rows


def _anomaly_rows(outcome: SettlementOutcome, base: dict[str, object]) -> list[dict[str, object]]:
    anomalies = outcome.anomalies
    if anomalies is None or anomalies.empty:
        return []
    rows: list[dict[str, object]] = []
    for item in anomalies.itertuples(index=False):
        reasons = item.reasons
        if isinstance(reasons, (list, tuple, np.ndarray)):
            reasons = "; ".join(str(r) for r in reasons)
        reference = " / ".join(str(v) for v in (item.order_id, item.sku) if isinstance(v, str) and v)
        rows.append(
            {
                **base,
                "kind": KIND_ANOMALY,
                "reference": reference or str(item.kind).replace("_", " "),
                "what": f"{str(item.kind).replace('_', ' ')}, score {float(item.score):.2f}: {reasons or ''}",
                "next_step": f"Check it in {_ORDER_PAGES} (fees and refunds of the order) or Reports > "
                "Fulfillment (inventory and reimbursements); if Amazon charged or paid wrongly, open a case "
                "with Seller Support.",
            }
        )
    return rows


def _file_error_row(error: SettlementFileError) -> dict[str, object]:
    column = error.column_name or ""
    if error.column is not None:
        column = f"{error.column} ({error.column_name})" if error.column_name else str(error.column)
    place = ", ".join(
        p for p in (f"line {error.line}" if error.line is not None else "", f"column {column}" if column else "") if p
    )
    return {
        "kind": KIND_FILE,
        "reference": error.source,
        "what": f"{place}: {error.message}" if place else error.message,
        "next_step": f"Download the settlement's report again from {_STATEMENTS} and settle that file; "
        "nothing of this file was posted, and the file was not changed.",
    }


def _money(minor: int, currency: str) -> str:
    return f"{format_amount(int(minor), currency)} {currency}"
