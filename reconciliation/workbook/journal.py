"""The Journal sheet: the GL vouchers line by line, a total row per voucher (SUBTOTAL formulas),
each voucher's audit record, and what M3 booked in the division's local currency."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from reconciliation.audit import AuditRecord
from reconciliation.local_currency import LocalLine
from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import (
    _BOLD,
    _DATE,
    _HEADER,
    _amount_style,
    _as_datetime,
    _cell_text,
    _column_letter,
    _decimal,
    _total_style,
)
from reconciliation.xlsx_tables import (
    Styles,
)

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
