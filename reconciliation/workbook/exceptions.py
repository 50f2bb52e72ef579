"""The Exceptions sheet: one row per thing that needs a person, with the next step
(the rows are ``reconciliation.exceptions.exceptions``)."""

from __future__ import annotations

import pandas as pd
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.model import currency_decimals
from reconciliation.workbook.common import HEADER, SHEET_EXCEPTIONS, WRAP, fit_rows, optional_amount_column
from reconciliation.xlsx_tables import (
    Column,
    PendingRows,
    Styles,
    place_table,
    text_cells,
)


def write_exceptions(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    rows: pd.DataFrame,
    max_rows: int,
    notes: list[str],
) -> PendingRows:
    """``rows``: ``reconciliation.exceptions.exceptions`` (one row per thing that needs a person)."""
    rows = fit_rows(rows, SHEET_EXCEPTIONS, max_rows, 0, notes)
    currency = rows["currency"]
    decimals = currency.map(lambda c: currency_decimals(c) if c else 2).astype("int64")
    columns = [
        Column("Settlement ID", text_cells(rows["settlement_id"]), width=14),
        Column("Kind", text_cells(rows["kind"]), width=30),
        Column("Order, fee type or file", text_cells(rows["reference"]), width=30),
        Column("What", text_cells(rows["what"]), style=WRAP, width=70),
        optional_amount_column("Amount", rows["amount_minor"], decimals, currency),
        Column("Currency", text_cells(currency), width=9),
        Column("Next step", text_cells(rows["next_step"]), style=WRAP, width=80),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=HEADER)
