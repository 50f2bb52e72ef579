"""The Validation sheet: the settlement lines that failed a check (pandera failure cases)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import HEADER, SHEET_VALIDATION, fit_rows, words_of
from reconciliation.workbook.lines import line_header
from reconciliation.xlsx_tables import (
    NUMBER,
    Column,
    PendingRows,
    Styles,
    integer_cells,
    place_table,
    text_cells,
)


def write_validation(
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
    cases = fit_rows(cases, SHEET_VALIDATION, max_rows, 0, notes)
    columns = [
        Column("Settlement ID", text_cells(cases["settlement_id"]), width=14),
        Column("File", text_cells(cases["source"]), width=24),
        Column("Line", integer_cells(cases["line"]), NUMBER, width=8),
        # Named as the Lines sheet heads it.
        Column("Column", text_cells(words_of(cases["column"], line_header)), width=22),
        Column("Check", text_cells(cases["check"]), width=40),
        Column("Value", text_cells(cases["value"]), width=30),
    ]
    return place_table(workbook, sheet, styles, columns, header_style=HEADER)
