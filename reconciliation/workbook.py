"""The accountants' Excel workbook for one settlement run.

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

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.audit import AuditRecord
from reconciliation.exceptions import DEFAULT_NOT_SETTLED_AFTER_DAYS, exceptions, run_orders
from reconciliation.local_currency import LocalLine
from reconciliation.mapping import GLMapping
from reconciliation.matching import CATEGORIES
from reconciliation.model import LINE_COLUMNS, currency_decimals, format_minor
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError
from reconciliation.vouchers import ROLE_DEPOSIT
from reconciliation.xlsx_tables import (
    EXCEL_MAX_ROWS,
    EXCEL_MAX_STRING,
    NUMBER,
    Column,
    PendingRows,
    Styles,
    amount_cells,
    datetime_cells,
    float_cells,
    integer_cells,
    place_table,
    set_print_layout,
    splice_rows,
    text_cells,
)

SHEET_README = "Read me"
SHEET_SUMMARY = "Summary"
SHEET_CHECKS = "Checks"
SHEET_JOURNAL = "Journal"
SHEET_FEES = "Fees"
SHEET_RECONCILIATION = "Reconciliation"
SHEET_EXCEPTIONS = "Exceptions"
SHEET_VALIDATION = "Validation"
SHEET_ANOMALIES = "Anomalies"
SHEET_LINES = "Lines"
SHEET_NAMES = (
    SHEET_README,  # first: what each sheet holds and how a settlement is booked
    SHEET_SUMMARY,
    SHEET_CHECKS,  # the figures behind the Summary's checks
    SHEET_JOURNAL,
    SHEET_FEES,
    SHEET_RECONCILIATION,
    SHEET_EXCEPTIONS,
    SHEET_VALIDATION,
    SHEET_ANOMALIES,
    SHEET_LINES,
)

SUMMARY_HEADER_ROW = 3  # 0-based: title, generated-at and counts rows come first
# Up to this many lines in a run, the Lines sheet holds every line (filterable in Excel, written
# in a few seconds); above it, sums per day and fee type, and every line in the CSV beside it.
LINES_ON_SHEET = 100_000

# Styles (names in ``Styles``).
_HEADER, _TITLE, _BOLD, _WRAP = "header", "title", "bold", "wrap"
_DATETIME, _DATE, _SCORE = "datetime", "date", "score"
_BAD, _WARN = "bad", "warn"  # conditional formats
_README_HEADING, _README_TOPIC = "readme:heading", "readme:topic"

_XLSX_OPTIONS = {
    "in_memory": True,
    # Text from settlement files stays text: "=..." is not a formula, "http..." not a link.
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


class WorkbookError(ValueError):
    """The workbook cannot be written as asked (bad path or row limit)."""


@dataclass(frozen=True)
class WorkbookInfo:
    path: Path
    lines_file: Path | None = None  # every raw line of the run, when the Lines sheet holds sums


@dataclass(frozen=True)
class LinesPlacement:
    """Where one settlement's lines are on the Lines sheet (1-based rows, inclusive), and the side file."""

    settlement_id: str
    line_count: int
    first_row: int | None = None  # None: no rows on the sheet
    last_row: int | None = None
    lines_file: Path | None = None  # set when the sheet holds sums and every line is in this CSV

    def describe(self) -> str:
        if self.line_count == 0:
            return "no lines"
        rows = f"{SHEET_LINES} rows {self.first_row}-{self.last_row}" if self.first_row is not None else ""
        if self.lines_file is None:
            return rows
        return f"{self.line_count} lines in {self.lines_file.name}; " + (
            f"summed in {rows}" if rows else f"not on the {SHEET_LINES} sheet (row limit)"
        )


def write_workbook(
    outcomes: Sequence[SettlementOutcome],
    path: Path,
    *,
    file_errors: Sequence[SettlementFileError] = (),
    generated_at: datetime | None = None,
    max_rows: int = EXCEL_MAX_ROWS,
    lines_on_sheet: int = LINES_ON_SHEET,
    mapping: GLMapping | None = None,
    mapping_file: str = "",
    not_settled_after_days: int = DEFAULT_NOT_SETTLED_AFTER_DAYS,
) -> WorkbookInfo:
    """Write the run's workbook to ``path`` (.xlsx); ``max_rows`` is the sheet row limit incl. header.

    ``mapping`` (the run's GL mapping) gives the Summary its categories' descriptions; without it
    they come from the vouchers' lines, or are made from the category names. Exceptions name
    ``mapping_file`` as where rules for unmapped fee types go
    (``reconciliation.exceptions.mapping_file_in_home``) and list invoices not settled more than
    ``not_settled_after_days`` days before the day the workbook is generated.

    A run of more than ``lines_on_sheet`` lines (or more than fit below the header) gets its
    lines summed on the Lines sheet and every raw line in ``<stem>-lines.csv`` beside it.
    """
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise WorkbookError(f"workbook path {str(path)!r} must end in .xlsx")
    if not path.parent.is_dir():
        raise WorkbookError(f"workbook folder {str(path.parent)!r} does not exist")
    if not 2 <= max_rows <= EXCEL_MAX_ROWS:
        raise WorkbookError(f"max_rows must be between 2 and {EXCEL_MAX_ROWS}, got {max_rows}")
    _check_lines(outcomes)
    generated = _naive_utc(generated_at or datetime.now(UTC))  # a naive generated_at is taken as UTC
    all_lines = _lines_frame(outcomes)
    lines_file = (
        path.with_name(f"{path.stem}-lines.csv") if len(all_lines) > min(lines_on_sheet, max_rows - 1) else None
    )
    notes: list[str] = []
    sheet_lines = all_lines if lines_file is None else _fit(summed_lines(all_lines), SHEET_LINES, max_rows, 0, notes)
    placements = plan_lines(outcomes, sheet_lines["_outcome"].to_numpy(), lines_file)

    buffer = io.BytesIO()
    workbook = Workbook(buffer, _XLSX_OPTIONS)
    workbook.set_properties(
        {
            "title": "Amazon settlement run",
            "created": generated,
            "comments": "Times are UTC; amounts in each settlement's currency.",
        }
    )
    styles = _styles(workbook, [o.settlement.currency for o in outcomes])
    sheets = {name: workbook.add_worksheet(name) for name in SHEET_NAMES}
    pending = [
        (
            _write_lines(workbook, sheets[SHEET_LINES], styles, sheet_lines)
            if lines_file is None
            else _write_summed_lines(workbook, sheets[SHEET_LINES], styles, sheet_lines)
        ),
        _write_fees(workbook, sheets[SHEET_FEES], styles, all_lines, max_rows, notes),
        _write_reconciliation(workbook, sheets[SHEET_RECONCILIATION], styles, outcomes, max_rows, notes),
        _write_exceptions(
            workbook,
            sheets[SHEET_EXCEPTIONS],
            styles,
            exceptions(
                outcomes,
                today=generated.date(),
                mapping_file=mapping_file,
                not_settled_after_days=not_settled_after_days,
                file_errors=file_errors,
            ),
            max_rows,
            notes,
        ),
        _write_validation(workbook, sheets[SHEET_VALIDATION], styles, outcomes, max_rows, notes),
        _write_anomalies(workbook, sheets[SHEET_ANOMALIES], styles, outcomes, max_rows, notes),
    ]
    _write_journal(sheets[SHEET_JOURNAL], styles, outcomes)
    descriptions = {name: c.description for name, c in mapping.categories.items()} if mapping is not None else {}
    _write_summary(
        sheets[SHEET_SUMMARY],
        styles,
        outcomes,
        file_errors,
        generated,
        notes,
        lines_file,
        len(all_lines),
        descriptions,
    )
    _write_checks(sheets[SHEET_CHECKS], styles, outcomes, placements, lines_file)
    _write_read_me(sheets[SHEET_README], styles, outcomes)
    for name, sheet in sheets.items():
        set_print_layout(sheet, _PRINT_HEADER_ROWS.get(name, 0))
    workbook.close()

    # Each file is written beside its target and renamed, so a failure never leaves a half-written
    # one; the lines file first, so the workbook never links to a file that is not there.
    if lines_file is not None:
        with _replaced_atomically(lines_file) as partial:
            write_lines_csv(all_lines, partial)
    with _replaced_atomically(path) as partial:
        splice_rows(buffer.getvalue(), pending, partial)
    return WorkbookInfo(path, lines_file)


# The header row each sheet repeats on every printed page (0-based); the table sheets' is row 0.
_PRINT_HEADER_ROWS: dict[str, int | None] = {SHEET_README: None, SHEET_SUMMARY: SUMMARY_HEADER_ROW}


class _replaced_atomically:
    """``with _replaced_atomically(target) as partial:`` write ``partial``; it replaces ``target`` on success."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(f".{target.name}.partial")

    def __enter__(self) -> Path:
        return self.partial

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.partial.replace(self.target)
        finally:
            self.partial.unlink(missing_ok=True)


def _check_lines(outcomes: Sequence[SettlementOutcome]) -> None:
    for position, outcome in enumerate(outcomes):
        missing = [c for c in LINE_COLUMNS if c not in outcome.settlement.lines.columns]
        if missing:
            raise WorkbookError(
                f"outcome {position} (settlement {outcome.settlement.settlement_id}): lines lack "
                f"column(s) {', '.join(missing)}"
            )


# --- lines placement -----------------------------------------------------------------------


def plan_lines(
    outcomes: Sequence[SettlementOutcome], row_outcomes: np.ndarray, lines_file: Path | None
) -> list[LinesPlacement]:
    """Each settlement's rows on the Lines sheet; ``row_outcomes`` is the outcome index of every
    sheet row (rows of one outcome are contiguous and in outcome order)."""
    placements = []
    for index, outcome in enumerate(outcomes):
        first, last = np.searchsorted(row_outcomes, [index, index + 1])  # 0-based data rows [first, last)
        first_row, last_row = (int(first) + 2, int(last) + 1) if last > first else (None, None)  # header is row 1
        placements.append(
            LinesPlacement(
                outcome.settlement.settlement_id,
                outcome.settlement.line_count,
                first_row,
                last_row,
                lines_file=lines_file,
            )
        )
    return placements


# --- the lines of every settlement ---------------------------------------------------------


def _lines_frame(outcomes: Sequence[SettlementOutcome]) -> pd.DataFrame:
    """Every outcome's lines with currency, decimals, marketplace, GL category/account and placement."""
    parts: list[pd.DataFrame] = []
    for outcome in outcomes:
        settlement = outcome.settlement
        lines = settlement.lines
        count = len(lines)
        gl_category = pd.Series(pd.NA, index=lines.index, dtype="str")
        gl_account = gl_category
        mapped = outcome.mapped
        if mapped is not None and len(mapped.lines) == count:
            gl_category = pd.Series(mapped.lines["category"].to_numpy(), index=lines.index, dtype="str")
            gl_account = pd.Series(mapped.lines["account"].to_numpy(), index=lines.index, dtype="str")
        parts.append(
            lines.assign(
                currency=settlement.currency,
                _decimals=settlement.decimals,
                _settlement_marketplace=settlement.marketplace,
                gl_category=gl_category,
                gl_account=gl_account,
                _outcome=len(parts),
            )
        )
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in LINE_COLUMNS.items()})
        return empty.assign(
            currency="", _decimals=0, _settlement_marketplace="", gl_category="", gl_account="", _outcome=0
        )
    return pd.concat(parts, ignore_index=True)


def _line_sheet_columns() -> tuple[tuple[str, str], ...]:
    """(header, kind) of the Lines sheet and CSV: LINE_COLUMNS with the amount as a decimal
    followed by its currency, the posted date marked UTC, then the GL category and account."""
    columns: list[tuple[str, str]] = []
    for name in LINE_COLUMNS:
        if name == "amount_minor":
            columns += [("amount", "amount"), ("currency", "text")]
        elif name == "posted_date":
            columns.append(("posted_date (UTC)", "datetime"))
        elif name in ("line_no", "quantity"):
            columns.append((name, "integer"))
        else:
            columns.append((name, "text"))
    return (*columns, ("gl_category", "text"), ("gl_account", "text"))


LINE_SHEET_COLUMNS = _line_sheet_columns()


def _write_lines(workbook: Workbook, sheet: Worksheet, styles: Styles, lines: pd.DataFrame) -> PendingRows:
    columns = []
    for header, kind in LINE_SHEET_COLUMNS:
        if kind == "amount":
            columns.append(_amount_column(header, lines["amount_minor"], lines["_decimals"], lines["currency"]))
        elif kind == "datetime":
            columns.append(Column(header, datetime_cells(lines["posted_date"]), NUMBER, _DATETIME, 20))
        elif kind == "integer":
            columns.append(Column(header, integer_cells(lines[header]), NUMBER, None, 9))
        else:
            columns.append(Column(header, text_cells(lines[header]), width=_width(header)))
    return place_table(workbook, sheet, styles, columns, header_style=_HEADER)


def write_lines_csv(lines: pd.DataFrame, path: Path) -> None:
    """Every line, in the Lines sheet's columns, as UTF-8 CSV: amounts exact decimal text, times UTC.

    Built as an Arrow table and written with pyarrow's CSV writer: a million lines in about a
    second (pandas' ``to_csv`` takes ~10 s; gzip would add ~8 s, which is why it is plain CSV).
    """
    table = {}
    for header, kind in LINE_SHEET_COLUMNS:
        if kind == "amount":
            table[header] = pa.array(amount_cells(lines["amount_minor"], lines["_decimals"]))
        elif kind == "datetime":
            # Naive UTC in whole seconds (as in the file); Arrow's cast to text is "YYYY-MM-DD HH:MM:SS"
            # and ~10x faster than strftime.
            utc = pa.array(lines["posted_date"].dt.tz_convert("UTC").dt.tz_localize(None))
            table[header] = utc.cast(pa.timestamp("s"), safe=False).cast(pa.string())
        elif kind == "integer":
            table[header] = pa.array(pd.array(lines[header], dtype="Int64"))
        else:
            table[header] = pa.array(lines[header].astype("str"))
    pa_csv.write_csv(pa.table(table), path, pa_csv.WriteOptions(quoting_style="needed"))


_SUMMED_KEYS = [
    "_outcome",
    "settlement_id",
    "_day",
    "transaction_type",
    "amount_type",
    "amount_description",
    "marketplace_name",
    "gl_category",
    "gl_account",
]


def summed_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """The lines summed per settlement, posted day (UTC), transaction type, amount type and
    description, marketplace and GL category/account: count, exact sum, first and last line number.

    Sorted by outcome, then day and keys, so each settlement's rows are contiguous. The sums are
    exact at any size: each amount is split into its high and low 32 bits, whose int64 sums
    cannot wrap below 2**31 lines per group, and recombined as Python integers.
    """
    amounts = lines["amount_minor"].to_numpy(dtype=np.int64)
    keyed = lines.assign(
        _day=lines["posted_date"].dt.tz_convert("UTC").dt.floor("D"),
        _high=amounts >> _HALF,
        _low=amounts & _LOW_MASK,
        **{k: lines[k].astype("str").fillna("") for k in _SUMMED_KEYS[3:]},
    )
    summed = (
        keyed.groupby(_SUMMED_KEYS, sort=True, dropna=False)
        .agg(
            count=("amount_minor", "size"),
            first_line=("line_no", "min"),
            last_line=("line_no", "max"),
            currency=("currency", "first"),
            _decimals=("_decimals", "first"),
            _high=("_high", "sum"),
            _low=("_low", "sum"),
        )
        .reset_index()
    )
    total = [(int(high) << _HALF) + int(low) for high, low in zip(summed["_high"], summed["_low"])]
    return summed.drop(columns=["_high", "_low"]).assign(amount_minor=pd.Series(total, dtype=object))


_HALF, _LOW_MASK = 32, 0xFFFFFFFF


def exact_sum(amounts: np.ndarray) -> int:
    """The exact sum of int64 minor units as a Python integer (the halves' int64 sums cannot wrap)."""
    return (int((amounts >> _HALF).sum()) << _HALF) + int((amounts & _LOW_MASK).sum())


def _exact_amount_cells(amount_minor: pd.Series, decimals: pd.Series) -> pd.Series:
    """Decimal literals of Python-integer minor units (sums beyond int64 included); a few rows only."""

    def text(minor: int, places: int) -> str:
        whole, fraction = divmod(abs(int(minor)), 10**places)
        return ("-" if minor < 0 else "") + str(whole) + (f".{fraction:0{places}d}" if places else "")

    return pd.Series([text(m, int(d)) for m, d in zip(amount_minor, decimals)], index=amount_minor.index, dtype="str")


def _write_summed_lines(workbook: Workbook, sheet: Worksheet, styles: Styles, summed: pd.DataFrame) -> PendingRows:
    columns = [
        Column("settlement_id", text_cells(summed["settlement_id"]), width=_width("settlement_id")),
        Column("posted day (UTC)", datetime_cells(summed["_day"]), NUMBER, _DATE, 12),
        Column("transaction_type", text_cells(summed["transaction_type"]), width=20),
        Column("amount_type", text_cells(summed["amount_type"]), width=20),
        Column("amount_description", text_cells(summed["amount_description"]), width=_width("amount_description")),
        Column("marketplace_name", text_cells(summed["marketplace_name"]), width=_width("marketplace_name")),
        Column("gl_category", text_cells(summed["gl_category"]), width=24),
        Column("gl_account", text_cells(summed["gl_account"]), width=12),
        Column("lines", integer_cells(summed["count"]), NUMBER, None, 9),
        Column(
            "amount",
            _exact_amount_cells(summed["amount_minor"], summed["_decimals"]),
            NUMBER,
            _amount_style_series(summed["currency"]),
            15,
        ),
        Column("currency", text_cells(summed["currency"]), width=9),
        Column("first line_no", integer_cells(summed["first_line"]), NUMBER, None, 11),
        Column("last line_no", integer_cells(summed["last_line"]), NUMBER, None, 11),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=_HEADER)


# --- fees ------------------------------------------------------------------------------------

_FEE_KEYS = [
    "currency",
    "_settlement_marketplace",
    "transaction_type",
    "amount_type",
    "amount_description",
    "gl_category",
]


def _write_fees(
    workbook: Workbook, sheet: Worksheet, styles: Styles, lines: pd.DataFrame, max_rows: int, notes: list[str]
) -> PendingRows:
    grouped = (
        lines.assign(gl_category=lines["gl_category"].fillna(""))
        .groupby(_FEE_KEYS, sort=True, dropna=False)
        .agg(total_minor=("amount_minor", "sum"), count=("amount_minor", "size"), decimals=("_decimals", "first"))
        .reset_index()
    )
    grouped = _fit(grouped, SHEET_FEES, max_rows, 0, notes)
    columns = [
        Column("Marketplace", text_cells(grouped["_settlement_marketplace"]), width=16),
        Column("Currency", text_cells(grouped["currency"]), width=9),
        Column("Transaction type", text_cells(grouped["transaction_type"]), width=20),
        Column("Amount type", text_cells(grouped["amount_type"]), width=20),
        Column("Amount description", text_cells(grouped["amount_description"]), width=34),
        Column("GL category", text_cells(grouped["gl_category"]), width=24),
        _amount_column("Sum", grouped["total_minor"], grouped["decimals"], grouped["currency"]),
        Column("Count", integer_cells(grouped["count"]), NUMBER, width=9),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=_HEADER)


# --- reconciliation --------------------------------------------------------------------------


def _write_reconciliation(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    max_rows: int,
    notes: list[str],
) -> PendingRows:
    """One row per order and settlement; an invoice no settlement settled once per run
    (``listed_once``), under the oldest settlement whose window holds its date."""
    orders = run_orders(outcomes)
    if orders is None:
        orders = pd.DataFrame(
            {
                **{c: pd.Series(dtype="str") for c in _RECONCILIATION_TEXT},
                **{c: pd.Series(dtype="int64") for c in _RECONCILIATION_NUMBERS},
                "invoice_date": pd.Series(dtype="datetime64[us]"),
            }
        )
    orders = _fit(orders, SHEET_RECONCILIATION, max_rows, 0, notes)
    decimals, currency = orders["decimals"], orders["currency"]
    columns = [
        Column("Settlement ID", text_cells(orders["settlement_id"]), width=14),
        Column("Currency", text_cells(currency), width=9),
        Column("Order ID", text_cells(orders["order_id"]), width=22),
        Column("Category", text_cells(orders["category"]), width=22),
        _amount_column("Settled", orders["settled_minor"], decimals, currency),
        _amount_column("Invoiced", orders["invoiced_minor"], decimals, currency),
        _amount_column("Difference", orders["difference_minor"], decimals, currency),
        # Within it an order is matched; shown beside the difference it is judged by.
        _amount_column("Tolerance", orders["tolerance_minor"], decimals, currency),
        _amount_column("Refunded", orders["refunded_minor"], decimals, currency),
        _amount_column("Credited", orders["credited_minor"], decimals, currency),
        Column("M3 orders", text_cells(orders["m3_orders"]), width=16),
        Column("M3 invoices", text_cells(orders["invoices"]), width=16),
        Column("Invoice date", datetime_cells(orders["invoice_date"]), NUMBER, _DATE, 12),
        # The settlement(s) the order's sale is in: this one, another of the run, or an earlier run's.
        Column("Settled in", text_cells(orders["settled_in"]), width=16),
    ]
    pending = place_table(workbook, sheet, styles, columns, header_style=_HEADER)
    last = max(len(orders), 1)
    # Differences beyond the tolerance and non-matched orders stand out without any filter.
    sheet.conditional_format(
        1, 6, last, 6, {"type": "formula", "criteria": "=ABS($G2)>$H2", "format": styles.get(_BAD)}
    )
    sheet.conditional_format(
        1, 3, last, 3, {"type": "formula", "criteria": '=AND($D2<>"",$D2<>"matched")', "format": styles.get(_WARN)}
    )
    return pending


_RECONCILIATION_TEXT = ("settlement_id", "currency", "order_id", "category", "m3_orders", "invoices", "settled_in")
_RECONCILIATION_NUMBERS = (
    "decimals",
    "settled_minor",
    "invoiced_minor",
    "difference_minor",
    "tolerance_minor",
    "refunded_minor",
    "credited_minor",
)


# --- exceptions ------------------------------------------------------------------------------


def _write_exceptions(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    rows: pd.DataFrame,
    max_rows: int,
    notes: list[str],
) -> PendingRows:
    """``rows``: ``reconciliation.exceptions.exceptions`` (one row per thing that needs a person)."""
    rows = _fit(rows, SHEET_EXCEPTIONS, max_rows, 0, notes)
    currency = rows["currency"]
    decimals = currency.map(lambda c: currency_decimals(c) if c else 2).astype("int64")
    columns = [
        Column("Settlement ID", text_cells(rows["settlement_id"]), width=14),
        Column("Kind", text_cells(rows["kind"]), width=30),
        Column("Order, fee type or file", text_cells(rows["reference"]), width=30),
        Column("What", text_cells(rows["what"]), style=_WRAP, width=70),
        _optional_amount_column("Amount", rows["amount_minor"], decimals, currency),
        Column("Currency", text_cells(currency), width=9),
        Column("Next step", text_cells(rows["next_step"]), style=_WRAP, width=80),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=_HEADER)


# --- validation and anomalies ----------------------------------------------------------------


def _write_validation(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    max_rows: int,
    notes: list[str],
) -> PendingRows:
    parts = [
        o.validation.failure_cases.assign(settlement_id=o.settlement.settlement_id)
        for o in outcomes
        if o.validation is not None and len(o.validation.failure_cases)
    ]
    cases = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["settlement_id", "source", "line", "column", "check", "value"])
    )
    cases = _fit(cases, SHEET_VALIDATION, max_rows, 0, notes)
    columns = [
        Column("Settlement ID", text_cells(cases["settlement_id"]), width=14),
        Column("File", text_cells(cases["source"]), width=24),
        Column("Line", integer_cells(cases["line"]), NUMBER, width=8),
        Column("Column", text_cells(cases["column"]), width=22),
        Column("Check", text_cells(cases["check"]), width=40),
        Column("Value", text_cells(cases["value"]), width=30),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=_HEADER)


def _write_anomalies(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    max_rows: int,
    notes: list[str],
) -> PendingRows:
    parts = [
        o.anomalies.assign(settlement_id=o.settlement.settlement_id)
        for o in outcomes
        if o.anomalies is not None and len(o.anomalies)
    ]
    anomalies = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["settlement_id", "order_id", "sku", "kind", "score", "reasons"])
    )
    anomalies = anomalies.assign(score=pd.to_numeric(anomalies["score"], errors="coerce").astype("float64"))
    anomalies = anomalies.sort_values("score", ascending=False, na_position="last", kind="stable")
    anomalies = _fit(anomalies, SHEET_ANOMALIES, max_rows, 0, notes)
    columns = [
        Column("Score", float_cells(anomalies["score"]), NUMBER, _SCORE, 8),
        Column("Settlement ID", text_cells(anomalies["settlement_id"]), width=14),
        Column("Order ID", text_cells(anomalies["order_id"]), width=22),
        Column("SKU", text_cells(anomalies["sku"]), width=18),
        Column("Kind", text_cells(anomalies["kind"]), width=20),
        Column("Reasons", text_cells(anomalies["reasons"].map(_reason_text)), width=90),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=_HEADER)


def _reason_text(reasons: object) -> str:
    if isinstance(reasons, (list, tuple, np.ndarray)):
        return "; ".join(str(r) for r in reasons)
    return "" if reasons is None or (isinstance(reasons, float) and np.isnan(reasons)) else str(reasons)


# --- journal ---------------------------------------------------------------------------------

_JOURNAL_HEADERS = [
    "Settlement ID",
    "Voucher key",
    "Accounting date",
    "M3 voucher",
    "Currency",
    "Account (AIT1)",
    "AIT2",
    "AIT3",
    "AIT4",
    "AIT5",
    "AIT6",
    "AIT7",
    "Category",
    "Description",
    "Role",
    "Debit",
    "Credit",
    "Debit - credit",
]
_JOURNAL_WIDTHS = [14, 24, 14, 18, 9, 14, 8, 8, 8, 8, 8, 8, 30, 40, 11, 14, 14, 14]
_DEBIT = _JOURNAL_HEADERS.index("Debit")
_CREDIT = _JOURNAL_HEADERS.index("Credit")
# The voucher's audit record on each of its rows, after the amounts: (header, width, value).
_JOURNAL_AUDIT_COLUMNS: tuple[tuple[str, int, Callable[[AuditRecord], str | int]], ...] = (
    ("File SHA-256", 66, lambda a: a.source_sha256),
    ("Mapping", 18, lambda a: a.mapping_name),
    ("Mapping SHA-256", 66, lambda a: a.mapping_sha256),
    ("Tool version", 12, lambda a: a.tool_version),
    ("Key version", 11, lambda a: a.key_version),
)
_JOURNAL_AUDIT = len(_JOURNAL_HEADERS)  # the first audit column
# What M3 booked in the division's local currency (read back after posting), after the audit record.
_JOURNAL_LOCAL_COLUMNS: tuple[tuple[str, int], ...] = (
    ("M3 division", 11),
    ("Rate type", 9),
    ("Rate", 12),
    ("Local debit", 16),
    ("Local credit", 16),
)
_JOURNAL_LOCAL = _JOURNAL_AUDIT + len(_JOURNAL_AUDIT_COLUMNS)  # the first local-currency column
_LOCAL_AMOUNT, _RATE = "local_amount", "rate"
# The line's M3 VAT code (from the marketplace's tax profile), after the local-currency columns.
_JOURNAL_VAT_CODE = _JOURNAL_LOCAL + len(_JOURNAL_LOCAL_COLUMNS)


def _write_audit(sheet: Worksheet, row: int, audit: AuditRecord | None, style: Format | None = None) -> None:
    if audit is None:  # a voucher made before its audit record could be (a failure): cells left empty
        return
    for offset, (_header, _width, value) in enumerate(_JOURNAL_AUDIT_COLUMNS):
        cell = value(audit)
        if isinstance(cell, int):
            sheet.write_number(row, _JOURNAL_AUDIT + offset, cell, style)
        else:
            sheet.write_string(row, _JOURNAL_AUDIT + offset, cell, style)


def _write_local(sheet: Worksheet, styles: Styles, row: int, division: str, line: LocalLine | None) -> None:
    """The division, and the line's rate type, rate and local amount as M3 booked them."""
    if division:
        sheet.write_string(row, _JOURNAL_LOCAL, division)
    if line is None:
        return
    if line.rate_type is not None:
        sheet.write_number(row, _JOURNAL_LOCAL + 1, line.rate_type)
    if line.rate is not None:
        sheet.write_number(row, _JOURNAL_LOCAL + 2, line.rate, styles.get(_RATE, {"num_format": "0.000000"}))
    money = styles.get(_LOCAL_AMOUNT, {"num_format": "#,##0.00"})
    if line.local_amount > 0:
        sheet.write_number(row, _JOURNAL_LOCAL + 3, line.local_amount, money)
    elif line.local_amount < 0:
        sheet.write_number(row, _JOURNAL_LOCAL + 4, -line.local_amount, money)


def _write_journal(sheet: Worksheet, styles: Styles, outcomes: Sequence[SettlementOutcome]) -> None:
    """Every voucher line, then a total row per voucher: SUBTOTAL formulas with their values cached.
    A voucher read back from M3 also shows its division, each line's rate and local amounts, and
    the rounding lines M3 added (local currency only) before its total row."""
    header = styles.get(_HEADER)
    titles = [
        *_JOURNAL_HEADERS,
        *(c[0] for c in _JOURNAL_AUDIT_COLUMNS),
        *(c[0] for c in _JOURNAL_LOCAL_COLUMNS),
        "VAT code",
    ]
    widths = [*_JOURNAL_WIDTHS, *(c[1] for c in _JOURNAL_AUDIT_COLUMNS), *(c[1] for c in _JOURNAL_LOCAL_COLUMNS), 9]
    for index, (title, width) in enumerate(zip(titles, widths)):
        sheet.set_column(index, index, width)
        sheet.write_string(0, index, title, header)
    sheet.freeze_panes(1, 0)
    row = 1
    debit_col, credit_col = _column_letter(_DEBIT), _column_letter(_CREDIT)
    for outcome in outcomes:
        m3_refs = {p.key: p.m3_ref for p in outcome.posted}
        booked = {p.key: p.local for p in outcome.posted if p.local is not None}
        for voucher in outcome.vouchers:
            money = styles.get(_amount_style(voucher.currency))
            total = styles.get(_total_style(voucher.currency))
            head = [outcome.settlement.settlement_id, voucher.key]
            audit = outcome.audits.get(voucher.key)
            local = booked.get(voucher.key)
            # Not read back this run (posted earlier): the division is the first part of M3's reference.
            division = local.division if local is not None else m3_refs.get(voucher.key, "").split("/")[0]
            # M3 keeps the lines in the order they were sent; pair them only when it holds them all.
            sent = local.sent_lines if local is not None else ()
            paired = sent if len(sent) == len(voucher.lines) else (None,) * len(voucher.lines)
            first = row
            for line, local_line in zip(voucher.lines, paired):
                sheet.write_row(row, 0, head)
                _write_audit(sheet, row, audit)
                _write_local(sheet, styles, row, division, local_line)
                if line.vat_code:
                    sheet.write_string(row, _JOURNAL_VAT_CODE, line.vat_code)
                sheet.write_datetime(row, 2, _as_datetime(voucher.accounting_date), styles.get(_DATE))
                sheet.write_row(
                    row,
                    3,
                    [
                        m3_refs.get(voucher.key, ""),
                        voucher.currency,
                        line.account,
                        *line.dimensions,
                        line.category,
                        _cell_text(line.description),
                        line.role,
                    ],
                )
                if line.amount_minor > 0:
                    sheet.write_number(row, _DEBIT, _decimal(line.amount_minor, voucher.decimals), money)
                elif line.amount_minor < 0:
                    sheet.write_number(row, _CREDIT, _decimal(-line.amount_minor, voucher.decimals), money)
                row += 1
            for added in local.added_lines if local is not None else ():
                sheet.write_row(row, 0, head)
                _write_audit(sheet, row, audit)
                _write_local(sheet, styles, row, division, added)
                sheet.write_datetime(row, 2, _as_datetime(voucher.accounting_date), styles.get(_DATE))
                sheet.write_row(
                    row,
                    3,
                    [
                        m3_refs.get(voucher.key, ""),
                        voucher.currency,
                        *added.dimensions,
                        *("",) * (7 - len(added.dimensions)),
                        "fx_rounding",
                        "Currency rounding booked by M3 (local currency only)",
                        "rounding",
                    ],
                )
                row += 1
            last = row - 1
            bold = styles.get(_BOLD)
            sheet.write_row(row, 0, head, bold)
            _write_audit(sheet, row, audit, bold)
            sheet.write_datetime(row, 2, _as_datetime(voucher.accounting_date), styles.get(_DATE))
            sheet.write_row(row, 3, [m3_refs.get(voucher.key, ""), voucher.currency], bold)
            sheet.write_string(row, 13, f"Total {voucher.key}", bold)
            sheet.write_string(row, 14, "total", bold)
            if division:
                sheet.write_string(row, _JOURNAL_LOCAL, division, bold)
            if local is not None:
                local_total = styles.get(f"{_LOCAL_AMOUNT}:total", {"num_format": "#,##0.00", "bold": True, "top": 1})
                sheet.write_number(row, _JOURNAL_LOCAL + 3, local.local_debit, local_total)
                sheet.write_number(row, _JOURNAL_LOCAL + 4, local.local_credit, local_total)
            debit, credit = voucher.debit_minor, voucher.credit_minor
            sheet.write_formula(
                row,
                _DEBIT,
                f"=SUBTOTAL(9,{debit_col}{first + 1}:{debit_col}{last + 1})",
                total,
                _decimal(debit, voucher.decimals),
            )
            sheet.write_formula(
                row,
                _CREDIT,
                f"=SUBTOTAL(9,{credit_col}{first + 1}:{credit_col}{last + 1})",
                total,
                _decimal(credit, voucher.decimals),
            )
            sheet.write_formula(
                row,
                _CREDIT + 1,
                f"={debit_col}{row + 1}-{credit_col}{row + 1}",
                total,
                _decimal(debit - credit, voucher.decimals),
            )
            row += 1
    sheet.autofilter(0, 0, max(row - 1, 1), len(titles) - 1)


# --- summary ---------------------------------------------------------------------------------

_CATEGORY_LABELS = {
    "matched": "Matched",
    "amount_mismatch": "Amount mismatch",
    "missing_in_m3": "Missing in M3",
    "not_settled": "Not settled (M3 only)",
    "refund_without_credit": "Refund without credit",
}
# The Summary's table: what an accountant scans first, narrow enough to print on a landscape
# page together with the settlement blocks below it (which share its first columns).
_SUMMARY_COLUMNS = [
    ("Settlement ID", 14),
    ("Marketplace and period (UTC)", 28),
    ("Deposit date (UTC)", 12),
    ("Total (deposit)", 15),
    ("Status", 13),
    ("M3 voucher numbers", 14),
    ("Checks", 14),
    ("Reconciliation", 15),
    ("Reasons", 30),
]
SUMMARY_HEADERS = [name for name, _ in _SUMMARY_COLUMNS]
_LINE_POINTS = 15.0  # the height of one line of 11-point text


def _row_height(cells: Sequence[tuple[str, float]]) -> float:
    """Points for a row whose wrapped cells (text, column width) show every line: LibreOffice does
    not grow a row to its wrapped text when it opens an .xlsx, so the rows would overlap."""

    def lines(text: str, width: float) -> int:
        per_line = max(int(width * 1.15), 1)  # text is narrower than the "0" a width counts
        return sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))

    return _LINE_POINTS * max([1, *(lines(text, width) for text, width in cells)])


# The Checks sheet: per settlement, the figures behind the Summary's "Checks" (the differences are
# formulas), the reconciliation counts, the file it came from and where its lines are.
_CHECKS_COLUMNS = [
    ("Settlement ID", 14),
    ("File", 22),
    ("Format", 7),
    ("Currency", 9),
    ("Start (UTC)", 19),
    ("End (UTC)", 19),
    ("Total (deposit)", 15),
    ("Lines", 8),
    ("Sum of lines", 15),
    ("Sum of lines - total", 15),
    ("Voucher debits", 15),
    ("Voucher credits", 15),
    ("Debits - credits", 15),
    ("Deposit line", 15),
    ("Deposit line - total", 15),
    ("Checks", 30),
    ("Voucher keys", 26),
    *[(_CATEGORY_LABELS.get(c, c), 11) for c in CATEGORIES],
    ("Lines written to", 40),
]
CHECKS_HEADERS = [name for name, _ in _CHECKS_COLUMNS]
# Each difference column is a formula: the first column minus the second.
_DIFFERENCES = {
    "Sum of lines - total": ("Sum of lines", "Total (deposit)"),
    "Debits - credits": ("Voucher debits", "Voucher credits"),
    "Deposit line - total": ("Deposit line", "Total (deposit)"),
}
_DIFFERENCE_COLUMNS = [CHECKS_HEADERS.index(n) for n in _DIFFERENCES]
_DIFFERENCE_FORMULAS = {
    CHECKS_HEADERS.index(n): (CHECKS_HEADERS.index(a), CHECKS_HEADERS.index(b)) for n, (a, b) in _DIFFERENCES.items()
}


@dataclass(frozen=True)
class CheckFigures:
    """The Summary's check figures of one settlement, in minor units (None: no vouchers)."""

    lines_minor: int
    debit_minor: int | None
    credit_minor: int | None
    deposit_line_minor: int | None

    @classmethod
    def of(cls, outcome: SettlementOutcome) -> CheckFigures:
        lines = exact_sum(outcome.settlement.lines["amount_minor"].to_numpy(dtype=np.int64))
        if not outcome.vouchers:
            return cls(lines, None, None, None)
        return cls(
            lines,
            sum(v.debit_minor for v in outcome.vouchers),
            sum(v.credit_minor for v in outcome.vouchers),
            sum(v.deposit_minor for v in outcome.vouchers),
        )

    def problems(self, total_minor: int, decimals: int) -> list[str]:
        found = []
        if self.lines_minor != total_minor:
            found.append(f"lines differ from total by {format_minor(self.lines_minor - total_minor, decimals)}")
        if self.debit_minor is None or self.credit_minor is None or self.deposit_line_minor is None:
            return found + ["no vouchers"]  # all three are None together
        if self.debit_minor != self.credit_minor:
            difference = format_minor(self.debit_minor - self.credit_minor, decimals)
            found.append(f"debits differ from credits by {difference}")
        if self.deposit_line_minor != total_minor:
            found.append(
                f"deposit line differs from total by {format_minor(self.deposit_line_minor - total_minor, decimals)}"
            )
        return found


def _write_summary(
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    file_errors: Sequence[SettlementFileError],
    generated: datetime,
    notes: Sequence[str],
    lines_file: Path | None,
    line_count: int,
    descriptions: Mapping[str, str],
) -> None:
    sheet.write_string(0, 0, "Amazon settlement run", styles.get(_TITLE))
    sheet.write_string(1, 0, "Generated (UTC)")
    sheet.write_datetime(1, 1, generated, styles.get(_DATETIME))
    counts = pd.Series([STATUS_WORDS.get(o.status, o.status) for o in outcomes], dtype="str").value_counts()
    status_text = ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"
    sheet.write_string(
        2,
        0,
        f"{len(outcomes)} settlement(s): {status_text}; {len(file_errors)} file error(s) (see {SHEET_EXCEPTIONS}); "
        f"the figures behind each check are on the {SHEET_CHECKS} sheet",
    )
    header = styles.get(_HEADER)
    for index, title in enumerate(SUMMARY_HEADERS):
        sheet.set_column(index, index, _SUMMARY_WIDTHS[index])
        sheet.write_string(SUMMARY_HEADER_ROW, index, title, header)
    sheet.set_row(SUMMARY_HEADER_ROW, _row_height(list(zip(SUMMARY_HEADERS, _SUMMARY_WIDTHS))))
    sheet.freeze_panes(SUMMARY_HEADER_ROW + 1, 1)
    row = SUMMARY_HEADER_ROW + 1
    for outcome in outcomes:
        _write_summary_row(sheet, styles, row, outcome)
        row += 1
    last = max(row - 1, SUMMARY_HEADER_ROW + 1)
    sheet.autofilter(SUMMARY_HEADER_ROW, 0, last, len(_SUMMARY_COLUMNS) - 1)
    _warn_unless_ok(sheet, styles, SUMMARY_HEADER_ROW + 1, last, SUMMARY_HEADERS.index("Checks"))
    row = last + 2
    if lines_file is not None:
        _link_lines_file(
            sheet,
            row,
            0,
            lines_file,
            f"All {line_count} lines of this run are in {lines_file.name} beside this workbook (CSV, "
            f"exact amounts); the {SHEET_LINES} sheet sums them per settlement, day and fee type.",
        )
        row += 1
    for note in notes:
        sheet.write_string(row, 0, _cell_text(note))
        row += 1
    row += 1
    first_block = row
    for outcome in outcomes:
        row = _write_settlement_block(sheet, styles, row, outcome, descriptions) + 1
    if outcomes:
        _write_currency_totals(sheet, styles, row, CurrencyTotals.of(outcomes), (first_block, row - 1))


def _warn_unless_ok(sheet: Worksheet, styles: Styles, first: int, last: int, column: int) -> None:
    sheet.conditional_format(
        first, column, last, column, {"type": "cell", "criteria": "!=", "value": '"OK"', "format": styles.get(_WARN)}
    )


def _check_words(outcome: SettlementOutcome) -> str:
    """ "OK", or what failed, in words: the Summary's and the Checks sheet's "Checks"."""
    problems = CheckFigures.of(outcome).problems(outcome.settlement.total_minor, outcome.settlement.decimals)
    return "OK" if not problems else "; ".join(problems)


def _reconciliation_words(outcome: SettlementOutcome) -> str:
    """The reconciliation's counts in words ("3 matched, 1 amount mismatch"), or why it was skipped."""
    if outcome.reconciliation is None:
        return "Skipped: " + (outcome.reconciliation_skipped_reason or "not reconciled")
    counts = outcome.reconciliation.counts
    labels = {c: _CATEGORY_LABELS.get(c, c) for c in CATEGORIES}
    words = [f"{counts[c]} {labels[c][:1].lower()}{labels[c][1:]}" for c in CATEGORIES if counts.get(c)]
    return ", ".join(words) or "No orders to reconcile"


def _write_summary_row(sheet: Worksheet, styles: Styles, row: int, outcome: SettlementOutcome) -> None:
    settlement = outcome.settlement
    wrap = styles.get(_WRAP)
    start, end = (_naive_utc(t).strftime("%Y-%m-%d") for t in (settlement.start, settlement.end))
    texts = {
        "Settlement ID": settlement.settlement_id,
        "Marketplace and period (UTC)": f"{settlement.marketplace}, {settlement.currency}\n{start} to {end}",
        "Status": STATUS_WORDS.get(outcome.status, outcome.status),
        "M3 voucher numbers": "\n".join(
            [
                *(f"{p.m3_ref}{' (already posted)' if p.already_posted else ''}" for p in outcome.posted),
                *(f"batch {b.batch} (submitted, not booked yet)" for b in outcome.submitted),
            ]
        ),
        "Checks": _check_words(outcome),
        "Reconciliation": _reconciliation_words(outcome),
        "Reasons": _cell_text("\n".join(outcome.reasons)),
    }
    for name, text in texts.items():
        if text:
            sheet.write_string(row, SUMMARY_HEADERS.index(name), text, wrap)
    sheet.set_row(row, _row_height([(text, _SUMMARY_WIDTHS[SUMMARY_HEADERS.index(n)]) for n, text in texts.items()]))
    # at the top of the row, beside the first line of the wrapped texts
    top_date = styles.get(f"{_DATE}:top", {"num_format": "yyyy-mm-dd", "valign": "top"})
    sheet.write_datetime(
        row, SUMMARY_HEADERS.index("Deposit date (UTC)"), _naive_utc(settlement.deposit_date), top_date
    )
    currency = settlement.currency
    top_money = styles.get(
        f"{_amount_style(currency)}:top", {"num_format": currency_number_format(currency), "valign": "top"}
    )
    total = _decimal(settlement.total_minor, settlement.decimals)
    sheet.write_number(row, SUMMARY_HEADERS.index("Total (deposit)"), total, top_money)


# --- checks ----------------------------------------------------------------------------------


def _write_checks(
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    placements: Sequence[LinesPlacement],
    lines_file: Path | None,
) -> None:
    header = styles.get(_HEADER)
    for index, (title, width) in enumerate(_CHECKS_COLUMNS):
        sheet.set_column(index, index, width)
        sheet.write_string(0, index, title, header)
    sheet.set_row(0, _row_height([(title, float(width)) for title, width in _CHECKS_COLUMNS]))
    sheet.freeze_panes(1, 1)
    row = 1
    for outcome, placement in zip(outcomes, placements):
        _write_checks_row(sheet, styles, row, outcome, placement)
        if lines_file is not None and placement.line_count:
            _link_lines_file(sheet, row, CHECKS_HEADERS.index("Lines written to"), lines_file, placement.describe())
        row += 1
    last = max(row - 1, 1)
    sheet.autofilter(0, 0, last, len(_CHECKS_COLUMNS) - 1)
    for column in _DIFFERENCE_COLUMNS:
        sheet.conditional_format(
            1, column, last, column, {"type": "cell", "criteria": "!=", "value": 0, "format": styles.get(_BAD)}
        )
    _warn_unless_ok(sheet, styles, 1, last, CHECKS_HEADERS.index("Checks"))


def _link_lines_file(sheet: Worksheet, row: int, column: int, lines_file: Path, text: str) -> None:
    """A relative link to the lines file: it works wherever the two files are moved together."""
    sheet.write_url(row, column, f"external:{lines_file.name}", string=_cell_text(text))


def _write_checks_row(
    sheet: Worksheet, styles: Styles, row: int, outcome: SettlementOutcome, placement: LinesPlacement
) -> None:
    settlement = outcome.settlement
    decimals = settlement.decimals
    money = styles.get(_amount_style(settlement.currency))
    when = styles.get(_DATETIME)
    figures = CheckFigures.of(outcome)
    counts = outcome.reconciliation.counts if outcome.reconciliation is not None else {}

    def amount(minor: int | None) -> Decimal | None:
        return None if minor is None else _decimal(minor, decimals)

    def minus(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else a - b

    values: list[object] = [
        settlement.settlement_id,
        settlement.source,
        settlement.format,
        settlement.currency,
        _naive_utc(settlement.start),
        _naive_utc(settlement.end),
        amount(settlement.total_minor),
        settlement.line_count,
        amount(figures.lines_minor),
        amount(figures.lines_minor - settlement.total_minor),
        amount(figures.debit_minor),
        amount(figures.credit_minor),
        amount(minus(figures.debit_minor, figures.credit_minor)),
        amount(figures.deposit_line_minor),
        amount(minus(figures.deposit_line_minor, settlement.total_minor)),
        _check_words(outcome),
        "\n".join(v.key for v in outcome.vouchers),
        *[counts.get(c) if outcome.reconciliation is not None else None for c in CATEGORIES],
        placement.describe(),
    ]
    for column, value in enumerate(values):
        if value is None or value == "":
            continue
        if isinstance(value, datetime):
            sheet.write_datetime(row, column, value, when)
        elif isinstance(value, Decimal) and column in _DIFFERENCE_FORMULAS:
            first, second = _DIFFERENCE_FORMULAS[column]
            sheet.write_formula(row, column, f"={_cell(row, first)}-{_cell(row, second)}", money, value)
        elif isinstance(value, Decimal):
            sheet.write_number(row, column, value, money)
        elif isinstance(value, int):
            sheet.write_number(row, column, value)
        else:
            sheet.write_string(row, column, str(value), styles.get(_WRAP) if "\n" in str(value) else None)
    wrapped = [(v, float(_CHECKS_COLUMNS[i][1])) for i, v in enumerate(values) if isinstance(v, str) and "\n" in v]
    if wrapped:  # one line per voucher key: the row as tall as them
        sheet.set_row(row, _row_height(wrapped))


# --- summary: one block per settlement that ties to its deposit, totals per currency ---------

# A settlement's status as the Summary says it.
STATUS_WORDS: dict[str, str] = {
    "posted": "Posted to M3",
    "dry_run": "Checked, not posted (dry run)",
    "held": "Held: not posted",
    "duplicate": "Already in M3",
    "submitted": "Submitted to M3, not booked yet",
    "invalid": "File cannot be read",
    "failed": "Failed: see the log",
}

# The items of a settlement block, in this order; a category not named here is "Other".
_ITEM_SALES, _ITEM_OTHER = "Sales", "Other"
_ITEMS: tuple[tuple[str, frozenset[str]], ...] = (
    (_ITEM_SALES, frozenset({"principal"})),
    ("Shipping", frozenset({"shipping"})),
    (
        "Tax",
        frozenset(
            {
                "tax",
                "marketplace_facilitator_tax",
                "sales_tax_adjustments",
                "facilitator_tax_clearing",
                "input_tax",
                "withholding_tax",
                "sales_returns_tax",
            }
        ),
    ),
    ("Promotions", frozenset({"promotions"})),
    ("Refunds", frozenset({"refunds", "sales_returns"})),
    (
        "Amazon fees",
        frozenset(
            {
                "referral_commission",
                "fba_fulfilment_fees",
                "other_selling_fees",
                "refund_commission",
                "advertising",
                "subscription",
                "storage",
                "removal",
                "liquidation_fees",
                "promotion_fees",
                "outbound_freight",
            }
        ),
    ),
    ("Reserves", frozenset({"reserves"})),
    ("Reimbursements", frozenset({"reimbursements"})),
    (_ITEM_OTHER, frozenset()),
)
_ITEM_ORDER = {name: index for index, (name, _) in enumerate(_ITEMS)}
_ITEM_OF = {category: name for name, categories in _ITEMS for category in categories}
_NOT_MAPPED = "Not mapped to an account yet (see Exceptions)"

_TOTAL_OF_ITEMS = "Total of the items"
_AMAZON_TOTAL = "Total Amazon reported"
_DEPOSIT_LINE = "Deposit line of the vouchers"
_CHECK_TOTAL = "Check: items - Amazon's total"
_CHECK_DEPOSIT = "Check: items - deposit line"


@dataclass(frozen=True)
class SummaryColumn:
    """One column of the Summary's settlement blocks and currency totals."""

    header: str
    width: float


BLOCK_COLUMNS = (
    SummaryColumn("Item", 28),  # "Deposit line of the vouchers" in bold
    SummaryColumn("Description", 38),  # wrapped beyond
    SummaryColumn("M3 account", 11),
    SummaryColumn("Amount", 15),
    SummaryColumn("Currency", 9),
    SummaryColumn("Lines", 8),
)
BLOCK_HEADERS = [c.header for c in BLOCK_COLUMNS]
# The Summary's columns: its table and the blocks below share the first ones, wide enough for both.
_SUMMARY_WIDTHS = [
    max([width, *(c.width for c in BLOCK_COLUMNS[index : index + 1])])
    for index, (_, width) in enumerate(_SUMMARY_COLUMNS)
]


def _write_description(sheet: Worksheet, styles: Styles, row: int, text: str) -> None:
    """A block row's description, wrapped, and the row as tall as it."""
    sheet.write_string(row, _DESCRIPTION, _cell_text(text), styles.get(_WRAP))
    sheet.set_row(row, _row_height([(text, _SUMMARY_WIDTHS[_DESCRIPTION])]))


_ITEM, _DESCRIPTION, _ACCOUNT, _AMOUNT, _CURRENCY, _LINE_COUNT = range(len(BLOCK_COLUMNS))


@dataclass(frozen=True)
class SummaryItem:
    """One row of a settlement block: the settlement's lines of one GL category and account."""

    item: str
    description: str
    account: str
    amount_minor: int
    line_count: int


def summary_items(outcome: SettlementOutcome, descriptions: Mapping[str, str]) -> list[SummaryItem]:
    """The settlement's lines summed exactly per GL category and account, in the block's item order.

    Descriptions are the GL mapping's: ``descriptions`` (category -> description), else as the
    vouchers' lines carry them; a category neither names is described in words made from its name."""
    settlement = outcome.settlement
    mapped = outcome.mapped
    if mapped is None or len(mapped.lines) != len(settlement.lines):
        amounts = settlement.lines["amount_minor"].to_numpy(dtype=np.int64)
        return [SummaryItem(_ITEM_OTHER, _NOT_MAPPED, "", exact_sum(amounts), len(amounts))] if len(amounts) else []
    described = {
        **{line.category: line.description for v in outcome.vouchers for line in v.lines if "+" not in line.category},
        **descriptions,
    }
    lines = pd.DataFrame(
        {
            "category": mapped.lines["category"].astype("str").fillna("").to_numpy(),
            "account": mapped.lines["account"].astype("str").fillna("").to_numpy(),
            "amount_minor": settlement.lines["amount_minor"].to_numpy(dtype=np.int64),
        }
    )
    items = []
    for (category, account), group in lines.groupby(["category", "account"], sort=True):
        amounts = group["amount_minor"].to_numpy(dtype=np.int64)
        description = (
            _NOT_MAPPED
            if not category
            else described.get(str(category)) or str(category).replace("_", " ").capitalize()
        )
        item = _ITEM_OF.get(str(category), _ITEM_OTHER)
        items.append(SummaryItem(item, description, str(account), exact_sum(amounts), len(amounts)))
    return sorted(items, key=lambda i: (_ITEM_ORDER[i.item], i.description == _NOT_MAPPED, i.account))


def _write_block_header(sheet: Worksheet, styles: Styles, row: int) -> None:
    for column, spec in enumerate(BLOCK_COLUMNS):
        sheet.write_string(row, column, spec.header, styles.get(_HEADER))


def _cell(row: int, column: int) -> str:
    """A1 reference of a 0-based cell."""
    return f"{_column_letter(column)}{row + 1}"


def _write_check(
    sheet: Worksheet,
    styles: Styles,
    row: int,
    label: str,
    a: str,
    b: str,
    difference: int,
    decimals: int,
    currency: str,
) -> None:
    """A check row: OK when cells ``a`` and ``b`` agree (to the currency's decimals), else the difference."""
    sheet.write_string(row, _ITEM, label, styles.get(_BOLD))
    rounded = f"ROUND({a}-{b},{decimals})"
    cached: str | Decimal = "OK" if not difference else _decimal(difference, decimals)
    sheet.write_formula(row, _AMOUNT, f'=IF({rounded}=0,"OK",{rounded})', styles.get(_amount_style(currency)), cached)
    sheet.conditional_format(
        row, _AMOUNT, row, _AMOUNT, {"type": "cell", "criteria": "!=", "value": '"OK"', "format": styles.get(_BAD)}
    )


def _write_settlement_block(
    sheet: Worksheet, styles: Styles, row: int, outcome: SettlementOutcome, descriptions: Mapping[str, str]
) -> int:
    """One settlement's items summing (a formula) to Amazon's total and to the vouchers' deposit
    line, with a check cell for each; returns the row after the block."""
    settlement = outcome.settlement
    currency, decimals = settlement.currency, settlement.decimals
    money = styles.get(_amount_style(currency))
    total_money = styles.get(_total_style(currency))
    start, end = (_naive_utc(t).strftime("%Y-%m-%d") for t in (settlement.start, settlement.end))
    sheet.write_string(
        row,
        _ITEM,
        f"Settlement {settlement.settlement_id}: {settlement.marketplace}, {currency}, {start} to {end} (UTC), "
        f"deposit {_naive_utc(settlement.deposit_date).strftime('%Y-%m-%d')}; "
        f"{STATUS_WORDS.get(outcome.status, outcome.status)}",
        styles.get(_BOLD),
    )
    _write_block_header(sheet, styles, row + 1)
    row += 2
    items = summary_items(outcome, descriptions)
    first = row
    for item in items:
        sheet.write_string(row, _ITEM, item.item)
        _write_description(sheet, styles, row, item.description)
        if item.account:
            sheet.write_string(row, _ACCOUNT, item.account)
        sheet.write_number(row, _AMOUNT, _decimal(item.amount_minor, decimals), money)
        sheet.write_string(row, _CURRENCY, currency)
        sheet.write_number(row, _LINE_COUNT, item.line_count)
        row += 1
    items_minor = sum(i.amount_minor for i in items)
    sum_cell, total_cell, deposit_cell = _cell(row, _AMOUNT), _cell(row + 1, _AMOUNT), _cell(row + 2, _AMOUNT)
    bold = styles.get(_BOLD)
    sheet.write_string(row, _ITEM, _TOTAL_OF_ITEMS, bold)
    formula = f"=SUM({_cell(first, _AMOUNT)}:{_cell(row - 1, _AMOUNT)})" if items else "=0"
    sheet.write_formula(row, _AMOUNT, formula, total_money, _decimal(items_minor, decimals))
    sheet.write_string(row + 1, _ITEM, _AMAZON_TOTAL, bold)
    _write_description(sheet, styles, row + 1, "The settlement's total amount in Amazon's file")
    sheet.write_number(row + 1, _AMOUNT, _decimal(settlement.total_minor, decimals), money)
    sheet.write_string(row + 1, _CURRENCY, currency)
    sheet.write_string(row + 2, _ITEM, _DEPOSIT_LINE, bold)
    sheet.write_string(row + 4, _ITEM, _CHECK_DEPOSIT, bold)
    _write_check(
        sheet,
        styles,
        row + 3,
        _CHECK_TOTAL,
        sum_cell,
        total_cell,
        items_minor - settlement.total_minor,
        decimals,
        currency,
    )
    if outcome.vouchers:
        deposit_lines = [line for v in outcome.vouchers for line in v.lines if line.role == ROLE_DEPOSIT]
        deposit_minor = sum(line.amount_minor for line in deposit_lines)
        _write_description(
            sheet,
            styles,
            row + 2,
            "; ".join(dict.fromkeys(line.description for line in deposit_lines)) or "No deposit (nil total)",
        )
        sheet.write_string(row + 2, _ACCOUNT, ", ".join(dict.fromkeys(line.account for line in deposit_lines)))
        sheet.write_number(row + 2, _AMOUNT, _decimal(deposit_minor, decimals), money)
        sheet.write_string(row + 2, _CURRENCY, currency)
        _write_check(
            sheet,
            styles,
            row + 4,
            _CHECK_DEPOSIT,
            sum_cell,
            deposit_cell,
            items_minor - deposit_minor,
            decimals,
            currency,
        )
    else:
        _write_description(sheet, styles, row + 2, "No vouchers: nothing to post (see Status and Reasons)")
        sheet.write_string(row + 4, _AMOUNT, "No vouchers")
    return row + 5


@dataclass(frozen=True)
class CurrencyTotals:
    """A currency's exact sums over the run (minor units): the cached values of the totals' formulas."""

    items: dict[str, int]
    amazon_total_minor: int
    deposit_minor: int

    @classmethod
    def of(cls, outcomes: Sequence[SettlementOutcome]) -> dict[str, CurrencyTotals]:
        found: dict[str, CurrencyTotals] = {}
        for outcome in outcomes:
            currency = outcome.settlement.currency
            known = found.get(currency, cls({name: 0 for name, _ in _ITEMS}, 0, 0))
            items = dict(known.items)
            for item in summary_items(outcome, {}):
                items[item.item] += item.amount_minor
            deposit = sum(v.deposit_minor for v in outcome.vouchers)
            found[currency] = cls(
                items, known.amazon_total_minor + outcome.settlement.total_minor, known.deposit_minor + deposit
            )
        return dict(sorted(found.items()))


def _write_currency_totals(
    sheet: Worksheet, styles: Styles, row: int, totals: dict[str, CurrencyTotals], blocks: tuple[int, int]
) -> int:
    """Per currency, the run's items, Amazon's totals and the deposit lines: SUMIFS over the
    settlement blocks' rows ``blocks`` (0-based, inclusive); returns the row after them."""
    sheet.write_string(row, _ITEM, "Totals of the run per currency", styles.get(_TITLE))
    row += 1

    def column(index: int) -> str:
        letter = _column_letter(index)
        return f"${letter}${blocks[0] + 1}:${letter}${blocks[1] + 1}"

    def sumifs(label: str, currency: str) -> str:
        return f'=SUMIFS({column(_AMOUNT)},{column(_ITEM)},"{label}",{column(_CURRENCY)},"{currency}")'

    bold = styles.get(_BOLD)
    for currency, figures in totals.items():
        money, total_money = styles.get(_amount_style(currency)), styles.get(_total_style(currency))
        decimals = currency_decimals(currency)
        sheet.write_string(row, _ITEM, f"All settlements in {currency}", bold)
        _write_block_header(sheet, styles, row + 1)
        row += 2
        first = row
        for name, _ in _ITEMS:
            sheet.write_string(row, _ITEM, name)
            sheet.write_formula(row, _AMOUNT, sumifs(name, currency), money, _decimal(figures.items[name], decimals))
            sheet.write_string(row, _CURRENCY, currency)
            row += 1
        items_minor = sum(figures.items.values())
        sheet.write_string(row, _ITEM, _TOTAL_OF_ITEMS, bold)
        sum_formula = f"=SUM({_cell(first, _AMOUNT)}:{_cell(row - 1, _AMOUNT)})"
        sheet.write_formula(row, _AMOUNT, sum_formula, total_money, _decimal(items_minor, decimals))
        sheet.write_string(row + 1, _ITEM, _AMAZON_TOTAL, bold)
        amazon = _decimal(figures.amazon_total_minor, decimals)
        sheet.write_formula(row + 1, _AMOUNT, sumifs(_AMAZON_TOTAL, currency), money, amazon)
        difference = items_minor - figures.amazon_total_minor
        _write_check(
            sheet,
            styles,
            row + 2,
            _CHECK_TOTAL,
            _cell(row, _AMOUNT),
            _cell(row + 1, _AMOUNT),
            difference,
            decimals,
            currency,
        )
        sheet.write_string(row + 3, _ITEM, _DEPOSIT_LINE, bold)
        deposit = _decimal(figures.deposit_minor, decimals)
        sheet.write_formula(row + 3, _AMOUNT, sumifs(_DEPOSIT_LINE, currency), money, deposit)
        sheet.write_string(row + 4, _ITEM, "Not in vouchers", bold)
        _write_description(sheet, styles, row + 4, "Amazon's total of settlements held or not prepared")
        sheet.write_formula(
            row + 4,
            _AMOUNT,
            f"={_cell(row + 1, _AMOUNT)}-{_cell(row + 3, _AMOUNT)}",
            money,
            _decimal(figures.amazon_total_minor - figures.deposit_minor, decimals),
        )
        row += 6
    return row


# --- read me ---------------------------------------------------------------------------------

_README_TOPIC_WIDTH, _README_TEXT_WIDTH = 24, 110


def read_me_rows(outcomes: Sequence[SettlementOutcome]) -> list[tuple[str, str]]:
    """(topic, explanation) rows of the Read me sheet, in an accountant's words; "" topic: a
    section heading in the explanation. Accounts are the ones this run's GL mapping booked."""
    accounts = accounts_in_use(outcomes)

    def account(category: str, name: str) -> str:
        found = accounts.get(category)
        return f"{name} {' / '.join(found)}" if found else f"{name} (see the {SHEET_JOURNAL} sheet)"

    carry_over = account("carry_over", "the carry-over account")
    deposit = account("amazon_clearing", "the Amazon deposit clearing account")
    payable = account("payable_to_amazon", "the payable to Amazon account")
    mappings = sorted({a.mapping_name for o in outcomes for a in o.audits.values()})
    mapping_text = (
        f"The accounts come from the GL mapping {', '.join(mappings)}: your own copy in HOME/mappings/"
        f"{mappings[0]}.yaml when it exists, otherwise the preset shipped with m3sync."
        if mappings
        else "The accounts come from the GL mapping chosen with --mapping: your own HOME/mappings/NAME.yaml "
        "when it exists, otherwise the preset shipped with m3sync."
    )
    tolerances = sorted(
        {
            f"{format_minor(o.reconciliation.tolerance_minor, o.settlement.decimals)} {o.settlement.currency}"
            for o in outcomes
            if o.reconciliation is not None
        }
    )
    tolerance = " / ".join(tolerances) if tolerances else "the run's --tolerance (0.01 unless chosen otherwise)"
    return [
        ("", "What each sheet holds"),
        (
            SHEET_SUMMARY,
            "Per settlement: what Amazon reported, how it was booked, and the checks that tie "
            "it to the deposit Amazon paid out.",
        ),
        (
            SHEET_CHECKS,
            "Per settlement, the figures behind the Summary's checks: the sum of its lines, the vouchers' "
            "debits, credits and deposit line, each difference a formula (0 when they agree); its voucher keys, "
            "the reconciliation's counts, the file it came from and where its lines are.",
        ),
        (
            SHEET_JOURNAL,
            "The GL vouchers sent to M3, line by line, with a total row per voucher (debits equal "
            "credits), the M3 voucher number, and where each voucher's figures came from.",
        ),
        (
            SHEET_FEES,
            "Every amount of the run summed by Amazon's transaction type, amount type and description, "
            "with the GL category it was booked to: compare it with Seller Central's statement.",
        ),
        (
            SHEET_RECONCILIATION,
            "Each Amazon order against its M3 invoice and credit note: matched, a difference, "
            "missing in M3, not settled yet, or refunded without a credit note, and in which settlement it was paid.",
        ),
        (SHEET_EXCEPTIONS, "Everything that needs a person before the month can be closed, and why."),
        (SHEET_VALIDATION, "Lines of the settlement files that failed a check: file, line, column and value."),
        (SHEET_ANOMALIES, "Orders whose Amazon fees look unusual, the highest score first, with the reasons."),
        (
            SHEET_LINES,
            "Every line of the settlement files as Amazon sent it (a large run: the lines summed per "
            "day and fee type, and every line in the CSV file beside this workbook).",
        ),
        ("", "How a settlement is booked"),
        (
            "Month-end split",
            "A settlement can span a month end. Each line is booked in the month Amazon posted "
            "it, so a settlement gets one voucher per month. The voucher of an earlier month is dated that month's "
            f"last day and balanced by {carry_over}; the voucher of the deposit month, dated the deposit date, takes "
            "the carry-over back, so the carry-over account is nil once the whole settlement is booked. The "
            "voucher's key ends with its accounting month (YYYYMM).",
        ),
        (
            "Deposit line",
            f"The deposit month's voucher debits the amount Amazon paid out to {deposit}, which "
            f"clears against the bank statement. When Amazon's total is negative (the seller owes Amazon) it is "
            f"credited to {payable} instead.",
        ),
        (
            "Facilitator tax",
            "Where Amazon is the marketplace facilitator (for example US sales tax), the tax "
            "Amazon collects and the tax it withholds to remit itself net on "
            f"{account('facilitator_tax_clearing', 'the facilitator tax clearing account')}, which is nil after "
            "each settlement.",
        ),
        (
            "Payment clearing",
            "When M3's customer ledger keeps the Amazon invoices open (the allocate set-up), "
            "the settlement's receivable amounts go to the payment clearing account ([m3] payment_clearing_account "
            "in config.toml, 1519 unless set) instead of the customer receivable, and an M3 customer payment "
            "(ARS040MI) pays the invoices one by one from it. What no invoice takes stays on the clearing account "
            f"and is named in the settlement's reasons. Otherwise the receivable "
            f"({account('principal', 'account')}) is settled directly.",
        ),
        (
            "Reserves",
            f"Amazon holds back part of the balance as a reserve and releases it in a later settlement; "
            f"both book to {account('reserves', 'the reserve account')}, whose balance is what Amazon still holds.",
        ),
        (
            "Tolerance",
            f"An order whose settled amount differs from its M3 invoice by at most {tolerance} is "
            "matched; a larger difference is a mismatch to look at.",
        ),
        (
            "GL mapping",
            f"{mapping_text} An Amazon fee no rule maps holds its settlement: add a rule for it to "
            "that file and run again. The Journal sheet shows each voucher's mapping and its SHA-256.",
        ),
        ("Times and amounts", "Times are UTC. Amounts are exact, in each settlement's currency."),
    ]


def accounts_in_use(outcomes: Sequence[SettlementOutcome]) -> dict[str, list[str]]:
    """GL category -> the accounts this run booked it to (sorted), from the vouchers' lines
    (carry-over and deposit by their role) and the mapped settlement lines."""
    found: dict[str, set[str]] = {}
    for outcome in outcomes:
        for voucher in outcome.vouchers:
            for line in voucher.lines:
                for category in line.category.split("+"):
                    found.setdefault(category, set()).add(line.account)
        mapped = outcome.mapped
        if mapped is not None and len(mapped.lines):
            pairs = mapped.lines[["category", "account"]].dropna().drop_duplicates()
            for category, account in pairs.itertuples(index=False):
                found.setdefault(str(category), set()).add(str(account))
    return {category: sorted(accounts) for category, accounts in found.items()}


def _write_read_me(sheet: Worksheet, styles: Styles, outcomes: Sequence[SettlementOutcome]) -> None:
    sheet.set_column(0, 0, _README_TOPIC_WIDTH)
    sheet.set_column(1, 1, _README_TEXT_WIDTH)
    sheet.write_string(0, 0, "Read me: how to read this workbook", styles.get(_TITLE))
    wrap = styles.get(_WRAP)
    heading = styles.get(_README_HEADING, {"bold": True, "bottom": 1, "valign": "top"})
    topic = styles.get(_README_TOPIC, {"bold": True, "text_wrap": True, "valign": "top"})
    row = 1
    for name, text in read_me_rows(outcomes):
        if not name:  # a section: a blank row, then its heading across both columns
            row += 1
            sheet.write_string(row, 0, text, heading)
            sheet.write_blank(row, 1, None, heading)
        else:
            sheet.write_string(row, 0, name, topic)
            sheet.write_string(row, 1, text, wrap)  # no row height: Excel and LibreOffice fit it to the text
        row += 1


# --- shared helpers --------------------------------------------------------------------------


def _styles(workbook: Workbook, currencies: Sequence[str]) -> Styles:
    styles = Styles(workbook)
    styles.get(_HEADER, {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True, "valign": "top"})
    styles.get(_TITLE, {"bold": True, "font_size": 14})
    styles.get(_BOLD, {"bold": True})
    styles.get(_WRAP, {"text_wrap": True, "valign": "top"})
    styles.get(_DATETIME, {"num_format": "yyyy-mm-dd hh:mm:ss"})
    styles.get(_DATE, {"num_format": "yyyy-mm-dd"})
    styles.get(_SCORE, {"num_format": "0.000"})
    styles.get(_BAD, {"bg_color": "#FFC7CE", "font_color": "#9C0006"})
    styles.get(_WARN, {"bg_color": "#FFEB9C", "font_color": "#9C5700"})
    for currency in {*currencies, "USD"}:  # USD: empty tables still reference one amount style
        styles.get(_amount_style(currency), {"num_format": currency_number_format(currency)})
        styles.get(_total_style(currency), {"num_format": currency_number_format(currency), "bold": True, "top": 1})
    return styles


def currency_number_format(currency: str) -> str:
    """Excel number format for amounts in ``currency``: ``#,##0.00 "USD"``, ``#,##0 "JPY"``."""
    decimals = currency_decimals(currency)
    code = re.sub(r"[^A-Za-z]", "", currency)
    return "#,##0" + ("." + "0" * decimals if decimals else "") + f' "{code}"'


def _amount_style(currency: str) -> str:
    return f"amount:{currency}"


def _total_style(currency: str) -> str:
    return f"total:{currency}"


def _amount_column(header: str, minor: pd.Series, decimals: pd.Series, currency: pd.Series) -> Column:
    return Column(header, amount_cells(minor, decimals), NUMBER, _amount_style_series(currency), 15)


def _optional_amount_column(header: str, minor: pd.Series, decimals: pd.Series, currency: pd.Series) -> Column:
    """An amount column where missing values stay empty (exceptions without an amount)."""
    present = minor.notna().to_numpy()
    cells = pd.Series("", index=minor.index, dtype="str")
    if present.any():
        cells[present] = amount_cells(minor[present].astype("int64"), decimals[present]).to_numpy()
    return Column(header, cells, NUMBER, _amount_style_series(currency.replace("", "USD")), 15)


def _amount_style_series(currency: pd.Series) -> pd.Series:
    """Per-row amount style names (vectorised ``_amount_style``)."""
    return _amount_style("") + currency.astype("str").fillna("")


def _fit(frame: pd.DataFrame, sheet_name: str, max_rows: int, header_row: int, notes: list[str]) -> pd.DataFrame:
    """The rows that fit below the header; a note in the Summary for what was cut."""
    capacity = max_rows - header_row - 1
    if len(frame) <= capacity:
        return frame
    notes.append(f"{sheet_name}: only the first {capacity} of {len(frame)} rows fit the sheet's row limit.")
    return frame.iloc[:capacity]


def _decimal(minor: int, decimals: int) -> Decimal:
    return Decimal(int(minor)).scaleb(-decimals)


def _naive_utc(moment: datetime | pd.Timestamp) -> datetime:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    naive: datetime = stamp.to_pydatetime()
    return naive


def _as_datetime(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _cell_text(text: str) -> str:
    return text[:EXCEL_MAX_STRING]


def _column_letter(index: int) -> str:
    return str(xl_col_to_name(index))


def _width(header: str) -> float:
    return {
        "settlement_id": 13,
        "order_id": 21,
        "merchant_order_id": 21,
        "amount_description": 30,
        "marketplace_name": 14,
        "adjustment_id": 24,
        "sku": 16,
        "promotion_id": 24,
    }.get(header, 14)
