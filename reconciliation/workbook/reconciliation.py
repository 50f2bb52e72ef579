"""The Reconciliation sheet: each order against its M3 invoice and credit note, across the run's settlements."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.exceptions import run_orders
from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import (
    BAD,
    CATEGORY_LABELS,
    DATE,
    HEADER,
    SHEET_RECONCILIATION,
    WARN,
    amount_column,
    fit_rows,
    words_of,
)
from reconciliation.xlsx_tables import (
    NUMBER,
    Column,
    PendingRows,
    Styles,
    datetime_cells,
    place_table,
    text_cells,
)


def write_reconciliation(
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
    orders = fit_rows(orders, SHEET_RECONCILIATION, max_rows, 0, notes)
    decimals, currency = orders["decimals"], orders["currency"]
    columns = [
        Column("Settlement ID", text_cells(orders["settlement_id"]), width=14),
        Column("Currency", text_cells(currency), width=9),
        Column("Order ID", text_cells(orders["order_id"]), width=22),
        Column("Category", text_cells(words_of(orders["category"], lambda c: CATEGORY_LABELS.get(c, c))), width=22),
        amount_column("Settled", orders["settled_minor"], decimals, currency),
        amount_column("Invoiced", orders["invoiced_minor"], decimals, currency),
        amount_column("Difference", orders["difference_minor"], decimals, currency),
        # Within it an order is matched; shown beside the difference it is judged by.
        amount_column("Tolerance", orders["tolerance_minor"], decimals, currency),
        amount_column("Refunded", orders["refunded_minor"], decimals, currency),
        amount_column("Credited", orders["credited_minor"], decimals, currency),
        Column("M3 orders", text_cells(orders["m3_orders"]), width=16),
        Column("M3 invoices", text_cells(orders["invoices"]), width=16),
        Column("Invoice date", datetime_cells(orders["invoice_date"]), NUMBER, DATE, 12),
        # The settlement(s) the order's sale is in: this one, another of the run, or an earlier run's.
        Column("Settled in", text_cells(orders["settled_in"]), width=16),
    ]
    pending = place_table(workbook, sheet, styles, columns, header_style=HEADER)
    last = max(len(orders), 1)
    # Differences beyond the tolerance and non-matched orders stand out without any filter.
    sheet.conditional_format(1, 6, last, 6, {"type": "formula", "criteria": "=ABS($G2)>$H2", "format": styles.get(BAD)})
    sheet.conditional_format(
        1, 3, last, 3, {"type": "formula", "criteria": f'=AND($D2<>"",$D2<>"{_MATCHED}")', "format": styles.get(WARN)}
    )
    return pending


_MATCHED = CATEGORY_LABELS["matched"]  # the Category cell of a matched order, which is not highlighted
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
