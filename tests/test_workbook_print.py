"""The workbook prints and reads: every sheet's print set-up (A4 landscape, one page wide, header
row on every page, sheet name and page in the footer), text columns that fit or wrap, and a first
"Read me" sheet explaining the sheets and how a settlement is booked, with this run's accounts.

Expected values come from the inputs: the split settlement below posts in September and October
(carry-over on 1595 in the shipped invoice-clearing mapping), the fixture file is one US
settlement of October with no reserve lines; the split settlement is reconciled with a
tolerance of 5 cents.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _settlement_builders import make_settlement

from reconciliation.audit import AuditRecord
from reconciliation.gates import check_gates
from reconciliation.mapping import load_mapping
from reconciliation.matching import INVOICE_COLUMNS, Reconciliation, reconcile_orders
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import read_settlement_file
from reconciliation.pipeline import map_settlement_lines
from reconciliation.workbook import (
    BLOCK_HEADERS,
    SETTLEMENTS_ACROSS,
    SHEET_NAMES,
    SUMMARY_HEADER_ROW,
    SUMMARY_HEADERS,
    write_workbook,
)
from reconciliation.xlsx_tables import MAX_TEXT_WIDTH
from sandbox.generator import build_world

SPLIT_ID = "10000000004"
LONG_SKU = "A-VERY-LONG-SELLER-SKU-LONGER-THAN-ANY-COLUMN-IS-WIDE-" * 2


def _settle(
    settlement, reconciliation: Reconciliation | None = None, reasons: tuple[str, ...] = ()
) -> SettlementOutcome:
    mapping = load_mapping("invoice-clearing")
    mapped = map_settlement_lines(settlement, mapping)  # facilitator tax booked as the flow books it
    gates = check_gates(settlement, mapped, mapping)
    audit = AuditRecord("0" * 64, "invoice-clearing", "1" * 64, "test")
    return SettlementOutcome(
        settlement=settlement,
        status="dry_run",
        reasons=reasons,
        mapped=mapped,
        gates=gates,
        vouchers=gates.vouchers,
        audits={v.key: audit for v in gates.vouchers},
        reconciliation=reconciliation,
    )


@pytest.fixture(scope="module")
def workbook_path(tmp_path_factory, us_v2_tsv: Path) -> Path:
    [fixture] = read_settlement_file(us_v2_tsv).settlements
    split = make_settlement(
        [
            ("Order", "ItemPrice", "Principal", 5000, "2024-09-28 10:00:00", "111-0000000-0000001"),
            ("Order", "ItemFees", "Commission", -750, "2024-10-02 10:00:00", "111-0000000-0000001"),
            # US sales tax Amazon collects and does not withhold here: it stays on the facilitator clearing.
            ("Order", "ItemPrice", "Tax", 400, "2024-10-02 10:00:00", "111-0000000-0000001"),
            {
                "transaction_type": "Order",
                "amount_type": "ItemFees",
                "amount_description": "FBAPerUnitFulfillmentFee",
                "amount_minor": -100,
                "posted_date": "2024-10-02 10:00:00",
                "order_id": "111-0000000-0000001",
                "sku": LONG_SKU,
            },
        ],
        settlement_id=SPLIT_ID,
        start="2024-09-25 00:00:00",
        end="2024-10-03 00:00:00",
        deposit="2024-10-05 00:00:00",
    )
    path = tmp_path_factory.mktemp("print") / "run.xlsx"
    no_invoices = pd.DataFrame({c: pd.Series(dtype=t) for c, t in INVOICE_COLUMNS.items()})
    # Reconciled with a tolerance of 5 cents, shown on the Read me as "0.05 USD".
    reconciliation = reconcile_orders(split.lines, no_invoices, tolerance_minor=5)
    write_workbook([_settle(fixture), _settle(split, reconciliation)], path)
    return path


@pytest.fixture(scope="module")
def book(workbook_path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(workbook_path)


def test_every_sheet_prints_landscape_a4_one_page_wide_with_header_and_footer(book) -> None:
    assert book.sheetnames == list(SHEET_NAMES)
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert setup.orientation == "landscape", sheet.title
        assert str(setup.paperSize) == "9", sheet.title  # A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        # 1 is the file format's default width, which xlsxwriter leaves out (openpyxl reads None).
        assert setup.fitToWidth in (None, 1) and setup.fitToHeight == 0, sheet.title
        footer = sheet.oddFooter
        assert footer.left.text == "&A" and "&P" in footer.right.text and "&N" in footer.right.text, sheet.title


def test_each_table_repeats_its_own_header_row_on_every_page(book) -> None:
    assert book["Read me"].print_title_rows is None  # no table to repeat
    summary_header = SUMMARY_HEADER_ROW + 1  # 1-based
    assert book["Summary"].print_title_rows == f"${summary_header}:${summary_header}"
    assert book["Summary"].cell(summary_header, 1).value == "Settlement ID"
    for name in SHEET_NAMES[2:]:  # Checks and the other tables
        assert book[name].print_title_rows == "$1:$1", name
        assert book[name]["A1"].value, name  # the header row is row 1


def test_long_text_widens_its_column_up_to_a_limit_then_wraps(book) -> None:
    lines = book["Lines"]
    headers = [c.value for c in lines[1]]
    sku = headers.index("SKU") + 1
    assert lines.column_dimensions[openpyxl.utils.get_column_letter(sku)].width == pytest.approx(MAX_TEXT_WIDTH, abs=1)
    long_cells = [row[sku - 1] for row in lines.iter_rows(min_row=2) if row[sku - 1].value == LONG_SKU]
    assert len(long_cells) == 1 and long_cells[0].alignment.wrap_text
    # The order id column (21 characters wide asked; "111-0000000-0000001" is 19) stays as asked, unwrapped.
    order = headers.index("Order ID") + 1
    assert lines.column_dimensions[openpyxl.utils.get_column_letter(order)].width == pytest.approx(21, abs=1)
    assert not lines.cell(2, order).alignment.wrap_text


def test_read_me_is_first_and_explains_the_booking_with_this_runs_accounts(book) -> None:
    assert book.sheetnames[0] == "Read me"
    rows = {r[0]: r[1] for r in book["Read me"].iter_rows(min_row=2, values_only=True) if r[0]}
    month_end = rows["Month-end split"]
    assert "one voucher per month" in month_end and "carry-over account 1595" in month_end
    assert "taken back" in month_end or "takes the carry-over back" in month_end
    assert "account 1930" in rows["Deposit line"] and "2450" not in rows["Deposit line"]  # no negative total in the run
    assert "account 2615" in rows["Facilitator tax"]  # the split settlement's 4.00 US sales tax
    assert "1519" in rows["Payment clearing"] and "account 1510" in rows["Payment clearing"]
    # Neither settlement has a reserve line: the account is not guessed.
    assert "see the Journal sheet" in rows["Reserves"]
    assert "at most 0.05 USD is matched" in rows["Tolerance"]
    assert "HOME/mappings/invoice-clearing.yaml" in rows["GL mapping"]
    assert set(SHEET_NAMES[1:]) <= set(rows)  # every sheet is described


def test_summary_is_narrow_enough_to_read_printed_and_its_wrapped_rows_do_not_overlap(book) -> None:
    summary = book["Summary"]
    header_row = SUMMARY_HEADER_ROW + 1
    headers = [c.value for c in summary[header_row]]
    assert headers == [*SUMMARY_HEADERS, *[None] * (len(headers) - len(SUMMARY_HEADERS))]
    # The table's Reasons are merged across the settlement columns right of it (a few hundred
    # characters in 4 lines), and nothing is right of the settlement columns.
    reasons = openpyxl.utils.get_column_letter(SUMMARY_HEADERS.index("Reasons") + 1)
    last = openpyxl.utils.get_column_letter(len(BLOCK_HEADERS) + SETTLEMENTS_ACROSS)
    assert f"{reasons}{header_row}:{last}{header_row}" in {str(r) for r in summary.merged_cells.ranges}
    assert summary.max_column == len(BLOCK_HEADERS) + SETTLEMENTS_ACROSS
    # Fitted one landscape A4 page wide (about 150 characters at 100%), 190 characters still
    # print at 80%: readable, unlike the 600 characters of the first table.
    # (openpyxl reads columns of one width as one range: E:L)
    widths = [d.width for d in summary.column_dimensions.values() for _ in range(d.min, d.max + 1)]
    assert len(widths) == summary.max_column
    assert sum(widths) <= 190
    # the settlement columns' Item column holds "Reimbursements" and "Not in vouchers" unclipped
    assert widths[0] >= len("Not in vouchers")
    # LibreOffice keeps an .xlsx row's height: a two-line cell needs a row of at least two lines
    period = SUMMARY_HEADERS.index("Marketplace and period (UTC)") + 1
    [split_row] = [r for r in range(header_row + 1, header_row + 3) if summary.cell(r, 1).value == SPLIT_ID]
    cell = summary.cell(split_row, period)
    assert cell.value == "Amazon.com, USD\n2024-09-25 to 2024-10-03" and cell.alignment.wrap_text
    assert summary.row_dimensions[split_row].height >= 30
    # a settlement column's heading: ID, marketplace and period on four lines, the row four lines tall
    title = next(
        r
        for r in range(1, summary.max_row + 1)
        if summary.cell(r, 1).value == "Settlements in USD: items by M3 account (amounts in USD)"
    )
    headings = {summary.cell(title + 1, c).value for c in range(len(BLOCK_HEADERS) + 1, len(BLOCK_HEADERS) + 3)}
    assert f"{SPLIT_ID}\nAmazon.com\n2024-09-25 to\n2024-10-03" in headings
    assert summary.row_dimensions[title + 1].height >= 60


def _summary_pages(workbook_path: Path, tmp_path: Path) -> int:
    """The Summary's printed pages, rendered as the README's picture is (``scripts/render_summary.py``:
    LibreOffice headless -> PDF -> PNG), where LibreOffice and poppler are installed."""
    if (shutil.which("soffice") or shutil.which("libreoffice")) is None or shutil.which("pdftoppm") is None:
        pytest.skip("LibreOffice (soffice) or pdftoppm is not installed: the Summary cannot be rendered here")
    png = tmp_path / "summary.png"
    script = Path(__file__).resolve().parent.parent / "scripts" / "render_summary.py"
    done = subprocess.run(
        [sys.executable, str(script), str(workbook_path), str(png)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HOME": str(tmp_path)},  # LibreOffice's own profile: runs beside others
    )
    picture = png.read_bytes()
    assert picture.startswith(b"\x89PNG")
    pages = int(re.search(r"Summary: (\d+) page", done.stdout).group(1))
    # the first two pages one under the other (each landscape: wider than tall)
    width, height = struct.unpack(">II", picture[16:24])
    assert (height > width) == (pages >= 2)
    return pages


def test_summary_of_two_settlements_prints_on_one_page(workbook_path: Path, tmp_path: Path) -> None:
    # The table (2 rows), the two settlements side by side (about 20 rows) and the run's totals
    # (about 15 rows) fit one page printed one page wide.
    assert _summary_pages(workbook_path, tmp_path) == 1


# As long as the demo's customer-ledger notes (270 characters), the longest reasons it gives a posted settlement.
DEMO_REASON = (
    "customer ledger (allocate): the settlement pays 20 invoice(s) 1966.57 EUR less Amazon's deductions "
    "565.05 EUR (payment PAY-23502471822 (AAA/2026/AZ/34)); payment differences of 5 invoice(s) within "
    "0.05 EUR each written off to 3741 (net -0.04 EUR; paid short is positive)"
)


@pytest.fixture(scope="module")
def demo_sized_workbook(tmp_path_factory) -> Path:
    """The demo's 16 settlements (the sandbox world of seed 0: DE and FR in EUR, UK in GBP, US in
    USD, four periods), each with a reason as long as the demo's."""
    folder = tmp_path_factory.mktemp("demo-sized")
    outcomes = []
    for document in build_world(0).settlement_documents():
        source = folder / f"{document.settlement_id}.tsv"
        source.write_text(document.text, encoding="utf-8")
        [settlement] = read_settlement_file(source).settlements
        outcomes.append(_settle(settlement, reasons=(DEMO_REASON,)))
    assert len(outcomes) == 16 and {o.settlement.currency for o in outcomes} == {"EUR", "GBP", "USD"}
    path = folder / "run.xlsx"
    write_workbook(outcomes, path)
    return path


def test_demo_sized_summary_prints_on_a_handful_of_landscape_pages(demo_sized_workbook: Path, tmp_path: Path) -> None:
    # 16 table rows of 4 lines (the reasons), then the settlements side by side in three groups
    # (EUR 8, GBP 4, USD 4; about 25 rows each) and the run's totals: 3 pages at about 80%.
    # The first table printed one settlement block under another took 10.
    assert _summary_pages(demo_sized_workbook, tmp_path) <= 4
