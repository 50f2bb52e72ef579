"""What every sheet shares: the sheet names, the named styles, and cell helpers (exact amounts,
UTC times, row heights of wrapped text, A1 references)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.model import currency_decimals
from reconciliation.xlsx_tables import (
    EXCEL_MAX_STRING,
    NUMBER,
    Column,
    Styles,
    amount_cells,
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


# Styles (names in ``Styles``).
HEADER, TITLE, BOLD, WRAP = "header", "title", "bold", "wrap"
DATETIME, DATE, SCORE = "datetime", "date", "score"
BAD, WARN = "bad", "warn"  # conditional formats

# The reconciliation's categories in words (the Summary's and the Checks sheet's).
CATEGORY_LABELS = {
    "matched": "Matched",
    "amount_mismatch": "Amount mismatch",
    "missing_in_m3": "Missing in M3",
    "not_settled": "Not settled (M3 only)",
    "refund_without_credit": "Refund without credit",
}

# The anomaly kinds (``anomaly.rules.ITEM_RULES`` and ``anomaly.scoring``) in words.
ANOMALY_KIND_WORDS = {
    "fee_overcharge_fba": "FBA fee above usual",
    "fee_overcharge_commission": "Commission above usual",
    "price_error": "Unit price far from usual",
    "duplicate_refund": "Refunded more than once",
    "refund_exceeds_sale": "Refund above the sale",
    "chargeback_exceeds_shipping": "Chargeback above shipping",
    "refund_commission_high": "Refund fee above usual",
    "unusual": "Unusual fees",
    "fee_share_high": "Fees a high share of sales",
    "reserve_high": "Reserve above usual",
    "missing_reimbursement": "Reimbursement missing",
}


def name_words(name: str) -> str:
    """Words made from an internal name ("referral_commission" -> "Referral commission")."""
    return name.replace("_", " ").capitalize()


def category_words(category: str, descriptions: Mapping[str, str]) -> str:
    """A GL category in words: its description in ``descriptions`` (the GL mapping's), else words
    made from its name; a "+"-joined category (lines booked together) is each part's, joined by ", "."""
    if not category:
        return ""
    return ", ".join(descriptions.get(part) or name_words(part) for part in category.split("+"))


def words_of(values: pd.Series, words: Callable[[str], str]) -> pd.Series:
    """``values`` in words, each distinct value translated once (a sheet's column of a few categories)."""
    text = values.fillna("").astype("str")
    return text.map({value: words(value) if value else "" for value in text.unique()})


@dataclass(frozen=True)
class SheetColumn:
    """One column of a sheet written cell by cell (formula rows, total rows, blocks), where
    ``xlsx_tables.place_table`` does not fit: its header and width, defined once; cells are
    placed by header (``column_positions``), never by a column number kept in step by hand."""

    header: str
    width: float


def column_positions(columns: Sequence[SheetColumn]) -> dict[str, int]:
    """Header -> 0-based column of ``columns``."""
    positions = {column.header: index for index, column in enumerate(columns)}
    if len(positions) != len(columns):
        raise ValueError(f"duplicate column headers in {[c.header for c in columns]}")
    return positions


def write_header_row(sheet: Worksheet, styles: Styles, columns: Sequence[SheetColumn], row: int) -> None:
    """Each column's width, and its header in ``row`` (0-based)."""
    header = styles.get(HEADER)
    for index, column in enumerate(columns):
        sheet.set_column(index, index, column.width)
        sheet.write_string(row, index, column.header, header)


_LINE_POINTS = 15.0  # the height of one line of 11-point text


def row_height(cells: Sequence[tuple[str, float]]) -> float:
    """Points for a row whose wrapped cells (text, column width) show every line: LibreOffice does
    not grow a row to its wrapped text when it opens an .xlsx, so the rows would overlap."""

    def lines(text: str, width: float) -> int:
        per_line = max(int(width * 1.15), 1)  # text is narrower than the "0" a width counts
        return sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))

    return _LINE_POINTS * max([1, *(lines(text, width) for text, width in cells)])


def warn_unless_ok(sheet: Worksheet, styles: Styles, first: int, last: int, column: int) -> None:
    sheet.conditional_format(
        first, column, last, column, {"type": "cell", "criteria": "!=", "value": '"OK"', "format": styles.get(WARN)}
    )


def link_lines_file(sheet: Worksheet, row: int, column: int, lines_file: Path, text: str) -> None:
    """A relative link to the lines file: it works wherever the two files are moved together."""
    sheet.write_url(row, column, f"external:{lines_file.name}", string=cell_text(text))


def cell_ref(row: int, column: int) -> str:
    """A1 reference of a 0-based cell."""
    return f"{column_letter(column)}{row + 1}"


# --- shared helpers --------------------------------------------------------------------------


def make_styles(workbook: Workbook, currencies: Sequence[str]) -> Styles:
    styles = Styles(workbook)
    styles.get(HEADER, {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True, "valign": "top"})
    styles.get(TITLE, {"bold": True, "font_size": 14})
    styles.get(BOLD, {"bold": True})
    styles.get(WRAP, {"text_wrap": True, "valign": "top"})
    styles.get(DATETIME, {"num_format": "yyyy-mm-dd hh:mm:ss"})
    styles.get(DATE, {"num_format": "yyyy-mm-dd"})
    styles.get(SCORE, {"num_format": "0.000"})
    styles.get(BAD, {"bg_color": "#FFC7CE", "font_color": "#9C0006"})
    styles.get(WARN, {"bg_color": "#FFEB9C", "font_color": "#9C5700"})
    for currency in {*currencies, "USD"}:  # USD: empty tables still reference one amount style
        styles.get(amount_style(currency), {"num_format": currency_number_format(currency)})
        styles.get(total_style(currency), {"num_format": currency_number_format(currency), "bold": True, "top": 1})
    return styles


def currency_number_format(currency: str) -> str:
    """Excel number format for amounts in ``currency``: ``#,##0.00 "USD"``, ``#,##0 "JPY"``."""
    decimals = currency_decimals(currency)
    code = re.sub(r"[^A-Za-z]", "", currency)
    return "#,##0" + ("." + "0" * decimals if decimals else "") + f' "{code}"'


def amount_style(currency: str) -> str:
    return f"amount:{currency}"


def total_style(currency: str) -> str:
    return f"total:{currency}"


def amount_column(header: str, minor: pd.Series, decimals: pd.Series, currency: pd.Series) -> Column:
    return Column(header, amount_cells(minor, decimals), NUMBER, amount_style_series(currency), 15)


def optional_amount_column(header: str, minor: pd.Series, decimals: pd.Series, currency: pd.Series) -> Column:
    """An amount column where missing values stay empty (exceptions without an amount)."""
    present = minor.notna().to_numpy()
    cells = pd.Series("", index=minor.index, dtype="str")
    if present.any():
        cells[present] = amount_cells(minor[present].astype("int64"), decimals[present]).to_numpy()
    return Column(header, cells, NUMBER, amount_style_series(currency.replace("", "USD")), 15)


def amount_style_series(currency: pd.Series) -> pd.Series:
    """Per-row amount style names (vectorised ``amount_style``)."""
    return amount_style("") + currency.astype("str").fillna("")


def fit_rows(frame: pd.DataFrame, sheet_name: str, max_rows: int, header_row: int, notes: list[str]) -> pd.DataFrame:
    """The rows that fit below the header; a note in the Summary for what was cut."""
    capacity = max_rows - header_row - 1
    if len(frame) <= capacity:
        return frame
    notes.append(f"{sheet_name}: only the first {capacity} of {len(frame)} rows fit the sheet's row limit.")
    return frame.iloc[:capacity]


def to_decimal(minor: int, decimals: int) -> Decimal:
    return Decimal(int(minor)).scaleb(-decimals)


def naive_utc(moment: datetime | pd.Timestamp) -> datetime:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    naive: datetime = stamp.to_pydatetime()
    return naive


def as_datetime(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def cell_text(text: str) -> str:
    return text[:EXCEL_MAX_STRING]


def column_letter(index: int) -> str:
    return str(xl_col_to_name(index))
