"""The accountants' Excel workbook for one settlement run: one module per sheet, ``book`` writes them.

One workbook explains every number of the run: ``Summary`` (one row per settlement with its
check figures; below, one block per settlement whose items by M3 account sum, in formulas, to
Amazon's total and the vouchers' deposit line, and the run's totals per currency),
``Journal`` (the GL vouchers, visibly balanced), ``Fees`` (every amount by
transaction type / amount type / description), ``Reconciliation`` (per order against M3),
``Exceptions`` (one row per thing that needs a person, with the next step: ``reconciliation.exceptions``),
``Validation`` (pandera failure cases), ``Anomalies`` and ``Lines``: every settlement line
when the run has at most ``LINES_ON_SHEET`` lines; above that, the Lines sheet sums them per
settlement, posted day, transaction type, amount type, description, marketplace and GL account,
and every raw line goes to one CSV file beside the workbook (``<stem>-lines.csv``), linked from
the Summary. A million-row sheet is near Excel's limit, takes most of the run's time and memory
to write, and nobody scrolls it; a CSV opens in Excel, Power Query or pandas.

Money is written from integer minor units as exact decimals (``Decimal`` in xlsxwriter
cells, exact decimal literals in the fast table rows of ``xlsx_tables``), never summed as
floats; every amount carries its settlement currency's number format. Times are UTC, written
as naive Excel dates with "UTC" in the header. No buyer data exists in the inputs, and none
is added here.
"""

from reconciliation.workbook.book import WorkbookError, WorkbookInfo, write_workbook
from reconciliation.workbook.checks import CHECKS_HEADERS, CheckFigures
from reconciliation.workbook.common import (
    SHEET_ANOMALIES,
    SHEET_CHECKS,
    SHEET_EXCEPTIONS,
    SHEET_FEES,
    SHEET_JOURNAL,
    SHEET_LINES,
    SHEET_NAMES,
    SHEET_README,
    SHEET_RECONCILIATION,
    SHEET_SUMMARY,
    SHEET_VALIDATION,
    currency_number_format,
)
from reconciliation.workbook.lines import (
    LINE_SHEET_COLUMNS,
    LINES_ON_SHEET,
    LinesPlacement,
    exact_sum,
    plan_lines,
    summed_lines,
    write_lines_csv,
)
from reconciliation.workbook.read_me import accounts_in_use, read_me_rows
from reconciliation.workbook.summary import (
    BLOCK_COLUMNS,
    BLOCK_HEADERS,
    SETTLEMENTS_ACROSS,
    STATUS_WORDS,
    SUMMARY_HEADER_ROW,
    SUMMARY_HEADERS,
    CurrencyTotals,
    SummaryColumn,
    SummaryItem,
    summary_items,
)

__all__ = [
    "BLOCK_COLUMNS",
    "BLOCK_HEADERS",
    "CHECKS_HEADERS",
    "LINES_ON_SHEET",
    "LINE_SHEET_COLUMNS",
    "SHEET_ANOMALIES",
    "SHEET_CHECKS",
    "SHEET_EXCEPTIONS",
    "SHEET_FEES",
    "SHEET_JOURNAL",
    "SHEET_LINES",
    "SHEET_NAMES",
    "SHEET_README",
    "SHEET_RECONCILIATION",
    "SHEET_SUMMARY",
    "SETTLEMENTS_ACROSS",
    "SHEET_VALIDATION",
    "STATUS_WORDS",
    "SUMMARY_HEADERS",
    "SUMMARY_HEADER_ROW",
    "CheckFigures",
    "CurrencyTotals",
    "LinesPlacement",
    "SummaryColumn",
    "SummaryItem",
    "WorkbookError",
    "WorkbookInfo",
    "accounts_in_use",
    "currency_number_format",
    "exact_sum",
    "plan_lines",
    "read_me_rows",
    "summary_items",
    "summed_lines",
    "write_lines_csv",
    "write_workbook",
]
