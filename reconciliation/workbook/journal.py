"""The Journal sheet: the GL vouchers line by line, a total row per voucher (SUBTOTAL formulas),
each voucher's audit record, and what M3 booked in the division's local currency."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from reconciliation.audit import AuditRecord
from reconciliation.local_currency import LocalLine
from reconciliation.outcome import SettlementOutcome
from reconciliation.vouchers import ROLE_CARRY_OVER, ROLE_DEPOSIT, ROLE_SETTLEMENT
from reconciliation.workbook.common import (
    BOLD,
    DATE,
    SheetColumn,
    amount_style,
    as_datetime,
    category_words,
    cell_text,
    column_letter,
    column_positions,
    to_decimal,
    total_style,
    write_header_row,
)
from reconciliation.xlsx_tables import Styles

# A voucher line's role as the sheet says it.
_ROLE_WORDS = {ROLE_SETTLEMENT: "settlement", ROLE_DEPOSIT: "deposit", ROLE_CARRY_OVER: "carry-over"}

# The Journal's columns, once: the voucher line, its amounts, the voucher's audit record, what M3
# booked in the division's local currency (read back after posting), and the line's M3 VAT code.
_AIT = ("Account (AIT1)", "AIT2", "AIT3", "AIT4", "AIT5", "AIT6", "AIT7")
# The voucher's audit record on each of its rows: the column and the record's value in it.
_AUDIT_COLUMNS: tuple[tuple[SheetColumn, Callable[[AuditRecord], str | int]], ...] = (
    (SheetColumn("File SHA-256", 66), lambda a: a.source_sha256),
    (SheetColumn("Mapping", 18), lambda a: a.mapping_name),
    (SheetColumn("Mapping SHA-256", 66), lambda a: a.mapping_sha256),
    (SheetColumn("Tool version", 12), lambda a: a.tool_version),
    (SheetColumn("Key version", 11), lambda a: a.key_version),
)
JOURNAL_COLUMNS = (
    SheetColumn("Settlement ID", 14),
    SheetColumn("Voucher key", 24),
    SheetColumn("Accounting date", 14),
    SheetColumn("M3 voucher", 18),
    SheetColumn("Currency", 9),
    SheetColumn(_AIT[0], 14),
    *(SheetColumn(name, 8) for name in _AIT[1:]),
    SheetColumn("Category", 30),
    SheetColumn("Description", 40),
    SheetColumn("Role", 11),
    SheetColumn("Debit", 14),
    SheetColumn("Credit", 14),
    SheetColumn("Debit - credit", 14),
    *(column for column, _ in _AUDIT_COLUMNS),
    SheetColumn("M3 division", 11),
    SheetColumn("Rate type", 9),
    SheetColumn("Rate", 12),
    SheetColumn("Local debit", 16),
    SheetColumn("Local credit", 16),
    SheetColumn("VAT code", 9),
)
JOURNAL_HEADERS = [c.header for c in JOURNAL_COLUMNS]
_AT = column_positions(JOURNAL_COLUMNS)
_LOCAL_AMOUNT, _RATE = "local_amount", "rate"


def _write_cells(sheet: Worksheet, row: int, cells: Mapping[str, object], style: Format | None = None) -> None:
    """``cells`` (header -> value) into ``row``, each in its column; "" without a style: no cell."""
    for header, value in cells.items():
        sheet.write(row, _AT[header], value, style)


def _write_audit(sheet: Worksheet, row: int, audit: AuditRecord | None, style: Format | None = None) -> None:
    if audit is None:  # a voucher made before its audit record could be (a failure): cells left empty
        return
    for column, value in _AUDIT_COLUMNS:
        cell = value(audit)
        if isinstance(cell, int):
            sheet.write_number(row, _AT[column.header], cell, style)
        else:
            sheet.write_string(row, _AT[column.header], cell, style)


def _write_local(sheet: Worksheet, styles: Styles, row: int, division: str, line: LocalLine | None) -> None:
    """The division, and the line's rate type, rate and local amount as M3 booked them."""
    if division:
        sheet.write_string(row, _AT["M3 division"], division)
    if line is None:
        return
    if line.rate_type is not None:
        sheet.write_number(row, _AT["Rate type"], line.rate_type)
    if line.rate is not None:
        sheet.write_number(row, _AT["Rate"], line.rate, styles.get(_RATE, {"num_format": "0.000000"}))
    money = styles.get(_LOCAL_AMOUNT, {"num_format": "#,##0.00"})
    if line.local_amount > 0:
        sheet.write_number(row, _AT["Local debit"], line.local_amount, money)
    elif line.local_amount < 0:
        sheet.write_number(row, _AT["Local credit"], -line.local_amount, money)


def write_journal(
    sheet: Worksheet, styles: Styles, outcomes: Sequence[SettlementOutcome], descriptions: Mapping[str, str]
) -> None:
    """Every voucher line, then a total row per voucher: SUBTOTAL formulas with their values cached.
    A voucher read back from M3 also shows its division, each line's rate and local amounts, and
    the rounding lines M3 added (local currency only) before its total row. A line's category is in
    words: ``descriptions`` (the GL mapping's, category -> description)."""
    write_header_row(sheet, styles, JOURNAL_COLUMNS, 0)
    sheet.freeze_panes(1, 0)
    row = 1
    debit_col, credit_col = column_letter(_AT["Debit"]), column_letter(_AT["Credit"])
    when = styles.get(DATE)
    for outcome in outcomes:
        m3_refs = {p.key: p.m3_ref for p in outcome.posted}
        booked = {p.key: p.local for p in outcome.posted if p.local is not None}
        for voucher in outcome.vouchers:
            money = styles.get(amount_style(voucher.currency))
            total = styles.get(total_style(voucher.currency))
            voucher_cells = {
                "Settlement ID": outcome.settlement.settlement_id,
                "Voucher key": voucher.key,
                "M3 voucher": m3_refs.get(voucher.key, ""),
                "Currency": voucher.currency,
            }
            accounting_date = as_datetime(voucher.accounting_date)
            audit = outcome.audits.get(voucher.key)
            local = booked.get(voucher.key)
            # Not read back this run (posted earlier): the division is the first part of M3's reference.
            division = local.division if local is not None else m3_refs.get(voucher.key, "").split("/")[0]
            # M3 keeps the lines in the order they were sent; pair them only when it holds them all.
            sent = local.sent_lines if local is not None else ()
            paired = sent if len(sent) == len(voucher.lines) else (None,) * len(voucher.lines)
            first = row
            for line, local_line in zip(voucher.lines, paired):
                _write_cells(
                    sheet,
                    row,
                    {
                        **voucher_cells,
                        **dict(zip(_AIT, (line.account, *line.dimensions), strict=True)),
                        "Category": category_words(line.category, descriptions),
                        "Description": cell_text(line.description),
                        "Role": _ROLE_WORDS.get(line.role, line.role),
                    },
                )
                sheet.write_datetime(row, _AT["Accounting date"], accounting_date, when)
                _write_audit(sheet, row, audit)
                _write_local(sheet, styles, row, division, local_line)
                if line.vat_code:
                    sheet.write_string(row, _AT["VAT code"], line.vat_code)
                if line.amount_minor > 0:
                    sheet.write_number(row, _AT["Debit"], to_decimal(line.amount_minor, voucher.decimals), money)
                elif line.amount_minor < 0:
                    sheet.write_number(row, _AT["Credit"], to_decimal(-line.amount_minor, voucher.decimals), money)
                row += 1
            for added in local.added_lines if local is not None else ():
                _write_cells(
                    sheet,
                    row,
                    {
                        **voucher_cells,
                        **dict(zip(_AIT, (*added.dimensions, *("",) * (len(_AIT) - len(added.dimensions))))),
                        "Category": category_words("fx_rounding", descriptions),
                        "Description": "Currency rounding booked by M3 (local currency only)",
                        "Role": "rounding",
                    },
                )
                sheet.write_datetime(row, _AT["Accounting date"], accounting_date, when)
                _write_audit(sheet, row, audit)
                _write_local(sheet, styles, row, division, added)
                row += 1
            last = row - 1
            bold = styles.get(BOLD)
            _write_cells(sheet, row, voucher_cells, bold)
            sheet.write_datetime(row, _AT["Accounting date"], accounting_date, when)
            _write_cells(sheet, row, {"Description": f"Total {voucher.key}", "Role": "total"}, bold)
            _write_audit(sheet, row, audit, bold)
            if division:
                sheet.write_string(row, _AT["M3 division"], division, bold)
            if local is not None:
                local_total = styles.get(f"{_LOCAL_AMOUNT}:total", {"num_format": "#,##0.00", "bold": True, "top": 1})
                sheet.write_number(row, _AT["Local debit"], local.local_debit, local_total)
                sheet.write_number(row, _AT["Local credit"], local.local_credit, local_total)
            debit, credit = voucher.debit_minor, voucher.credit_minor
            sheet.write_formula(
                row,
                _AT["Debit"],
                f"=SUBTOTAL(9,{debit_col}{first + 1}:{debit_col}{last + 1})",
                total,
                to_decimal(debit, voucher.decimals),
            )
            sheet.write_formula(
                row,
                _AT["Credit"],
                f"=SUBTOTAL(9,{credit_col}{first + 1}:{credit_col}{last + 1})",
                total,
                to_decimal(credit, voucher.decimals),
            )
            sheet.write_formula(
                row,
                _AT["Debit - credit"],
                f"={debit_col}{row + 1}-{credit_col}{row + 1}",
                total,
                to_decimal(debit - credit, voucher.decimals),
            )
            row += 1
    sheet.autofilter(0, 0, max(row - 1, 1), len(JOURNAL_COLUMNS) - 1)
