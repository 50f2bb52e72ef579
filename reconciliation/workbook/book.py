"""``write_workbook``: every sheet into one .xlsx, the table rows spliced in, the file replaced atomically."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xlsxwriter.workbook import Workbook

from reconciliation.exceptions import DEFAULT_NOT_SETTLED_AFTER_DAYS, exceptions
from reconciliation.mapping import GLMapping
from reconciliation.model import LINE_COLUMNS
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError
from reconciliation.workbook.anomalies import write_anomalies
from reconciliation.workbook.checks import write_checks
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
    fit_rows,
    make_styles,
    naive_utc,
)
from reconciliation.workbook.exceptions import write_exceptions
from reconciliation.workbook.fees import write_fees
from reconciliation.workbook.journal import write_journal
from reconciliation.workbook.lines import (
    LINES_ON_SHEET,
    lines_frame,
    plan_lines,
    summed_lines,
    write_lines,
    write_lines_csv,
    write_summed_lines,
)
from reconciliation.workbook.read_me import write_read_me
from reconciliation.workbook.reconciliation import write_reconciliation
from reconciliation.workbook.summary import SUMMARY_HEADER_ROW, write_summary
from reconciliation.workbook.validation import write_validation
from reconciliation.xlsx_tables import (
    EXCEL_MAX_ROWS,
    set_print_layout,
    splice_rows,
)

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
    generated = naive_utc(generated_at or datetime.now(UTC))  # a naive generated_at is taken as UTC
    all_lines = lines_frame(outcomes)
    lines_file = (
        path.with_name(f"{path.stem}-lines.csv") if len(all_lines) > min(lines_on_sheet, max_rows - 1) else None
    )
    notes: list[str] = []
    sheet_lines = (
        all_lines if lines_file is None else fit_rows(summed_lines(all_lines), SHEET_LINES, max_rows, 0, notes)
    )
    placements = plan_lines(outcomes, sheet_lines["_outcome"].to_numpy(), lines_file)

    # GL categories are shown as the mapping's descriptions (words made from the name without one).
    descriptions = {name: c.description for name, c in mapping.categories.items()} if mapping is not None else {}
    buffer = io.BytesIO()
    workbook = Workbook(buffer, _XLSX_OPTIONS)
    workbook.set_properties(
        {
            "title": "Amazon settlement run",
            "created": generated,
            "comments": "Times are UTC; amounts in each settlement's currency.",
        }
    )
    styles = make_styles(workbook, [o.settlement.currency for o in outcomes])
    sheets = {name: workbook.add_worksheet(name) for name in SHEET_NAMES}
    pending = [
        (
            write_lines(workbook, sheets[SHEET_LINES], styles, sheet_lines, descriptions)
            if lines_file is None
            else write_summed_lines(workbook, sheets[SHEET_LINES], styles, sheet_lines, descriptions)
        ),
        write_fees(workbook, sheets[SHEET_FEES], styles, all_lines, max_rows, notes, descriptions),
        write_reconciliation(workbook, sheets[SHEET_RECONCILIATION], styles, outcomes, max_rows, notes),
        write_exceptions(
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
        write_validation(workbook, sheets[SHEET_VALIDATION], styles, outcomes, max_rows, notes),
        write_anomalies(workbook, sheets[SHEET_ANOMALIES], styles, outcomes, max_rows, notes),
    ]
    write_journal(sheets[SHEET_JOURNAL], styles, outcomes, descriptions)
    write_summary(
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
    write_checks(sheets[SHEET_CHECKS], styles, outcomes, placements, lines_file)
    write_read_me(sheets[SHEET_README], styles, outcomes)
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
