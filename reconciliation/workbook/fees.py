"""The Fees sheet: every amount of the run summed by transaction type, amount type and description."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.workbook.common import HEADER, SHEET_FEES, amount_column, category_words, fit_rows, words_of
from reconciliation.xlsx_tables import (
    NUMBER,
    Column,
    PendingRows,
    Styles,
    integer_cells,
    place_table,
    text_cells,
)

_FEE_KEYS = [
    "currency",
    "_settlement_marketplace",
    "transaction_type",
    "amount_type",
    "amount_description",
    "gl_category",
]


def write_fees(
    workbook: Workbook,
    sheet: Worksheet,
    styles: Styles,
    lines: pd.DataFrame,
    max_rows: int,
    notes: list[str],
    descriptions: Mapping[str, str],
) -> PendingRows:
    """``descriptions``: the GL mapping's, category -> description (the GL category column in words)."""
    grouped = (
        lines.assign(gl_category=lines["gl_category"].fillna(""))
        .groupby(_FEE_KEYS, sort=True, dropna=False)
        .agg(total_minor=("amount_minor", "sum"), count=("amount_minor", "size"), decimals=("_decimals", "first"))
        .reset_index()
    )
    grouped = fit_rows(grouped, SHEET_FEES, max_rows, 0, notes)
    columns = [
        Column("Marketplace", text_cells(grouped["_settlement_marketplace"]), width=16),
        Column("Currency", text_cells(grouped["currency"]), width=9),
        Column("Transaction type", text_cells(grouped["transaction_type"]), width=20),
        Column("Amount type", text_cells(grouped["amount_type"]), width=20),
        Column("Amount description", text_cells(grouped["amount_description"]), width=34),
        Column(
            "GL category",
            text_cells(words_of(grouped["gl_category"], lambda c: category_words(c, descriptions))),
            width=30,
        ),
        amount_column("Sum", grouped["total_minor"], grouped["decimals"], grouped["currency"]),
        Column("Count", integer_cells(grouped["count"]), NUMBER, width=9),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=HEADER)
