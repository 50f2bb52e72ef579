"""The Exceptions sheet's rows: one per thing that needs a person, each with its next step.

Outcomes are built with the real pipeline (prepare, reconcile, the invoice policy, the
suggestions, ``decide_outcome``); the expected kinds, figures and places are worked out from
the lines and invoices below, not read from the program.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _settlement_builders import make_settlement

from anomaly import ANOMALY_COLUMNS, suggest_categories
from flows.settlement_steps import LedgerChoice, payment_note
from reconciliation.exceptions import (
    KIND_ANOMALY,
    KIND_CLEARING,
    KIND_DUPLICATE,
    KIND_FAILED,
    KIND_FILE,
    KIND_HELD,
    KIND_MISMATCH,
    KIND_MISSING_INVOICE,
    KIND_NONE,
    KIND_NOT_SETTLED,
    KIND_REFUND,
    KIND_UNMAPPED,
    exceptions,
    mapping_file_in_home,
)
from reconciliation.invoice_policy import InvoicePolicy
from reconciliation.ledger import PaymentAllocation
from reconciliation.mapping import load_mapping
from reconciliation.matching import INVOICE_COLUMNS, reconcile_orders
from reconciliation.outcome import PostedVoucherRef, PostingResult, RunOptions, SettlementOutcome, decide_outcome
from reconciliation.parse import SettlementFileError
from reconciliation.pipeline import prepare_settlement, with_invoice_policy
from reconciliation.workbook import write_workbook

TODAY = date(2024, 11, 30)
HELD_ID, POSTED_ID, DUPLICATE_ID, FAILED_ID = "20000000001", "20000000002", "20000000003", "20000000004"
MATCHED, MISMATCHED, REFUNDED, UNINVOICED = (f"111-0000000-000000{n}" for n in (1, 2, 3, 4))
OLD_INVOICE, RECENT_INVOICE = "111-0000000-0000005", "111-0000000-0000006"
FILE_ERROR = SettlementFileError("broken.tsv", 7, 15, "amount 'abc' is not a number", "amount")


def _invoices(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    """(Amazon order, gross minor, invoice date) -> M3 invoices; ORNO and IVNO from the order's last digit."""
    frame = pd.DataFrame(
        [(f"00001000{o[-2:]}", o, f"9000{o[-2:]}", pd.Timestamp(d), "USD", g, 0, g) for o, g, d in rows],
        columns=list(INVOICE_COLUMNS),
    )
    return frame.astype(INVOICE_COLUMNS)


def _held_outcome() -> SettlementOutcome:
    """Held by the mapping gate (MysteryFee) and the invoices gate (a refund without a credit
    note, an order without an invoice), with a mismatch, two invoices nobody paid and an anomaly."""
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 5000, "2024-10-20", MATCHED),
            ("Order", "ItemFees", "MysteryFee", -37, "2024-10-20", MATCHED),
            ("Order", "ItemPrice", "Principal", 3000, "2024-10-20", MISMATCHED),
            ("Refund", "ItemPrice", "Principal", -2000, "2024-10-20", REFUNDED),
            ("Order", "ItemPrice", "Principal", 1500, "2024-10-20", UNINVOICED),
        ],
        settlement_id=HELD_ID,
    )
    invoices = _invoices(
        [
            (MATCHED, 5000, "2024-10-20"),
            (MISMATCHED, 3100, "2024-10-20"),  # 1.00 more than settled
            (REFUNDED, 2000, "2024-10-01"),  # sold earlier; its refund has no credit note
            (OLD_INVOICE, 4000, "2024-10-30"),  # 31 days before TODAY: listed with N = 30
            (RECENT_INVOICE, 4400, "2024-11-01"),  # 29 days: not yet
        ]
    )
    mapping = load_mapping("invoice-clearing")
    prepared = prepare_settlement(settlement, mapping)
    reconciliation = reconcile_orders(prepared.settlement.lines, invoices, settlement_id=HELD_ID)
    prepared = with_invoice_policy(prepared, reconciliation, mapping, InvoicePolicy())
    anomalies = pd.DataFrame(
        [(MATCHED, "SKU-A", "fee_high", 0.9, ["commission 31% of principal"])], columns=list(ANOMALY_COLUMNS)
    )
    suggestions = tuple(s.reason() for s in suggest_categories(prepared.mapped.unmapped, mapping))
    return decide_outcome(
        settlement, prepared, reconciliation, None, RunOptions(), anomalies=anomalies, suggestions=suggestions
    )


def _posted(settlement_id: str, posting: PostingResult) -> SettlementOutcome:
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 10000, "2024-10-20", "111-0000000-0000007"),
            ("Order", "ItemFees", "Commission", -1500, "2024-10-20", "111-0000000-0000007"),
        ],
        settlement_id=settlement_id,
    )
    prepared = prepare_settlement(settlement, load_mapping("invoice-clearing"))
    assert not prepared.held, prepared.reasons
    return decide_outcome(settlement, prepared, None, posting, RunOptions())


# 100.00 moved off the receivable, 97.50 paid one invoice: 2.50 stays on the clearing account 1520.
CLEARING_NOTE = payment_note(
    PaymentAllocation((), 10000, 250, -1500, ("111-0000000-0000008",)),
    LedgerChoice("allocate", "M3 keeps the invoices open", "1510", "1520"),
    "USD",
)


@pytest.fixture(scope="module")
def run() -> list[SettlementOutcome]:
    ref = PostedVoucherRef(f"AMZ-{POSTED_ID}-202410", "AAA/2024/AZ/1", False)
    posted = _posted(POSTED_ID, PostingResult(posted=(ref,), notes=(CLEARING_NOTE,)))
    duplicate = _posted(DUPLICATE_ID, PostingResult(posted=(PostedVoucherRef("AMZ-X", "AAA/2024/AZ/2", True),)))
    failed = SettlementOutcome(
        make_settlement([("Order", "ItemPrice", "Principal", 100, "2024-10-20")], settlement_id=FAILED_ID),
        "failed",
        reasons=("unexpected error while posting: KeyError 'x'",),
    )
    return [_held_outcome(), posted, duplicate, failed]


@pytest.fixture(scope="module")
def rows(run, tmp_path_factory) -> pd.DataFrame:
    home = tmp_path_factory.mktemp("home")
    return exceptions(
        run,
        today=TODAY,
        mapping_file=mapping_file_in_home(home, load_mapping("invoice-clearing")),
        not_settled_after_days=30,
        file_errors=[FILE_ERROR],
    )


def _one(rows: pd.DataFrame, kind: str) -> pd.Series:
    chosen = rows[rows["kind"] == kind]
    assert len(chosen) == 1, (kind, chosen.to_dict("records"))
    return chosen.iloc[0]


def test_one_row_per_thing_that_needs_a_person(rows) -> None:
    assert sorted(rows["kind"]) == sorted(
        [
            KIND_HELD,  # the mapping gate
            KIND_HELD,  # the invoices gate: the order without an invoice
            KIND_HELD,  # the invoices gate: the refund without a credit note
            KIND_UNMAPPED,
            KIND_MISMATCH,
            KIND_REFUND,
            KIND_MISSING_INVOICE,
            KIND_NOT_SETTLED,
            KIND_ANOMALY,
            KIND_CLEARING,
            KIND_DUPLICATE,
            KIND_FAILED,
            KIND_FILE,
        ]
    )
    by_kind = dict(zip(rows["kind"], rows["settlement_id"]))
    assert by_kind[KIND_CLEARING] == POSTED_ID and by_kind[KIND_DUPLICATE] == DUPLICATE_ID
    assert by_kind[KIND_FAILED] == FAILED_ID and by_kind[KIND_FILE] == ""
    assert set(rows.loc[rows["kind"] == KIND_HELD, "reference"]) == {
        "held: fee types without a GL rule",
        "held: orders M3 has no invoice or credit note for",
    }
    # In words: no internal name (category, status, snake_case) in a kind, a reference or a next step;
    # only the rule to paste into the mapping file spells the mapping's own keys.
    pasted = rows["kind"] == KIND_UNMAPPED
    for column in ("kind", "reference", "next_step"):
        for text in rows.loc[~pasted, column] if column == "next_step" else rows[column]:
            assert "_" not in text, (column, text)


def test_figures_and_where_each_next_step_is_taken(rows, tmp_path_factory) -> None:
    mismatch = _one(rows, KIND_MISMATCH)
    assert mismatch["reference"] == MISMATCHED and mismatch["amount_minor"] == -100
    assert "settled 30.00 USD, invoiced 31.00 USD" in mismatch["what"]
    assert "difference -1.00 USD, beyond the tolerance of 0.01" in mismatch["what"]
    assert "OIS350" in mismatch["next_step"] and "OIS100" in mismatch["next_step"]

    refund = _one(rows, KIND_REFUND)
    assert (refund["reference"], refund["amount_minor"]) == (REFUNDED, -2000)
    assert "refunded 20.00 USD" in refund["what"] and "credit note in M3 (OIS100" in refund["next_step"]
    uninvoiced = _one(rows, KIND_MISSING_INVOICE)
    assert (uninvoiced["reference"], uninvoiced["amount_minor"]) == (UNINVOICED, 1500)
    assert "invoice in M3 (OIS100" in uninvoiced["next_step"]

    unmapped = _one(rows, KIND_UNMAPPED)
    assert unmapped["reference"] == "Order / ItemFees / MysteryFee"
    assert (unmapped["what"], unmapped["amount_minor"]) == ("1 line(s), total -0.37 USD", -37)
    assert unmapped["next_step"].startswith("Add this rule under rules: in ")
    assert "(looks like " in unmapped["next_step"]  # the suggestion's category, confidence and nearest name
    assert (
        "- {transaction_type: Order, amount_type: ItemFees, amount_description: MysteryFee, category: "
        in (unmapped["next_step"])
    )
    held_mapping = rows[rows["reference"] == "held: fee types without a GL rule"].iloc[0]
    for step in (unmapped["next_step"], held_mapping["next_step"]):
        assert "/mappings/invoice-clearing.yaml (copy the shipped preset" in step

    not_settled = _one(rows, KIND_NOT_SETTLED)
    assert (not_settled["reference"], not_settled["amount_minor"]) == (OLD_INVOICE, 4000)
    assert "dated 2024-10-30, 31 days ago (more than 30)" in not_settled["what"]
    assert "Orders > Manage Orders" in not_settled["next_step"] and "ARS200" in not_settled["next_step"]

    anomaly = _one(rows, KIND_ANOMALY)
    assert anomaly["reference"] == f"{MATCHED} / SKU-A"
    assert anomaly["what"] == "fee high, score 0.90: commission 31% of principal"
    assert "Seller Central" in anomaly["next_step"]

    clearing = _one(rows, KIND_CLEARING)
    assert "2.50 USD of the receivable found no invoice and stays on clearing account 1520" in clearing["what"]
    assert "ARS200" in clearing["next_step"] and "GLS120" in clearing["next_step"]
    assert "AAA/2024/AZ/2" in _one(rows, KIND_DUPLICATE)["what"] and "GLS120" in _one(rows, KIND_DUPLICATE)["next_step"]
    assert "KeyError" in _one(rows, KIND_FAILED)["what"]
    file_error = _one(rows, KIND_FILE)
    assert (file_error["reference"], file_error["what"]) == (
        "broken.tsv",
        "line 7, column 15 (amount): amount 'abc' is not a number",
    )
    assert "Payments > All statements" in file_error["next_step"]


def test_not_settled_after_n_days(run) -> None:
    def listed(days: int) -> set[str]:
        found = exceptions(run[:1], today=TODAY, not_settled_after_days=days)
        return set(found.loc[found["kind"] == KIND_NOT_SETTLED, "reference"])

    assert listed(30) == {OLD_INVOICE}  # 31 days old; the one of 29 days waits
    assert listed(28) == {OLD_INVOICE, RECENT_INVOICE}
    assert listed(31) == set()


def test_orders_posted_elsewhere_by_choice_say_what_is_left_to_do() -> None:
    settlement = make_settlement(
        [
            ("Refund", "ItemPrice", "Principal", -2000, "2024-10-20", REFUNDED),
            ("Order", "ItemPrice", "Principal", 1500, "2024-10-20", UNINVOICED),
        ]
    )
    mapping = load_mapping("invoice-clearing")
    prepared = prepare_settlement(settlement, mapping)
    reconciliation = reconcile_orders(prepared.settlement.lines, _invoices([(REFUNDED, 2000, "2024-10-01")]))
    chosen = InvoicePolicy(refunds_without_credit="returns", missing_invoices="suspense")
    prepared = with_invoice_policy(prepared, reconciliation, mapping, chosen)
    assert not prepared.held, prepared.reasons
    outcome = decide_outcome(settlement, prepared, reconciliation, None, RunOptions(dry_run=True))
    found = exceptions([outcome], today=TODAY)
    assert sorted(found["kind"]) == sorted([KIND_REFUND, KIND_MISSING_INVOICE])
    assert "Reports > Fulfillment" in _one(found, KIND_REFUND)["next_step"]
    assert "suspense" in _one(found, KIND_MISSING_INVOICE)["next_step"]
    assert "GLS120" in _one(found, KIND_MISSING_INVOICE)["next_step"]


def test_the_mapping_file_is_the_one_in_use(tmp_path: Path) -> None:
    shipped = load_mapping("invoice-clearing")
    assert mapping_file_in_home(tmp_path, shipped).startswith(f"{tmp_path / 'mappings' / 'invoice-clearing.yaml'} (")
    (tmp_path / "mappings").mkdir()
    own = tmp_path / "mappings" / "invoice-clearing.yaml"
    shutil.copy(Path(__file__).parents[1] / "reconciliation" / "mappings" / "invoice-clearing.yaml", own)
    assert mapping_file_in_home(tmp_path, load_mapping("invoice-clearing", home=tmp_path)) == str(own)


def test_an_empty_run_says_there_are_none() -> None:
    found = exceptions([], today=TODAY)
    assert found[["kind", "what"]].to_dict("records") == [
        {"kind": KIND_NONE, "what": "Nothing in this run needs a person."}
    ]


def test_the_sheet_shows_the_rows(run, tmp_path: Path) -> None:
    path = write_workbook(
        run,
        tmp_path / "run.xlsx",
        generated_at=datetime(2024, 11, 30, 9, tzinfo=UTC),
        mapping_file="/srv/m3sync/mappings/invoice-clearing.yaml",
    ).path
    sheet = openpyxl.load_workbook(path)["Exceptions"]
    header = [c.value for c in sheet[1]]
    assert header == ["Settlement ID", "Kind", "Order, fee type or file", "What", "Amount", "Currency", "Next step"]
    table = [dict(zip(header, (c.value for c in row))) for row in sheet.iter_rows(min_row=2)]
    assert len(table) == 12  # the rows above without the file error
    [unmapped] = [r for r in table if r["Kind"] == KIND_UNMAPPED]
    assert unmapped["Amount"] == -0.37 and unmapped["Currency"] == "USD"
    assert "/srv/m3sync/mappings/invoice-clearing.yaml" in unmapped["Next step"]
    [not_settled] = [r for r in table if r["Kind"] == KIND_NOT_SETTLED]  # 31 days before the day it was written
    assert not_settled["Order, fee type or file"] == OLD_INVOICE and not_settled["Settlement ID"] == HELD_ID


def test_the_settle_option_takes_whole_days_of_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["settle", "a.tsv", "--not-settled-after", "45"]).not_settled_after == 45
    assert parser.parse_args(["settle", "a.tsv"]).not_settled_after is None  # config.toml's, else 30
    for bad in ("0", "-1", "2.5", "soon"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["settle", "a.tsv", "--not-settled-after", bad])
        assert exited.value.code == 2
        assert f"must be a whole number of days, at least 1, got '{bad}'" in capsys.readouterr().err
