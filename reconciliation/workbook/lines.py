"""The Lines sheet: every settlement line, or (a large run) the lines summed per settlement, day and
fee type with every raw line in a CSV beside the workbook; where each settlement's lines are."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.model import LINE_COLUMNS
from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import (
    DATE,
    DATETIME,
    HEADER,
    SHEET_LINES,
    amount_column,
    amount_style_series,
    category_words,
    name_words,
    words_of,
)
from reconciliation.xlsx_tables import (
    NUMBER,
    Column,
    PendingRows,
    Styles,
    amount_cells,
    datetime_cells,
    integer_cells,
    place_table,
    text_cells,
)

# Up to this many lines in a run, the Lines sheet holds every line (filterable in Excel, written
# in a few seconds); above it, sums per day and fee type, and every line in the CSV beside it.
LINES_ON_SHEET = 100_000


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


def lines_frame(outcomes: Sequence[SettlementOutcome]) -> pd.DataFrame:
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


def write_lines(
    workbook: Workbook, sheet: Worksheet, styles: Styles, lines: pd.DataFrame, descriptions: Mapping[str, str]
) -> PendingRows:
    """Every line in LINE_SHEET_COLUMNS, headed in words; the GL category as ``descriptions`` has it
    (the GL mapping's). The CSV (``write_lines_csv``) keeps the column names, for programs."""
    columns = []
    for key, kind in LINE_SHEET_COLUMNS:
        header = line_header(key)
        if kind == "amount":
            columns.append(amount_column(header, lines["amount_minor"], lines["_decimals"], lines["currency"]))
        elif kind == "datetime":
            columns.append(Column(header, datetime_cells(lines["posted_date"]), NUMBER, DATETIME, 20))
        elif kind == "integer":
            columns.append(Column(header, integer_cells(lines[key]), NUMBER, None, 9))
        elif key == "gl_category":
            columns.append(Column(header, text_cells(_category_cells(lines[key], descriptions)), width=30))
        else:
            columns.append(Column(header, text_cells(lines[key]), width=_width(key)))
    return place_table(workbook, sheet, styles, columns, header_style=HEADER)


# Headers of the Lines sheet that words made from the column's name would not say well.
_HEADER_WORDS = {
    "line_no": "Line number",
    "amount_minor": "Amount",
    "posted_date": "Posted (UTC)",
    "sku": "SKU",
    "posted_date (UTC)": "Posted (UTC)",
    "gl_category": "GL category",
    "gl_account": "GL account",
}


def line_header(key: str) -> str:
    """A line column's header on the Lines sheet, in words ("merchant_order_id" -> "Merchant order ID");
    the Validation sheet names a line's column by it too."""
    return _HEADER_WORDS.get(key) or re.sub(r"\bid\b", "ID", name_words(key))


def _category_cells(categories: pd.Series, descriptions: Mapping[str, str]) -> pd.Series:
    return words_of(categories, lambda c: category_words(c, descriptions))


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


def write_summed_lines(
    workbook: Workbook, sheet: Worksheet, styles: Styles, summed: pd.DataFrame, descriptions: Mapping[str, str]
) -> PendingRows:
    """The summed lines, headed in words; the GL category as ``descriptions`` (the GL mapping's) has it."""

    def text(key: str, width: float) -> Column:
        return Column(line_header(key), text_cells(summed[key]), width=width)

    columns = [
        text("settlement_id", _width("settlement_id")),
        Column("Posted day (UTC)", datetime_cells(summed["_day"]), NUMBER, DATE, 12),
        text("transaction_type", 20),
        text("amount_type", 20),
        text("amount_description", _width("amount_description")),
        text("marketplace_name", _width("marketplace_name")),
        Column(line_header("gl_category"), text_cells(_category_cells(summed["gl_category"], descriptions)), width=30),
        text("gl_account", 12),
        Column("Lines", integer_cells(summed["count"]), NUMBER, None, 9),
        Column(
            "Amount",
            _exact_amount_cells(summed["amount_minor"], summed["_decimals"]),
            NUMBER,
            amount_style_series(summed["currency"]),
            15,
        ),
        text("currency", 9),
        Column("First line number", integer_cells(summed["first_line"]), NUMBER, None, 11),
        Column("Last line number", integer_cells(summed["last_line"]), NUMBER, None, 11),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=HEADER)


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
