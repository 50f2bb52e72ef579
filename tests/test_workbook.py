"""The accountants' workbook, read back with openpyxl (and its XML checked directly).

Inputs come from the real pipeline functions (parse, validate, map, gates, reconcile); the
expected figures are worked out by hand from the fixture file us_v2_usd.tsv.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pandas as pd
import pytest
from _settlement_builders import make_settlement

from anomaly import ANOMALY_COLUMNS
from anomaly.rules import ITEM_RULES
from reconciliation.gates import check_gates
from reconciliation.mapping import load_mapping
from reconciliation.matching import INVOICE_COLUMNS, reconcile_orders
from reconciliation.outcome import PostedVoucherRef, SettlementOutcome
from reconciliation.parse import SettlementFileError, parse_settlement_bytes, read_settlement_file
from reconciliation.schemas import validate_settlement
from reconciliation.workbook import (
    CHECKS_HEADERS,
    SHEET_NAMES,
    STATUS_WORDS,
    SUMMARY_HEADER_ROW,
    SUMMARY_HEADERS,
    WorkbookError,
    currency_number_format,
    write_workbook,
)
from reconciliation.workbook.common import ANOMALY_KIND_WORDS, SheetColumn, column_positions

FIXTURE_ID = "10000000001"
HELD_ID = "10000000002"
JPY_ID = "10000000003"
VOUCHER_KEY = f"AMZ-{FIXTURE_ID}-202410"
GENERATED = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
USD_FORMAT = '#,##0.00 "USD"'
JPY_FORMAT = '#,##0 "JPY"'


# --- inputs built with the real pipeline ---------------------------------------------------


def _settle(settlement, status: str = "posted", invoices: pd.DataFrame | None = None, **extra) -> SettlementOutcome:
    mapping = load_mapping("invoice-clearing")
    mapped = mapping.map_settlement(settlement)
    gates = check_gates(settlement, mapped, mapping)
    if gates.held:
        status = "held"
    posted = (
        tuple(PostedVoucherRef(v.key, f"AAA/2024/AZ/{n}", False) for n, v in enumerate(gates.vouchers, 1))
        if status == "posted"
        else ()
    )
    reconciliation = reconcile_orders(settlement.lines, invoices) if invoices is not None else None
    return SettlementOutcome(
        settlement=settlement,
        status=status,
        reasons=tuple(gates.reasons),
        validation=validate_settlement(settlement),
        mapped=mapped,
        gates=gates,
        vouchers=gates.vouchers,
        posted=posted,
        reconciliation=reconciliation,
        **extra,
    )


def _invoices(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["orno", "cuor", "ivno", "gross_minor"])
    frame = frame.assign(ivdt=pd.Timestamp("2024-10-21"), currency="USD", net_minor=frame["gross_minor"], tax_minor=0)
    return frame[list(INVOICE_COLUMNS)]


@pytest.fixture(scope="module")
def fixture_file(us_v2_tsv: Path) -> Path:
    return us_v2_tsv


@pytest.fixture(scope="module")
def fixture_settlement(fixture_file: Path):
    [settlement] = read_settlement_file(fixture_file).settlements
    return settlement


@pytest.fixture(scope="module")
def fixture_outcome(fixture_settlement) -> SettlementOutcome:
    # Sales per order from the file: 9000001 68.99 + 4.14 tax - 4.14 withheld = 68.99 (invoiced 68.99: matched);
    # 9000002 68.99 + 2.99 shipping - 2.99 promotion = 68.99 (invoiced 70.00: mismatch of -1.01);
    # 9000004 is a refund (-68.99) without a credit note.
    invoices = _invoices(
        [("0000100001", "111-0000000-9000001", "900001", 6899), ("0000100002", "114-0000000-9000002", "900002", 7000)]
    )
    anomalies = pd.DataFrame(
        [
            ("111-0000000-9000001", "DEMO-SKU-A", "fee", 0.2, ["commission 18% of principal"]),
            ("114-0000000-9000002", "DEMO-SKU-A", "fee", 0.9, ["commission 31% of principal", "SKU median 15%"]),
        ],
        columns=list(ANOMALY_COLUMNS),
    )
    return _settle(fixture_settlement, invoices=invoices, anomalies=anomalies)


@pytest.fixture(scope="module")
def held_outcome(fixture_settlement) -> SettlementOutcome:
    """The fixture under another id, with one DigitalServicesFee renamed to a fee no rule knows."""
    lines = fixture_settlement.lines.copy()
    lines["settlement_id"] = HELD_ID
    renamed = lines.index[lines["amount_description"] == "DigitalServicesFee"][0]  # the -0.37 on line 8
    lines.loc[renamed, "amount_description"] = "MysteryFee"
    lines.loc[lines.index[0], "fulfillment_id"] = "XYZ"  # a pandera failure on line 3
    return _settle(dataclasses.replace(fixture_settlement, settlement_id=HELD_ID, source="held.tsv", lines=lines))


@pytest.fixture(scope="module")
def jpy_outcome() -> SettlementOutcome:
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 1200, "2024-10-18 02:58:02", "503-0000000-0000001"),
            ("Order", "ItemFees", "Commission", -180, "2024-10-18 02:58:02", "503-0000000-0000001"),
        ],
        settlement_id=JPY_ID,
        currency="JPY",
        marketplace="Amazon.co.jp",
    )
    return _settle(settlement, status="dry_run")


FILE_ERROR = SettlementFileError("broken.tsv", 7, 15, "amount 'abc' is not a number", "amount")


@pytest.fixture(scope="module")
def workbook_path(tmp_path_factory, fixture_outcome, held_outcome, jpy_outcome) -> Path:
    path = tmp_path_factory.mktemp("workbook") / "run.xlsx"
    info = write_workbook(
        [fixture_outcome, held_outcome, jpy_outcome], path, file_errors=[FILE_ERROR], generated_at=GENERATED
    )
    assert info.path == path and info.lines_file is None  # 41 lines: every line on the Lines sheet
    return path


@pytest.fixture(scope="module")
def book(workbook_path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(workbook_path)


@pytest.fixture(scope="module")
def values(workbook_path: Path) -> openpyxl.Workbook:
    """The cached values (what a reader without recalculation sees)."""
    return openpyxl.load_workbook(workbook_path, data_only=True)


def _table(sheet, header_row: int = 1) -> list[dict[str, object]]:
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    header = rows[0]
    return [dict(zip(header, row)) for row in rows[1:] if any(v is not None for v in row)]


def _cells_by_header(sheet, header: str, header_row: int = 1) -> list:
    column = [c.value for c in sheet[header_row]].index(header) + 1
    return [sheet.cell(row, column) for row in range(header_row + 1, sheet.max_row + 1)]


def _money(value: object) -> Decimal:
    return Decimal(str(value))


# --- sheets and journal --------------------------------------------------------------------


def test_sheet_names_in_order(book) -> None:
    assert book.sheetnames == [
        "Read me",
        "Summary",
        "Checks",
        "Journal",
        "Fees",
        "Reconciliation",
        "Exceptions",
        "Validation",
        "Anomalies",
        "Lines",
    ]
    assert list(SHEET_NAMES) == book.sheetnames


def test_journal_of_the_fixture_balances_and_books_the_deposit(values) -> None:
    rows = [r for r in _table(values["Journal"]) if r["Voucher key"] == VOUCHER_KEY]
    lines, totals = [r for r in rows if r["Role"] != "total"], [r for r in rows if r["Role"] == "total"]
    # Debits by hand: commission 12.42 + FBA 21.79 + digital services 0.49 + refund commission 2.48
    # + deposit 31.81 = 68.99; credits: receivable 68.30 + withheld tax 0.69 = 68.99.
    debits = sum(_money(r["Debit"]) for r in lines if r["Debit"] is not None)
    credits = sum(_money(r["Credit"]) for r in lines if r["Credit"] is not None)
    assert debits == credits == Decimal("68.99")
    [deposit] = [r for r in lines if r["Role"] == "deposit"]
    assert (deposit["Account (AIT1)"], _money(deposit["Debit"]), deposit["Credit"]) == ("1930", Decimal("31.81"), None)
    assert deposit["AIT3"] == "US" and deposit["M3 voucher"] == "AAA/2024/AZ/1"
    [total] = totals
    assert (_money(total["Debit"]), _money(total["Credit"]), _money(total["Debit - credit"])) == (
        Decimal("68.99"),
        Decimal("68.99"),
        Decimal("0"),
    )
    assert total["Accounting date"] == datetime(2024, 10, 25)


def test_journal_totals_are_subtotal_formulas_over_the_voucher_lines(book) -> None:
    sheet = book["Journal"]
    keys = [c.value for c in _cells_by_header(sheet, "Voucher key")]
    roles = [c.value for c in _cells_by_header(sheet, "Role")]
    first = keys.index(VOUCHER_KEY) + 2
    total_row = roles.index("total") + 2
    header = [c.value for c in sheet[1]]
    debit = sheet.cell(total_row, header.index("Debit") + 1)
    credit = sheet.cell(total_row, header.index("Credit") + 1)
    assert debit.value == f"=SUBTOTAL(9,P{first}:P{total_row - 1})"
    assert credit.value == f"=SUBTOTAL(9,Q{first}:Q{total_row - 1})"
    assert debit.number_format == USD_FORMAT
    # The held settlement has no vouchers, so nothing of it is in the journal.
    assert HELD_ID not in {c.value for c in _cells_by_header(sheet, "Settlement ID")}


# --- summary -------------------------------------------------------------------------------


def _summary(values) -> dict[str, dict[str, object]]:
    # the settlement table's rows (the settlement columns and currency totals follow below it, and
    # reach right of the table: their cells have no header of the table)
    rows = _table(values["Summary"], SUMMARY_HEADER_ROW + 1)
    return {
        r["Settlement ID"]: {h: v for h, v in r.items() if h is not None}
        for r in rows
        if str(r["Settlement ID"]).isdigit()
    }


def _checks(values) -> dict[str, dict[str, object]]:
    return {r["Settlement ID"]: r for r in _table(values["Checks"])}


def test_summary_of_the_fixture_in_words(values) -> None:
    row = _summary(values)[FIXTURE_ID]
    assert set(row) == set(SUMMARY_HEADERS)
    assert row["Marketplace and period (UTC)"] == "Amazon.com, USD\n2024-10-09 to 2024-10-23"
    assert row["Deposit date (UTC)"] == datetime(2024, 10, 25, 14, 28, 39)
    assert (row["Status"], _money(row["Total (deposit)"]), row["Checks"]) == ("Posted to M3", Decimal("31.81"), "OK")
    assert row["M3 voucher numbers"] == "AAA/2024/AZ/1"
    # 1 matched, 1 amount mismatch, 1 refund without credit (the counts on the Checks sheet below)
    assert row["Reconciliation"] == "1 matched, 1 amount mismatch, 1 refund without credit"


def test_checks_figures_of_the_fixture(values) -> None:
    row = _checks(values)[FIXTURE_ID]
    assert (row["Format"], row["Currency"], row["Lines"]) == ("v2", "USD", 20)
    assert row["Start (UTC)"] == datetime(2024, 10, 9, 14, 28, 38)
    assert row["End (UTC)"] == datetime(2024, 10, 23, 14, 28, 39)
    money = {
        k: _money(row[k])
        for k in (
            "Total (deposit)",
            "Sum of lines",
            "Sum of lines - total",
            "Voucher debits",
            "Voucher credits",
            "Debits - credits",
            "Deposit line",
            "Deposit line - total",
        )
    }
    assert money == {
        "Total (deposit)": Decimal("31.81"),
        "Sum of lines": Decimal("31.81"),
        "Sum of lines - total": 0,
        "Voucher debits": Decimal("68.99"),
        "Voucher credits": Decimal("68.99"),
        "Debits - credits": 0,
        "Deposit line": Decimal("31.81"),
        "Deposit line - total": 0,
    }
    assert row["Checks"] == "OK"
    assert row["Voucher keys"] == VOUCHER_KEY
    assert (
        row["Matched"],
        row["Amount mismatch"],
        row["Missing in M3"],
        row["Not settled (M3 only)"],
        row["Refund without credit"],
    ) == (1, 1, 0, 0, 1)
    assert row["Lines written to"] == "Lines rows 2-21"


def test_summary_of_a_held_settlement_names_why(values) -> None:
    row = _summary(values)[HELD_ID]
    assert row["Status"] == "Held: not posted"
    assert "MysteryFee" in row["Reasons"]
    assert "no vouchers" in row["Checks"] and row["M3 voucher numbers"] is None
    checks = _checks(values)[HELD_ID]
    assert checks["Voucher debits"] is None and checks["Voucher keys"] is None
    assert "no vouchers" in checks["Checks"]
    assert checks["Lines written to"] == "Lines rows 22-41"
    sheet = values["Summary"]
    assert sheet["B2"].value == datetime(2026, 11, 26, 12, 30)  # generated_at, naive UTC
    assert "3 settlement(s)" in sheet["A3"].value and "1 file error(s)" in sheet["A3"].value


# --- reconciliation, exceptions, validation, anomalies, fees ----------------------------------


def test_reconciliation_rows_and_conditional_formatting(book, values) -> None:
    rows = {r["Order ID"]: r for r in _table(values["Reconciliation"])}
    assert rows["111-0000000-9000001"]["Category"] == "Matched"
    assert _money(rows["111-0000000-9000001"]["Difference"]) == 0
    mismatch = rows["114-0000000-9000002"]
    assert (
        mismatch["Category"],
        _money(mismatch["Settled"]),
        _money(mismatch["Invoiced"]),
        _money(mismatch["Difference"]),
    ) == ("Amount mismatch", Decimal("68.99"), Decimal("70.00"), Decimal("-1.01"))
    assert rows["112-0000000-9000004"]["Category"] == "Refund without credit"

    sheet = book["Reconciliation"]
    header = [c.value for c in sheet[1]]
    difference = openpyxl.utils.get_column_letter(header.index("Difference") + 1)
    tolerance = openpyxl.utils.get_column_letter(header.index("Tolerance") + 1)
    category = openpyxl.utils.get_column_letter(header.index("Category") + 1)
    rules = {str(cf.sqref): cf.rules for cf in sheet.conditional_formatting}
    assert f"{difference}2:{difference}4" in rules
    [rule] = rules[f"{difference}2:{difference}4"]
    # Red only beyond the tolerance shown beside it (0.01: reconcile_orders' default of 1 cent).
    assert (rule.type, rule.formula) == ("expression", [f"ABS(${difference}2)>${tolerance}2"])
    assert [_money(c.value) for c in _cells_by_header(sheet, "Tolerance")] == [Decimal("0.01")] * 3
    [category_rule] = rules[f"{category}2:{category}4"]
    assert category_rule.type == "expression" and '"Matched"' in category_rule.formula[0]
    assert _cells_by_header(sheet, "Difference")[0].number_format == USD_FORMAT


def _red(sheet, row: int) -> bool:
    """Whether the Difference cell of ``row`` (1-based) is red: the sheet's one rule on Difference,
    ``ABS(difference) > tolerance``, worked out on the cells' values."""
    header = [c.value for c in sheet[1]]
    letter = {h: openpyxl.utils.get_column_letter(header.index(h) + 1) for h in ("Difference", "Tolerance")}
    [formula] = [
        rule.formula
        for cf in sheet.conditional_formatting
        for rule in cf.rules
        if str(cf.sqref).startswith(letter["Difference"])
    ]
    assert formula == [f"ABS(${letter['Difference']}2)>${letter['Tolerance']}2"]
    difference = sheet.cell(row, header.index("Difference") + 1).value
    tolerance = sheet.cell(row, header.index("Tolerance") + 1).value
    return abs(_money(difference)) > _money(tolerance)


def test_a_difference_within_the_tolerance_is_matched_and_not_red(fixture_settlement, tmp_path: Path) -> None:
    """9000001 settled 68.99 against an invoice of 68.98: 0.01 within a tolerance of 0.01 (matched,
    not red); 9000002 settled 68.99 against 68.97: 0.02 beyond it (a mismatch, red)."""
    invoices = _invoices(
        [("0000100001", "111-0000000-9000001", "900001", 6898), ("0000100002", "114-0000000-9000002", "900002", 6897)]
    )
    path = tmp_path / "tolerance.xlsx"
    write_workbook([_settle(fixture_settlement, invoices=invoices)], path, generated_at=GENERATED)
    sheet = openpyxl.load_workbook(path)["Reconciliation"]
    rows = {r["Order ID"]: (n, r) for n, r in enumerate(_table(sheet), start=2)}

    row_number, within = rows["111-0000000-9000001"]
    assert (within["Category"], _money(within["Difference"]), _money(within["Tolerance"])) == (
        "Matched",
        Decimal("0.01"),
        Decimal("0.01"),
    )
    assert not _red(sheet, row_number)
    row_number, beyond = rows["114-0000000-9000002"]
    assert (beyond["Category"], _money(beyond["Difference"])) == ("Amount mismatch", Decimal("0.02"))
    assert _red(sheet, row_number)
    assert within["Settled in"] == FIXTURE_ID and within["Invoice date"] == datetime(2024, 10, 21)


def test_exceptions_list_the_unmapped_fee_type_the_held_settlement_and_the_file_error(values) -> None:
    rows = _table(values["Exceptions"])
    [unmapped] = [r for r in rows if r["Kind"] == "Fee type without a GL rule"]
    assert (
        unmapped["Settlement ID"],
        unmapped["Order, fee type or file"],
        unmapped["What"],
        _money(unmapped["Amount"]),
        unmapped["Currency"],
    ) == (HELD_ID, "Order / ItemFees / MysteryFee", "1 line(s), total -0.37 USD", Decimal("-0.37"), "USD")
    held = [r for r in rows if r["Kind"] == "Settlement held"]
    assert [(r["Settlement ID"], r["Order, fee type or file"]) for r in held] == [
        (HELD_ID, "held: fee types without a GL rule")
    ]
    assert "MysteryFee" in held[0]["What"] and "HOME/mappings/" in held[0]["Next step"]
    [file_error] = [r for r in rows if r["Kind"] == "File could not be read"]
    assert (file_error["Order, fee type or file"], file_error["What"]) == (
        "broken.tsv",
        "line 7, column 15 (amount): amount 'abc' is not a number",
    )
    # The fixture's order beyond the tolerance is a row too.
    [mismatch] = [r for r in rows if r["Kind"] == "Amount differs from the M3 invoice"]
    assert (mismatch["Settlement ID"], mismatch["Order, fee type or file"]) == (FIXTURE_ID, "114-0000000-9000002")


def test_validation_lists_the_pandera_failure_case(values) -> None:
    rows = _table(values["Validation"])
    [case] = [r for r in rows if r["Column"] == "Fulfillment ID"]
    assert (case["Settlement ID"], case["File"], case["Line"], case["Value"]) == (HELD_ID, "held.tsv", 3, "XYZ")
    assert "isin" in case["Check"]


def test_anomalies_sorted_by_score_with_reasons(values) -> None:
    rows = _table(values["Anomalies"])
    assert [(r["Score"], r["Order ID"]) for r in rows] == [(0.9, "114-0000000-9000002"), (0.2, "111-0000000-9000001")]
    assert rows[0]["Reasons"] == "commission 31% of principal; SKU median 15%"


def test_anomalies_sheet_has_headers_when_there_are_none(tmp_path: Path, jpy_outcome) -> None:
    write_workbook([jpy_outcome], tmp_path / "jpy.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "jpy.xlsx")["Anomalies"]
    assert [c.value for c in sheet[1]] == ["Score", "Settlement ID", "Order ID", "SKU", "Kind", "Reasons"]
    assert sheet.max_row == 1 and sheet.freeze_panes == "A2" and sheet.auto_filter.ref


def test_fees_break_down_amounts_per_marketplace_and_currency(values) -> None:
    rows = {
        (r["Marketplace"], r["Currency"], r["Transaction type"], r["Amount type"], r["Amount description"]): r
        for r in _table(values["Fees"])
    }
    # The file has two order commissions of -12.42 and one refunded commission of +12.42; the run
    # holds the fixture and its held copy (same marketplace and currency), so each counts twice.
    commission = rows[("Amazon.com", "USD", "Order", "ItemFees", "Commission")]
    assert (_money(commission["Sum"]), commission["Count"]) == (Decimal("-49.68"), 4)
    refunded = rows[("Amazon.com", "USD", "Refund", "ItemFees", "Commission")]
    assert (_money(refunded["Sum"]), refunded["Count"]) == (Decimal("24.84"), 2)
    # DigitalServicesFee: -0.37 twice in the fixture, once in the held copy (the other became MysteryFee).
    digital = rows[("Amazon.com", "USD", "Order", "ItemFees", "DigitalServicesFee")]
    assert (_money(digital["Sum"]), digital["Count"]) == (Decimal("-1.11"), 3)
    mystery = rows[("Amazon.com", "USD", "Order", "ItemFees", "MysteryFee")]
    assert (_money(mystery["Sum"]), mystery["Count"], mystery["GL category"]) == (Decimal("-0.37"), 1, None)
    # Fixture and held copy: FBA fee -5.84, -5.84, -10.11 each -> 6 lines, -43.58.
    fba = rows[("Amazon.com", "USD", "Order", "ItemFees", "FBAPerUnitFulfillmentFee")]
    assert (_money(fba["Sum"]), fba["Count"], fba["GL category"]) == (Decimal("-43.58"), 6, "Fba fulfilment fees")
    yen = rows[("Amazon.co.jp", "JPY", "Order", "ItemPrice", "Principal")]
    assert (yen["Sum"], yen["Count"]) == (1200, 1)


# --- lines, formats, dates -----------------------------------------------------------------


def test_lines_match_the_file_exactly(values, fixture_file: Path) -> None:
    with open(fixture_file, newline="", encoding="utf-8") as handle:
        body = list(csv.DictReader(handle, delimiter="\t"))[1:]
    rows = [r for r in _table(values["Lines"]) if r["Settlement ID"] == FIXTURE_ID]
    assert [(_money(r["Amount"]), r["Amount description"], r["Order ID"]) for r in rows] == [
        (Decimal(b["amount"]), b["amount-description"], b["order-id"]) for b in body
    ]
    assert sum(_money(r["Amount"]) for r in rows) == Decimal("31.81")
    assert rows[0]["GL category"] == "Principal" and rows[0]["GL account"] == "1510"
    assert rows[0]["Line number"] == 3 and rows[0]["Quantity"] == 1 and rows[-1]["Quantity"] is None


def test_number_formats_carry_the_currency(book) -> None:
    lines = book["Lines"]
    formats = {
        (s.value, a.number_format)
        for s, a in zip(_cells_by_header(lines, "Settlement ID"), _cells_by_header(lines, "Amount"))
    }
    assert formats == {(FIXTURE_ID, USD_FORMAT), (HELD_ID, USD_FORMAT), (JPY_ID, JPY_FORMAT)}
    yen = [
        a.value
        for s, a in zip(_cells_by_header(lines, "Settlement ID"), _cells_by_header(lines, "Amount"))
        if s.value == JPY_ID
    ]
    assert yen == [1200, -180]
    summary = book["Summary"]
    header_row = SUMMARY_HEADER_ROW + 1
    totals = {
        s.value: t.number_format
        for s, t in zip(
            _cells_by_header(summary, "Settlement ID", header_row),
            _cells_by_header(summary, "Total (deposit)", header_row),
        )
        if str(s.value).isdigit()
    }
    assert totals == {FIXTURE_ID: USD_FORMAT, HELD_ID: USD_FORMAT, JPY_ID: JPY_FORMAT}
    assert currency_number_format("EUR") == '#,##0.00 "EUR"'


def test_dates_are_naive_excel_dates_in_utc(book) -> None:
    lines = book["Lines"]
    assert lines["N1"].value == "Posted (UTC)"
    first = lines["N2"]
    # Line 3 of the file: posted-date-time 2024-10-18 02:58:02 UTC.
    assert first.is_date and first.value == datetime(2024, 10, 18, 2, 58, 2) and first.value.tzinfo is None
    refund = lines["N18"]  # line 19 of the file: 2024-10-20 00:01:36 UTC
    assert refund.value == datetime(2024, 10, 20, 0, 1, 36)


def test_frozen_headers_and_autofilters_on_every_table(book) -> None:
    for name in SHEET_NAMES[1:]:  # after the Read me, which has no table
        sheet = book[name]
        header_row = SUMMARY_HEADER_ROW + 1 if name == "Summary" else 1
        assert sheet.freeze_panes in (f"A{header_row + 1}", f"B{header_row + 1}"), name
        assert sheet.auto_filter.ref and sheet.auto_filter.ref.split(":")[0][1:] == str(header_row), name


def test_no_nan_or_infinity_and_well_formed_xml(book, workbook_path: Path) -> None:
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, float):
                    assert math.isfinite(cell.value), (sheet.title, cell.coordinate)
                assert cell.value not in ("nan", "NaN", "<NA>", "None", "NaT"), (sheet.title, cell.coordinate)
    with zipfile.ZipFile(workbook_path) as archive:
        for name in archive.namelist():
            if name.endswith(".xml"):
                ElementTree.fromstring(archive.read(name))  # raises on malformed XML


# --- row limit, text safety, bad arguments --------------------------------------------------


def test_a_large_run_sums_the_lines_on_the_sheet_and_writes_every_line_beside_it(
    tmp_path: Path, fixture_outcome, held_outcome
) -> None:
    # 40 lines > lines_on_sheet=30: the Lines sheet sums them, every raw line goes to small-lines.csv.
    info = write_workbook([fixture_outcome, held_outcome], tmp_path / "small.xlsx", lines_on_sheet=30)
    expected_csv = tmp_path / "small-lines.csv"
    assert info.lines_file == expected_csv and expected_csv.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small-lines.csv", "small.xlsx"]  # no partial files left

    with open(expected_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40
    # Both settlements are the fixture's 20 lines (the held one renames a description): total-amount 31.81 each.
    for settlement_id in (FIXTURE_ID, HELD_ID):
        amounts = [Decimal(r["amount"]) for r in rows if r["settlement_id"] == settlement_id]
        assert len(amounts) == 20 and sum(amounts) == Decimal("31.81")
    assert rows[0]["amount"] == "68.99" and rows[0]["posted_date (UTC)"] == "2024-10-18 02:58:02"
    assert rows[0]["order_item_code"] == "90000000000001" and rows[0]["line_no"] == "3"
    assert rows[0]["currency"] == "USD" and rows[0]["gl_account"] != ""

    book = openpyxl.load_workbook(info.path)
    summed = _table(book["Lines"])
    fixture_rows = [r for r in summed if r["Settlement ID"] == FIXTURE_ID]
    # By hand: 18 Oct 8 groups (principal, tax, withheld tax, FBA, commission, digital services, shipping,
    # shipping promotion), 19 Oct 2 (the MCF order's principal and FBA fee), 20 Oct the refund's 6.
    assert len(fixture_rows) == 16
    assert sum(r["Lines"] for r in fixture_rows) == 20
    assert sum(_money(r["Amount"]) for r in fixture_rows) == Decimal("31.81")
    [commission] = [
        r for r in fixture_rows if r["Amount description"] == "Commission" and r["Transaction type"] == "Order"
    ]
    assert (
        commission["Posted day (UTC)"],
        commission["Lines"],
        _money(commission["Amount"]),
        commission["First line number"],
        commission["Last line number"],
    ) == (datetime(2024, 10, 18), 2, Decimal("-24.84"), 7, 12)
    assert _cells_by_header(book["Lines"], "Amount")[0].number_format == USD_FORMAT

    summary = _checks(book)
    assert summary[FIXTURE_ID]["Lines written to"] == "20 lines in small-lines.csv; summed in Lines rows 2-17"
    assert summary[HELD_ID]["Lines written to"].startswith("20 lines in small-lines.csv; summed in Lines rows 18-")
    column = CHECKS_HEADERS.index("Lines written to") + 1
    links = [book["Checks"].cell(2 + n, column).hyperlink for n in range(2)]
    assert [link.target for link in links] == ["small-lines.csv", "small-lines.csv"]  # relative: moves with the book
    [note] = [c for c in book["Summary"]["A"] if c.value and "beside this workbook" in str(c.value)]
    assert "All 40 lines" in note.value and note.hyperlink.target == "small-lines.csv"


def test_summed_lines_are_exact_beyond_int64(tmp_path: Path) -> None:
    # Three lines of 9,000,000,000,000,000,000 minor units: 2.7e19 does not fit int64 (max 9.22e18).
    big = 9 * 10**18
    settlement = make_settlement(
        [("Order", "ItemPrice", "Principal", big, "2024-10-18 02:58:02", "111-0000000-0000001")] * 3,
        settlement_id=JPY_ID,
        currency="JPY",
        marketplace="Amazon.co.jp",
        total_minor=27 * 10**18,
    )
    outcome = SettlementOutcome(settlement=settlement, status="invalid")
    info = write_workbook([outcome], tmp_path / "big.xlsx", lines_on_sheet=2)
    book = openpyxl.load_workbook(info.path)
    [row] = _table(book["Lines"])
    assert row["Lines"] == 3
    # the Checks sheet's check sum is a formula (Sum of lines in I minus Total in G) whose cached value is exact too
    cached = openpyxl.load_workbook(info.path, data_only=True)
    assert _money(_checks(cached)[JPY_ID]["Sum of lines - total"]) == 0
    assert _checks(book)[JPY_ID]["Sum of lines - total"] == "=I2-G2"
    with zipfile.ZipFile(info.path) as archive:
        assert b"<v>27000000000000000000</v>" in archive.read(
            f"xl/worksheets/sheet{SHEET_NAMES.index('Lines') + 1}.xml"
        )
    with open(info.lines_file, newline="", encoding="utf-8") as handle:
        assert sum(Decimal(r["amount"]) for r in csv.DictReader(handle)) == Decimal(27 * 10**18)


def test_the_json_document_names_the_lines_file(tmp_path: Path, fixture_outcome) -> None:
    from flows.contract import settle_document
    from flows.settlement_steps import Sources

    sources = Sources(settlements=(fixture_outcome.settlement,))
    small = settle_document([fixture_outcome], sources, write_workbook([fixture_outcome], tmp_path / "a.xlsx"))
    large = settle_document(
        [fixture_outcome], sources, write_workbook([fixture_outcome], tmp_path / "b.xlsx", lines_on_sheet=10)
    )
    assert (small["report"], small["lines_file"]) == (str(tmp_path / "a.xlsx"), None)
    assert (large["report"], large["lines_file"]) == (str(tmp_path / "b.xlsx"), str(tmp_path / "b-lines.csv"))


def test_text_stays_text_and_long_text_is_cut(tmp_path: Path) -> None:
    tricky = '=HYPERLINK("http://x")&<b>_x0041_\x01'
    settlement = make_settlement(
        [
            {
                "transaction_type": "Order",
                "amount_type": "ItemPrice",
                "amount_description": "Principal",
                "amount_minor": 100,
                "posted_date": "2024-10-18",
                "sku": tricky,
                "order_id": "0012",
            },
        ]
    )
    outcome = SettlementOutcome(settlement=settlement, status="invalid", reasons=("x" * 40_000,))
    write_workbook([outcome], tmp_path / "text.xlsx")
    book = openpyxl.load_workbook(tmp_path / "text.xlsx")
    row = _table(book["Lines"])[0]
    # Not a formula, markup kept literally, the control character replaced. "_x0041_" would read as
    # "A" in Excel, so its underscore is escaped as "_x005F_" (Excel and LibreOffice show "_x0041_";
    # openpyxl does not decode the escape).
    assert row["SKU"] == '=HYPERLINK("http://x")&<b>_x005F_x0041_\ufffd'
    assert book["Lines"]["R2"].data_type == "s"
    assert row["Order ID"] == "0012"  # identifiers stay strings
    reason = _summary(book)[settlement.settlement_id]["Reasons"]
    assert len(reason) == 32_767


def test_generated_settlements_each_check_out(tmp_path: Path) -> None:
    from sandbox.generator import build_world

    documents = build_world(0, orders=60, days=14).settlement_documents()
    outcomes = []
    for document in documents:
        [settlement] = parse_settlement_bytes(document.text.encode(), f"{document.settlement_id}.tsv").settlements
        outcomes.append(_settle(settlement, status="dry_run"))
    write_workbook(outcomes, tmp_path / "world.xlsx")
    book = openpyxl.load_workbook(tmp_path / "world.xlsx", data_only=True)
    summary, checks = _summary(book), _checks(book)
    assert set(summary) == set(checks) == {d.settlement_id for d in documents}
    for outcome in outcomes:
        row, figures = summary[outcome.settlement.settlement_id], checks[outcome.settlement.settlement_id]
        assert _money(row["Total (deposit)"]) == Decimal(outcome.settlement.total_minor).scaleb(-2)
        assert figures["Sum of lines - total"] == 0
        if row["Status"] != STATUS_WORDS["held"]:
            assert row["Checks"] == figures["Checks"] == "OK"
            assert _money(figures["Voucher debits"]) == _money(figures["Voucher credits"])
    currencies = {
        s.value: a.number_format
        for s, a in zip(_cells_by_header(book["Lines"], "Currency"), _cells_by_header(book["Lines"], "Amount"))
    }
    assert currencies == {c: currency_number_format(c) for c in {o.settlement.currency for o in outcomes}}
    assert len(currencies) >= 2


def test_bad_arguments_are_refused_with_a_clear_error(tmp_path: Path, jpy_outcome) -> None:
    with pytest.raises(WorkbookError, match=r"\.xlsx"):
        write_workbook([jpy_outcome], tmp_path / "run.xls")
    with pytest.raises(WorkbookError, match="max_rows"):
        write_workbook([jpy_outcome], tmp_path / "run.xlsx", max_rows=1)
    with pytest.raises(WorkbookError, match="does not exist"):
        write_workbook([jpy_outcome], tmp_path / "missing" / "run.xlsx")
    broken = dataclasses.replace(jpy_outcome.settlement, lines=jpy_outcome.settlement.lines.drop(columns="sku"))
    with pytest.raises(WorkbookError, match=f"settlement {JPY_ID}\\): lines lack column\\(s\\) sku"):
        write_workbook([dataclasses.replace(jpy_outcome, settlement=broken)], tmp_path / "run.xlsx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_an_empty_run_still_writes_every_sheet(tmp_path: Path) -> None:
    info = write_workbook([], tmp_path / "empty.xlsx", file_errors=[FILE_ERROR])
    book = openpyxl.load_workbook(info.path)
    assert book.sheetnames == list(SHEET_NAMES)
    assert _table(book["Exceptions"])[0]["Order, fee type or file"] == "broken.tsv"


def test_a_settlement_across_month_end_has_two_balanced_vouchers(tmp_path: Path) -> None:
    settlement = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 5000, "2024-09-28 10:00:00", "111-0000000-0000001"),
            ("Order", "ItemFees", "Commission", -750, "2024-10-02 10:00:00", "111-0000000-0000001"),
        ],
        settlement_id="10000000004",
        start="2024-09-25 00:00:00",
        end="2024-10-03 00:00:00",
        deposit="2024-10-05 00:00:00",
    )
    write_workbook([_settle(settlement)], tmp_path / "split.xlsx")
    book = openpyxl.load_workbook(tmp_path / "split.xlsx", data_only=True)
    totals = [
        (r["Voucher key"], r["Accounting date"], _money(r["Debit"]), _money(r["Credit"]))
        for r in _table(book["Journal"])
        if r["Role"] == "total"
    ]
    # September: principal credit 50.00, carry-over debit 50.00 (dated the month's last day).
    # October: commission debit 7.50 + deposit debit 42.50, carry-over back credit 50.00.
    assert totals == [
        ("AMZ-10000000004-202409", datetime(2024, 9, 30), Decimal("50.00"), Decimal("50.00")),
        ("AMZ-10000000004-202410", datetime(2024, 10, 5), Decimal("50.00"), Decimal("50.00")),
    ]
    row = _checks(book)["10000000004"]
    assert (_money(row["Voucher debits"]), _money(row["Deposit line"]), row["Checks"]) == (
        Decimal("100.00"),
        Decimal("42.50"),
        "OK",
    )
    assert row["Voucher keys"] == "AMZ-10000000004-202409\nAMZ-10000000004-202410"
    sheet = book["Checks"]
    [row_number] = [c.row for c in sheet["A"] if c.value == "10000000004"]
    assert sheet.row_dimensions[row_number].height >= 30  # two voucher keys: two lines, no overlap


def test_amount_cells_are_exact_decimal_literals() -> None:
    from reconciliation.xlsx_tables import amount_cells

    minor = pd.Series([-5, 0, 3181, 123456789012345, -180, 7])
    decimals = pd.Series([2, 2, 2, 2, 0, 3])
    assert amount_cells(minor, decimals).tolist() == ["-0.05", "0.00", "31.81", "1234567890123.45", "-180", "0.007"]


FORMULA_LIKE = {
    "order_id": '=HYPERLINK("http://evil.example","click")',
    "sku": "+1+1",
    "merchant_order_id": "@SUM(A1)",
    "shipment_id": "\t=1+1",
    "amount_description": "-2+3",
}


def test_cells_from_file_data_that_look_like_formulas_are_text(tmp_path: Path) -> None:
    order = FORMULA_LIKE["order_id"]
    texts = {k: v for k, v in FORMULA_LIKE.items() if k != "amount_description"}
    settlement = make_settlement(
        [
            {
                "transaction_type": "Order",
                "amount_type": "ItemPrice",
                "amount_description": "Principal",
                "amount_minor": 1000,
                "posted_date": "2024-10-18",
                **texts,
            },
            {
                "transaction_type": "Order",
                "amount_type": "ItemFees",
                "amount_description": FORMULA_LIKE["amount_description"],
                "amount_minor": -414,
                "posted_date": "2024-10-18",
                **texts,
            },
        ]
    )
    source = "=1+2.tsv"
    settlement = dataclasses.replace(settlement, source=source)
    # The fee "-2+3" has no rule: the settlement is held, and the combination is listed in Exceptions.
    outcome = _settle(settlement, invoices=_invoices([("0000100001", order, "900001", 1000)]))
    assert outcome.status == "held"
    write_workbook([outcome], tmp_path / "formulas.xlsx")
    book = openpyxl.load_workbook(tmp_path / "formulas.xlsx")

    def cells(sheet: str, value: str) -> list:
        return [c for row in book[sheet].iter_rows() for c in row if c.value == value]

    expected_places = {
        "Lines": [*texts.values(), "-2+3"],
        "Fees": ["-2+3"],
        "Exceptions": ["Order / ItemFees / -2+3"],
        "Reconciliation": [order],
        "Checks": [source],
    }
    for sheet, values in expected_places.items():
        for value in values:
            found = cells(sheet, value)
            assert found, (sheet, value)
            assert all(c.data_type == "s" for c in found), (sheet, value)
    formulas = [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.data_type == "f"]
    # only the Summary's and Checks' own sums and checks are formulas, none made from the file's text
    assert formulas and {c.parent.title for c in formulas} == {"Summary", "Checks"}
    assert not [c.value for c in formulas if "1+2" in c.value or "2+3" in c.value]
    amounts = {
        row["Amount description"]: cell
        for row, cell in zip(_table(book["Lines"]), _cells_by_header(book["Lines"], "Amount"))
    }
    assert amounts["-2+3"].data_type == "n" and _money(amounts["-2+3"].value) == Decimal("-4.14")  # still a number
    assert amounts["Principal"].data_type == "n" and _money(amounts["Principal"].value) == Decimal("10.00")


def test_cells_written_one_by_one_are_placed_by_their_column_header() -> None:
    columns = (SheetColumn("Debit", 14), SheetColumn("Credit", 14), SheetColumn("Debit - credit", 14))
    assert column_positions(columns) == {"Debit": 0, "Credit": 1, "Debit - credit": 2}
    # two columns of one name could not be told apart: refused, not the first silently used
    with pytest.raises(ValueError, match="duplicate column headers"):
        column_positions((*columns, SheetColumn("Credit", 9)))


# --- no internal names ---------------------------------------------------------------------

_INTERNAL_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
# The configuration keys the Read me names, as they are typed in the config file (read_me.py, by hand).
READ_ME_CONFIG_KEYS = {"payment_clearing_account", "facilitator_tax_clearing", "not_settled_after_days"}


def test_no_internal_names_in_any_sheet(tmp_path: Path, fixture_outcome, held_outcome, jpy_outcome) -> None:
    """Every sheet's cells are words: GL categories as the mapping describes them, reconciliation
    categories and anomaly kinds in words, Lines headed in words. Only the Read me's configuration
    keys and the Exceptions' rule to paste into the mapping file are snake_case, as typed in YAML."""
    mapping = load_mapping("invoice-clearing")
    # Every kind the anomaly package reports, on one order each.
    kinds = [rule.kind for rule in ITEM_RULES] + ["unusual", "fee_share_high", "reserve_high", "missing_reimbursement"]
    anomalies = pd.DataFrame(
        [("111-0000000-9000001", "DEMO-SKU-A", kind, 0.5, ["a reason"]) for kind in kinds],
        columns=list(ANOMALY_COLUMNS),
    )
    outcomes = [dataclasses.replace(fixture_outcome, anomalies=anomalies), held_outcome, jpy_outcome]
    path = write_workbook(outcomes, tmp_path / "words.xlsx", mapping=mapping, generated_at=GENERATED).path
    book = openpyxl.load_workbook(path)

    found: dict[str, set[str]] = {}
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    found.setdefault(sheet.title, set()).update(_INTERNAL_NAME.findall(cell.value))
    read_me, exceptions = found.pop("Read me", set()), found.pop("Exceptions", set())
    assert {name: names for name, names in found.items() if names} == {}
    # Read me: configuration keys, typed as they are in the config file.
    assert read_me and all(name in READ_ME_CONFIG_KEYS for name in read_me), read_me
    # Exceptions: only a YAML rule to paste into the mapping file (its keys and the mapping's categories).
    assert exceptions <= {"transaction_type", "amount_type", "amount_description", *mapping.categories}, exceptions

    # By hand from the mapping file: the categories are its descriptions, a "+"-joined one each part's.
    journal = _table(book["Journal"])
    assert {r["Category"] for r in journal if r["Account (AIT1)"] == "6110"} == {"Amazon referral commission"}
    receivable = [r["Category"] for r in journal if r["Account (AIT1)"] == "1510"]
    assert receivable and all(
        set(text.split(", "))
        <= {
            f"Customer receivable Amazon ({part})"
            for part in ("principal", "shipping", "tax/VAT", "promotions", "refunds")
        }
        for text in receivable
    ), receivable
    assert any(", " in text for text in receivable)  # lines of several categories booked together
    fees = {r["Amount description"]: r["GL category"] for r in _table(book["Fees"])}
    assert (
        fees["FBAPerUnitFulfillmentFee"] == "FBA fulfilment fees" and fees["Commission"] == "Amazon referral commission"
    )
    assert {r["Kind"] for r in _table(book["Anomalies"])} == set(ANOMALY_KIND_WORDS.values())
    reconciliation = {r["Order ID"]: r["Category"] for r in _table(book["Reconciliation"])}
    assert reconciliation["111-0000000-9000001"] == "Matched"
    assert reconciliation["114-0000000-9000002"] == "Amount mismatch"
    lines = _table(book["Lines"])
    assert lines[0]["Settlement ID"] == FIXTURE_ID and lines[0]["Line number"] == 3
    assert lines[0]["GL category"] == "Customer receivable Amazon (principal)"


def test_every_anomaly_kind_has_words() -> None:
    assert {rule.kind for rule in ITEM_RULES} <= set(ANOMALY_KIND_WORDS)
