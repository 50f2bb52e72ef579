"""The Checks sheet: per settlement, the figures behind the Summary's checks (each difference a
formula), the reconciliation's counts, the file it came from and where its lines are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from xlsxwriter.worksheet import Worksheet

from reconciliation.matching import CATEGORIES
from reconciliation.model import format_minor
from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import (
    BAD,
    CATEGORY_LABELS,
    DATETIME,
    WRAP,
    SheetColumn,
    amount_style,
    cell_ref,
    column_positions,
    link_lines_file,
    naive_utc,
    row_height,
    to_decimal,
    warn_unless_ok,
    write_header_row,
)
from reconciliation.workbook.lines import LinesPlacement, exact_sum
from reconciliation.xlsx_tables import Styles

# The Checks sheet: per settlement, the figures behind the Summary's "Checks" (the differences are
# formulas), the reconciliation counts, the file it came from and where its lines are.
CHECKS_COLUMNS = (
    SheetColumn("Settlement ID", 14),
    SheetColumn("File", 22),
    SheetColumn("Format", 7),
    SheetColumn("Currency", 9),
    SheetColumn("Start (UTC)", 19),
    SheetColumn("End (UTC)", 19),
    SheetColumn("Total (deposit)", 15),
    SheetColumn("Lines", 8),
    SheetColumn("Sum of lines", 15),
    SheetColumn("Sum of lines - total", 15),
    SheetColumn("Voucher debits", 15),
    SheetColumn("Voucher credits", 15),
    SheetColumn("Debits - credits", 15),
    SheetColumn("Deposit line", 15),
    SheetColumn("Deposit line - total", 15),
    SheetColumn("Checks", 30),
    SheetColumn("Voucher keys", 26),
    *(SheetColumn(CATEGORY_LABELS.get(c, c), 11) for c in CATEGORIES),
    SheetColumn("Lines written to", 40),
)
CHECKS_HEADERS = [c.header for c in CHECKS_COLUMNS]
_AT = column_positions(CHECKS_COLUMNS)
# Each difference column is a formula: the first column minus the second.
_DIFFERENCES = {
    "Sum of lines - total": ("Sum of lines", "Total (deposit)"),
    "Debits - credits": ("Voucher debits", "Voucher credits"),
    "Deposit line - total": ("Deposit line", "Total (deposit)"),
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


def check_words(outcome: SettlementOutcome) -> str:
    """ "OK", or what failed, in words: the Summary's and the Checks sheet's "Checks"."""
    problems = CheckFigures.of(outcome).problems(outcome.settlement.total_minor, outcome.settlement.decimals)
    return "OK" if not problems else "; ".join(problems)


def write_checks(
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    placements: Sequence[LinesPlacement],
    lines_file: Path | None,
) -> None:
    write_header_row(sheet, styles, CHECKS_COLUMNS, 0)
    sheet.set_row(0, row_height([(c.header, c.width) for c in CHECKS_COLUMNS]))
    sheet.freeze_panes(1, 1)
    row = 1
    for outcome, placement in zip(outcomes, placements):
        _write_checks_row(sheet, styles, row, outcome, placement)
        if lines_file is not None and placement.line_count:
            link_lines_file(sheet, row, _AT["Lines written to"], lines_file, placement.describe())
        row += 1
    last = max(row - 1, 1)
    sheet.autofilter(0, 0, last, len(CHECKS_COLUMNS) - 1)
    for column in (_AT[name] for name in _DIFFERENCES):
        sheet.conditional_format(
            1, column, last, column, {"type": "cell", "criteria": "!=", "value": 0, "format": styles.get(BAD)}
        )
    warn_unless_ok(sheet, styles, 1, last, _AT["Checks"])


def _write_checks_row(
    sheet: Worksheet, styles: Styles, row: int, outcome: SettlementOutcome, placement: LinesPlacement
) -> None:
    settlement = outcome.settlement
    decimals = settlement.decimals
    money = styles.get(amount_style(settlement.currency))
    when = styles.get(DATETIME)
    figures = CheckFigures.of(outcome)
    counts = outcome.reconciliation.counts if outcome.reconciliation is not None else {}

    def amount(minor: int | None) -> Decimal | None:
        return None if minor is None else to_decimal(minor, decimals)

    def minus(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else a - b

    values: dict[str, object] = {
        "Settlement ID": settlement.settlement_id,
        "File": settlement.source,
        "Format": settlement.format,
        "Currency": settlement.currency,
        "Start (UTC)": naive_utc(settlement.start),
        "End (UTC)": naive_utc(settlement.end),
        "Total (deposit)": amount(settlement.total_minor),
        "Lines": settlement.line_count,
        "Sum of lines": amount(figures.lines_minor),
        "Sum of lines - total": amount(figures.lines_minor - settlement.total_minor),
        "Voucher debits": amount(figures.debit_minor),
        "Voucher credits": amount(figures.credit_minor),
        "Debits - credits": amount(minus(figures.debit_minor, figures.credit_minor)),
        "Deposit line": amount(figures.deposit_line_minor),
        "Deposit line - total": amount(minus(figures.deposit_line_minor, settlement.total_minor)),
        "Checks": check_words(outcome),
        "Voucher keys": "\n".join(v.key for v in outcome.vouchers),
        **{
            CATEGORY_LABELS.get(c, c): counts.get(c) if outcome.reconciliation is not None else None for c in CATEGORIES
        },
        "Lines written to": placement.describe(),
    }
    for header, value in values.items():
        column = _AT[header]
        if value is None or value == "":
            continue
        if isinstance(value, datetime):
            sheet.write_datetime(row, column, value, when)
        elif isinstance(value, Decimal) and header in _DIFFERENCES:
            first, second = (_AT[name] for name in _DIFFERENCES[header])
            sheet.write_formula(row, column, f"={cell_ref(row, first)}-{cell_ref(row, second)}", money, value)
        elif isinstance(value, Decimal):
            sheet.write_number(row, column, value, money)
        elif isinstance(value, int):
            sheet.write_number(row, column, value)
        else:
            sheet.write_string(row, column, str(value), styles.get(WRAP) if "\n" in str(value) else None)
    wrapped = [(v, CHECKS_COLUMNS[_AT[h]].width) for h, v in values.items() if isinstance(v, str) and "\n" in v]
    if wrapped:  # one line per voucher key: the row as tall as them
        sheet.set_row(row, row_height(wrapped))
