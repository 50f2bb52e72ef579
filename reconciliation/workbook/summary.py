"""The Summary sheet: one row per settlement with its status and checks; below, the run's
settlements side by side, one column per settlement and one row per item and M3 account, each
column summing, in formulas, to Amazon's total and the vouchers' deposit line with a check cell
under each; last, the run's totals per currency (SUMIFS over the settlements' rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from reconciliation.matching import CATEGORIES
from reconciliation.model import currency_decimals
from reconciliation.outcome import SettlementOutcome
from reconciliation.parse import SettlementFileError
from reconciliation.vouchers import ROLE_DEPOSIT
from reconciliation.workbook.checks import check_words
from reconciliation.workbook.common import (
    BAD,
    BOLD,
    CATEGORY_LABELS,
    DATE,
    DATETIME,
    HEADER,
    SHEET_CHECKS,
    SHEET_EXCEPTIONS,
    SHEET_LINES,
    TITLE,
    WRAP,
    SheetColumn,
    amount_style,
    category_words,
    cell_ref,
    cell_text,
    column_letter,
    column_positions,
    currency_number_format,
    link_lines_file,
    naive_utc,
    row_height,
    to_decimal,
    warn_unless_ok,
    write_header_row,
)
from reconciliation.workbook.lines import exact_sum
from reconciliation.xlsx_tables import Styles

SUMMARY_HEADER_ROW = 3  # 0-based: title, generated-at and counts rows come first

# The Summary prints one landscape page wide at about 80% (under 190 characters): the table's
# columns and the settlement columns below share the sheet's columns, so each is as wide as
# both need. Up to SETTLEMENTS_ACROSS settlements stand side by side; more of one currency
# continue in the next group of columns below.
SETTLEMENTS_ACROSS = 8
SETTLEMENT_WIDTH = 12.5  # "-1,234,567.89": the currency is in the group's heading, not in each cell

# The settlement groups' first columns (then one column per settlement): the rows' labels and
# the group's sum per row.
BLOCK_COLUMNS = (
    SheetColumn("Item", 15),  # longer labels ("Deposit line of the vouchers") run on into the empty Description
    SheetColumn("Description", 34),  # the GL mapping's, up to ~39 characters on one line
    SheetColumn("M3 account", 11),
    SheetColumn("Sum of the settlements", 14),
)
BLOCK_HEADERS = [c.header for c in BLOCK_COLUMNS]
_BLOCK_AT = column_positions(BLOCK_COLUMNS)
_ITEM, _DESCRIPTION, _ACCOUNT = _BLOCK_AT["Item"], _BLOCK_AT["Description"], _BLOCK_AT["M3 account"]
_SUM = _BLOCK_AT["Sum of the settlements"]
_FIRST_SETTLEMENT = len(BLOCK_COLUMNS)
SummaryColumn = SheetColumn  # the name this module's columns had before SheetColumn served every sheet

# The Summary's table: what an accountant scans first. Reasons (often a few hundred characters)
# are merged across the settlement columns right of their own, so a row is about 5 lines at most.
_REASONS_COLUMN_WIDTH = 13.5  # Reasons' own column and the ones it is merged with
_TABLE_COLUMNS = (
    SheetColumn("Settlement ID", 15),
    SheetColumn("Marketplace and period (UTC)", 24),
    SheetColumn("Deposit date (UTC)", 11),
    SheetColumn("Total (deposit)", 14),
    SheetColumn("Status", SETTLEMENT_WIDTH),
    SheetColumn("M3 voucher numbers", 14),  # "AAA/2026/AZ/38": LibreOffice would break it at a slash
    SheetColumn("Checks", SETTLEMENT_WIDTH),
    SheetColumn("Reconciliation", 13),
    SheetColumn("Reasons", _REASONS_COLUMN_WIDTH),
)
SUMMARY_COLUMNS = tuple(
    SheetColumn(c.header, max([c.width, *(b.width for b in BLOCK_COLUMNS[index : index + 1])]))
    for index, c in enumerate(_TABLE_COLUMNS)
)
SUMMARY_HEADERS = [c.header for c in SUMMARY_COLUMNS]
_AT = column_positions(SUMMARY_COLUMNS)
# The sheet's columns: the settlement groups reach past the table's last column.
_LAST_COLUMN = _FIRST_SETTLEMENT + SETTLEMENTS_ACROSS - 1
_WIDTHS = (
    *(c.width for c in SUMMARY_COLUMNS),
    *(_REASONS_COLUMN_WIDTH for _ in range(len(SUMMARY_COLUMNS), _LAST_COLUMN + 1)),
)
_REASONS_WIDTH = sum(_WIDTHS[_AT["Reasons"] :])


def write_summary(
    sheet: Worksheet,
    styles: Styles,
    outcomes: Sequence[SettlementOutcome],
    file_errors: Sequence[SettlementFileError],
    generated: datetime,
    notes: Sequence[str],
    lines_file: Path | None,
    line_count: int,
    descriptions: Mapping[str, str],
) -> None:
    sheet.write_string(0, 0, "Amazon settlement run", styles.get(TITLE))
    sheet.write_string(1, 0, "Generated (UTC)")
    sheet.write_datetime(1, 1, generated, styles.get(DATETIME))
    counts = pd.Series([STATUS_WORDS.get(o.status, o.status) for o in outcomes], dtype="str").value_counts()
    status_text = ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"
    sheet.write_string(
        2,
        0,
        f"{len(outcomes)} settlement(s): {status_text}; {len(file_errors)} file error(s) (see {SHEET_EXCEPTIONS}); "
        f"the figures behind each check are on the {SHEET_CHECKS} sheet",
    )
    write_header_row(sheet, styles, SUMMARY_COLUMNS, SUMMARY_HEADER_ROW)
    sheet.set_column(len(SUMMARY_COLUMNS), _LAST_COLUMN, _REASONS_COLUMN_WIDTH)
    _merge_reasons(sheet, SUMMARY_HEADER_ROW, "Reasons", styles.get(HEADER))
    sheet.set_row(SUMMARY_HEADER_ROW, row_height([(c.header, c.width) for c in SUMMARY_COLUMNS]))
    sheet.freeze_panes(SUMMARY_HEADER_ROW + 1, 1)
    row = SUMMARY_HEADER_ROW + 1
    for outcome in outcomes:
        _write_summary_row(sheet, styles, row, outcome)
        row += 1
    last = max(row - 1, SUMMARY_HEADER_ROW + 1)
    sheet.autofilter(SUMMARY_HEADER_ROW, 0, last, len(SUMMARY_COLUMNS) - 1)
    warn_unless_ok(sheet, styles, SUMMARY_HEADER_ROW + 1, last, _AT["Checks"])
    row = last + 2
    if lines_file is not None:
        link_lines_file(
            sheet,
            row,
            0,
            lines_file,
            f"All {line_count} lines of this run are in {lines_file.name} beside this workbook (CSV, "
            f"exact amounts); the {SHEET_LINES} sheet sums them per settlement, day and fee type.",
        )
        row += 1
    for note in notes:
        sheet.write_string(row, 0, cell_text(note))
        row += 1
    row += 1
    if not outcomes:
        return
    by_currency: dict[str, list[SettlementOutcome]] = {}
    for outcome in outcomes:
        by_currency.setdefault(outcome.settlement.currency, []).append(outcome)
    ranges: dict[str, tuple[int, int]] = {}
    for currency, group in sorted(by_currency.items()):
        first = row
        for start in range(0, len(group), SETTLEMENTS_ACROSS):
            row = _write_settlement_group(sheet, styles, row, group[start : start + SETTLEMENTS_ACROSS], descriptions)
        ranges[currency] = (first, row - 2)  # the blank row after the last group is not in the range
    _write_currency_totals(sheet, styles, row, CurrencyTotals.of(outcomes), ranges)


def _merge_reasons(sheet: Worksheet, row: int, text: str, style: Format) -> None:
    """The Reasons cell of ``row``, merged with the settlement columns right of it."""
    sheet.merge_range(row, _AT["Reasons"], row, _LAST_COLUMN, cell_text(text), style)


def _reconciliation_words(outcome: SettlementOutcome) -> str:
    """The reconciliation's counts in words ("3 matched, 1 amount mismatch"), or why it was skipped."""
    if outcome.reconciliation is None:
        return "Skipped: " + (outcome.reconciliation_skipped_reason or "not reconciled")
    counts = outcome.reconciliation.counts
    labels = {c: CATEGORY_LABELS.get(c, c) for c in CATEGORIES}
    words = [f"{counts[c]} {labels[c][:1].lower()}{labels[c][1:]}" for c in CATEGORIES if counts.get(c)]
    return ", ".join(words) or "No orders to reconcile"


def _write_summary_row(sheet: Worksheet, styles: Styles, row: int, outcome: SettlementOutcome) -> None:
    settlement = outcome.settlement
    wrap = styles.get(WRAP)
    start, end = (naive_utc(t).strftime("%Y-%m-%d") for t in (settlement.start, settlement.end))
    texts = {
        "Settlement ID": settlement.settlement_id,
        "Marketplace and period (UTC)": f"{settlement.marketplace}, {settlement.currency}\n{start} to {end}",
        "Status": STATUS_WORDS.get(outcome.status, outcome.status),
        "M3 voucher numbers": "\n".join(
            [
                *(f"{p.m3_ref}{' (already posted)' if p.already_posted else ''}" for p in outcome.posted),
                *(f"batch {b.batch} (submitted, not booked yet)" for b in outcome.submitted),
            ]
        ),
        "Checks": check_words(outcome),
        "Reconciliation": _reconciliation_words(outcome),
    }
    for name, text in texts.items():
        if text:
            sheet.write_string(row, _AT[name], text, wrap)
    reasons = "\n".join(outcome.reasons)
    if reasons:
        _merge_reasons(sheet, row, reasons, wrap)
    widths = [(text, SUMMARY_COLUMNS[_AT[n]].width) for n, text in texts.items()]
    sheet.set_row(row, row_height([*widths, (reasons, _REASONS_WIDTH)]))
    # at the top of the row, beside the first line of the wrapped texts
    top_date = styles.get(f"{DATE}:top", {"num_format": "yyyy-mm-dd", "valign": "top"})
    sheet.write_datetime(row, _AT["Deposit date (UTC)"], naive_utc(settlement.deposit_date), top_date)
    currency = settlement.currency
    top_money = styles.get(
        f"{amount_style(currency)}:top", {"num_format": currency_number_format(currency), "valign": "top"}
    )
    total = to_decimal(settlement.total_minor, settlement.decimals)
    sheet.write_number(row, _AT["Total (deposit)"], total, top_money)


# --- the settlements side by side, and the run's totals per currency --------------------------

# A settlement's status as the Summary says it.
STATUS_WORDS: dict[str, str] = {
    "posted": "Posted to M3",
    "dry_run": "Checked, not posted (dry run)",
    "held": "Held: not posted",
    "duplicate": "Already in M3",
    "submitted": "Submitted to M3, not booked yet",
    "invalid": "File cannot be read",
    "failed": "Failed: see the log",
}

# The items of a settlement block, in this order; a category not named here is "Other".
_ITEM_SALES, _ITEM_OTHER = "Sales", "Other"
_ITEMS: tuple[tuple[str, frozenset[str]], ...] = (
    (_ITEM_SALES, frozenset({"principal"})),
    ("Shipping", frozenset({"shipping"})),
    (
        "Tax",
        frozenset(
            {
                "tax",
                "marketplace_facilitator_tax",
                "sales_tax_adjustments",
                "facilitator_tax_clearing",
                "input_tax",
                "withholding_tax",
                "sales_returns_tax",
            }
        ),
    ),
    ("Promotions", frozenset({"promotions"})),
    ("Refunds", frozenset({"refunds", "sales_returns"})),
    (
        "Amazon fees",
        frozenset(
            {
                "referral_commission",
                "fba_fulfilment_fees",
                "other_selling_fees",
                "refund_commission",
                "advertising",
                "subscription",
                "storage",
                "removal",
                "liquidation_fees",
                "promotion_fees",
                "outbound_freight",
            }
        ),
    ),
    ("Reserves", frozenset({"reserves"})),
    ("Reimbursements", frozenset({"reimbursements"})),
    (_ITEM_OTHER, frozenset()),
)
_ITEM_ORDER = {name: index for index, (name, _) in enumerate(_ITEMS)}
_ITEM_OF = {category: name for name, categories in _ITEMS for category in categories}
_NOT_MAPPED = "Not mapped to an account yet (see Exceptions)"

_TOTAL_OF_ITEMS = "Total of the items"
_AMAZON_TOTAL = "Total Amazon reported"
_DEPOSIT_LINE = "Deposit line of the vouchers"
_CHECK_TOTAL = "Check: items - Amazon's total"
_CHECK_DEPOSIT = "Check: items - deposit line"
_NO_VOUCHERS = "No vouchers"


@dataclass(frozen=True)
class SummaryItem:
    """One row of the settlement columns: a settlement's lines of one GL category and account."""

    item: str
    description: str
    account: str
    amount_minor: int

    @property
    def key(self) -> tuple[str, str, str]:
        """The row it is summed in: item, description and account."""
        return self.item, self.description, self.account


def _row_order(key: tuple[str, str, str]) -> tuple[int, bool, str, str]:
    item, description, account = key
    return _ITEM_ORDER[item], description == _NOT_MAPPED, account, description


def summary_items(outcome: SettlementOutcome, descriptions: Mapping[str, str]) -> list[SummaryItem]:
    """The settlement's lines summed exactly per GL category and account, in the Summary's item
    order.

    Descriptions are the GL mapping's: ``descriptions`` (category -> description), else as the
    vouchers' lines carry them; a category neither names is described in words made from its name."""
    settlement = outcome.settlement
    mapped = outcome.mapped
    if mapped is None or len(mapped.lines) != len(settlement.lines):
        amounts = settlement.lines["amount_minor"].to_numpy(dtype=np.int64)
        return [SummaryItem(_ITEM_OTHER, _NOT_MAPPED, "", exact_sum(amounts))] if len(amounts) else []
    described = {
        **{line.category: line.description for v in outcome.vouchers for line in v.lines if "+" not in line.category},
        **descriptions,
    }
    lines = pd.DataFrame(
        {
            "category": mapped.lines["category"].astype("str").fillna("").to_numpy(),
            "account": mapped.lines["account"].astype("str").fillna("").to_numpy(),
            "amount_minor": settlement.lines["amount_minor"].to_numpy(dtype=np.int64),
        }
    )
    items = []
    for (category, account), group in lines.groupby(["category", "account"], sort=True):
        amount = exact_sum(group["amount_minor"].to_numpy(dtype=np.int64))
        description = _NOT_MAPPED if not category else category_words(str(category), described)
        items.append(SummaryItem(_ITEM_OF.get(str(category), _ITEM_OTHER), description, str(account), amount))
    return sorted(items, key=lambda i: _row_order(i.key))


def _number_format(decimals: int) -> str:
    """Plain amounts to the currency's decimals: the currency is in the heading, which keeps a
    settlement's column narrow enough for nine side by side."""
    return "#,##0" + ("." + "0" * decimals if decimals else "")


def _number_styles(styles: Styles, decimals: int) -> tuple[Format, Format]:
    """Amounts and their bold total (``_number_format``); at the top of a row whose description wraps."""
    number_format = _number_format(decimals)
    plain = styles.get(f"plain:{decimals}", {"num_format": number_format, "valign": "top"})
    total = styles.get(f"plain-total:{decimals}", {"num_format": number_format, "bold": True, "top": 1})
    return plain, total


def _write_check(
    sheet: Worksheet, styles: Styles, row: int, column: int, a: str, b: str, difference: int, decimals: int
) -> None:
    """A check cell: OK when cells ``a`` and ``b`` agree (to the currency's decimals), else the difference."""
    rounded = f"ROUND({a}-{b},{decimals})"
    cached: str | Decimal = "OK" if not difference else to_decimal(difference, decimals)
    # "OK" right-aligned, under the amounts it checks
    check = styles.get(f"check:{decimals}", {"num_format": _number_format(decimals), "align": "right"})
    sheet.write_formula(row, column, f'=IF({rounded}=0,"OK",{rounded})', check, cached)
    sheet.conditional_format(
        row, column, row, column, {"type": "cell", "criteria": "!=", "value": '"OK"', "format": styles.get(BAD)}
    )


def _settlement_heading(outcome: SettlementOutcome) -> str:
    """A settlement column's heading: its ID, marketplace and period (UTC)."""
    settlement = outcome.settlement
    start, end = (naive_utc(t).strftime("%Y-%m-%d") for t in (settlement.start, settlement.end))
    return f"{settlement.settlement_id}\n{settlement.marketplace}\n{start} to\n{end}"


def _write_settlement_group(
    sheet: Worksheet,
    styles: Styles,
    row: int,
    outcomes: Sequence[SettlementOutcome],
    descriptions: Mapping[str, str],
) -> int:
    """Settlements of one currency side by side, one column each: their items by M3 account
    (a row per item, description and account; the group's sum beside the labels), each column
    summing (a formula) to Amazon's total and to the vouchers' deposit line with a check cell
    under each. Returns the row after the group and the blank row closing it."""
    currency = outcomes[0].settlement.currency
    decimals = currency_decimals(currency)
    money, total_money = _number_styles(styles, decimals)
    bold, header = styles.get(BOLD), styles.get(HEADER)
    columns = range(_FIRST_SETTLEMENT, _FIRST_SETTLEMENT + len(outcomes))
    first_column, last_column = columns[0], columns[-1]
    sheet.write_string(row, _ITEM, f"Settlements in {currency}: items by M3 account (amounts in {currency})", bold)
    headings = [_settlement_heading(o) for o in outcomes]
    for column, spec in enumerate(BLOCK_COLUMNS):
        sheet.write_string(row + 1, column, spec.header, header)
    for column, heading in zip(columns, headings):
        sheet.write_string(row + 1, column, heading, header)
    sheet.set_row(row + 1, row_height([(h, _WIDTHS[c]) for c, h in zip(columns, headings)]))
    row += 2

    def across(at: int) -> str:  # the group's sum of a row
        return f"=SUM({cell_ref(at, first_column)}:{cell_ref(at, last_column)})"

    amounts = [{i.key: i.amount_minor for i in summary_items(o, descriptions)} for o in outcomes]
    keys = sorted({key for found in amounts for key in found}, key=_row_order)
    first = row
    for key in keys:
        item, description, account = key
        sheet.write_string(row, _ITEM, item, styles.get(WRAP))
        sheet.write_string(row, _DESCRIPTION, cell_text(description), styles.get(WRAP))
        sheet.set_row(row, row_height([(description, BLOCK_COLUMNS[_DESCRIPTION].width)]))
        if account:
            sheet.write_string(row, _ACCOUNT, account, styles.get(WRAP))
        for column, found in zip(columns, amounts):
            if key in found:
                sheet.write_number(row, column, to_decimal(found[key], decimals), money)
        row_minor = sum(found.get(key, 0) for found in amounts)
        sheet.write_formula(row, _SUM, across(row), money, to_decimal(row_minor, decimals))
        row += 1

    items_minor = [sum(found.values()) for found in amounts]
    totals_minor = [o.settlement.total_minor for o in outcomes]
    deposit_lines = [[line for v in o.vouchers for line in v.lines if line.role == ROLE_DEPOSIT] for o in outcomes]
    deposits_minor = [sum(line.amount_minor for line in lines) for lines in deposit_lines]
    total_row, amazon_row, amazon_check, deposit_row, deposit_check = range(row, row + 5)
    for at, label in (
        (total_row, _TOTAL_OF_ITEMS),
        (amazon_row, _AMAZON_TOTAL),
        (amazon_check, _CHECK_TOTAL),
        (deposit_row, _DEPOSIT_LINE),
        (deposit_check, _CHECK_DEPOSIT),
    ):
        sheet.write_string(at, _ITEM, label, bold)  # runs on into the empty Description
    accounts = ", ".join(dict.fromkeys(line.account for lines in deposit_lines for line in lines))
    if accounts:
        sheet.write_string(deposit_row, _ACCOUNT, accounts)
    for column, outcome, items, amazon, deposit in zip(columns, outcomes, items_minor, totals_minor, deposits_minor):
        items_sum = f"=SUM({cell_ref(first, column)}:{cell_ref(total_row - 1, column)})" if keys else "=0"
        sheet.write_formula(total_row, column, items_sum, total_money, to_decimal(items, decimals))
        sheet.write_number(amazon_row, column, to_decimal(amazon, decimals), money)
        sum_cell = cell_ref(total_row, column)
        _write_check(
            sheet, styles, amazon_check, column, sum_cell, cell_ref(amazon_row, column), items - amazon, decimals
        )
        if outcome.vouchers:
            sheet.write_number(deposit_row, column, to_decimal(deposit, decimals), money)
            deposit_cell = cell_ref(deposit_row, column)
            _write_check(sheet, styles, deposit_check, column, sum_cell, deposit_cell, items - deposit, decimals)
        else:
            sheet.write_string(deposit_row, column, _NO_VOUCHERS)
            sheet.write_string(deposit_check, column, _NO_VOUCHERS)
    # The group's sums; the deposit check is per settlement only (a held settlement has no deposit line).
    group_sums = ((total_row, total_money, items_minor), (amazon_row, money, totals_minor))
    for at, style, figures in (*group_sums, (deposit_row, money, deposits_minor)):
        sheet.write_formula(at, _SUM, across(at), style, to_decimal(sum(figures), decimals))
    _write_check(
        sheet,
        styles,
        amazon_check,
        _SUM,
        cell_ref(total_row, _SUM),
        cell_ref(amazon_row, _SUM),
        sum(items_minor) - sum(totals_minor),
        decimals,
    )
    return row + 6


@dataclass(frozen=True)
class CurrencyTotals:
    """A currency's exact sums over the run (minor units): the cached values of the totals' formulas;
    ``items`` has the items its settlements have (by item name)."""

    items: dict[str, int]
    amazon_total_minor: int
    deposit_minor: int

    @classmethod
    def of(cls, outcomes: Sequence[SettlementOutcome]) -> dict[str, CurrencyTotals]:
        found: dict[str, CurrencyTotals] = {}
        for outcome in outcomes:
            currency = outcome.settlement.currency
            known = found.get(currency, cls({}, 0, 0))
            items = dict(known.items)
            for item in summary_items(outcome, {}):
                items[item.item] = items.get(item.item, 0) + item.amount_minor
            deposit = sum(v.deposit_minor for v in outcome.vouchers)
            found[currency] = cls(
                items, known.amazon_total_minor + outcome.settlement.total_minor, known.deposit_minor + deposit
            )
        return dict(sorted(found.items()))


def _write_currency_totals(
    sheet: Worksheet, styles: Styles, row: int, totals: dict[str, CurrencyTotals], ranges: dict[str, tuple[int, int]]
) -> int:
    """The run's items, Amazon's totals and the deposit lines, one column per currency: SUMIFS
    over the groups' sums (the currency's rows ``ranges``, 0-based, inclusive) by label; items
    no settlement has are left out. Returns the row after them."""
    sheet.write_string(row, _ITEM, "Totals of the run per currency", styles.get(TITLE))
    row += 1
    names = [name for name, _ in _ITEMS if any(name in t.items for t in totals.values())]
    currencies = list(totals)
    across = SETTLEMENTS_ACROSS + _FIRST_SETTLEMENT - _SUM  # currency columns from the groups' sums on
    bold, header = styles.get(BOLD), styles.get(HEADER)
    for start in range(0, len(currencies), across):
        shown = currencies[start : start + across]
        sheet.write_string(row, _ITEM, "Item", header)
        sheet.write_string(row, _DESCRIPTION, "", header)
        sheet.write_string(row, _ACCOUNT, "", header)
        for offset, currency in enumerate(shown):
            sheet.write_string(row, _SUM + offset, f"All in {currency}", header)
        row += 1
        first = row
        labels = [*names, _TOTAL_OF_ITEMS, _AMAZON_TOTAL, _CHECK_TOTAL, _DEPOSIT_LINE, "Not in vouchers"]
        for at, label in enumerate(labels, start=row):
            sheet.write_string(at, _ITEM, label, bold if at >= row + len(names) else None)
        not_in_vouchers = row + len(labels) - 1
        sheet.write_string(not_in_vouchers, _DESCRIPTION, "Amazon's total of settlements held or not prepared")
        total_row = row + len(names)
        for offset, currency in enumerate(shown):
            column, figures = _SUM + offset, totals[currency]
            decimals = currency_decimals(currency)
            money, total_money = _number_styles(styles, decimals)
            low, high = ranges[currency]
            ranged = ",".join(f"${column_letter(c)}${low + 1}:${column_letter(c)}${high + 1}" for c in (_SUM, _ITEM))
            for at, name in enumerate(names, start=first):
                cached = to_decimal(figures.items.get(name, 0), decimals)
                sheet.write_formula(at, column, f'=SUMIFS({ranged},"{name}")', money, cached)
            items_minor = sum(figures.items.values())
            items_sum = f"=SUM({cell_ref(first, column)}:{cell_ref(total_row - 1, column)})" if names else "=0"
            sheet.write_formula(total_row, column, items_sum, total_money, to_decimal(items_minor, decimals))
            amazon = to_decimal(figures.amazon_total_minor, decimals)
            sheet.write_formula(total_row + 1, column, f'=SUMIFS({ranged},"{_AMAZON_TOTAL}")', money, amazon)
            _write_check(
                sheet,
                styles,
                total_row + 2,
                column,
                cell_ref(total_row, column),
                cell_ref(total_row + 1, column),
                items_minor - figures.amazon_total_minor,
                decimals,
            )
            deposit = to_decimal(figures.deposit_minor, decimals)
            sheet.write_formula(total_row + 3, column, f'=SUMIFS({ranged},"{_DEPOSIT_LINE}")', money, deposit)
            sheet.write_formula(
                not_in_vouchers,
                column,
                f"={cell_ref(total_row + 1, column)}-{cell_ref(total_row + 3, column)}",
                money,
                to_decimal(figures.amazon_total_minor - figures.deposit_minor, decimals),
            )
        row = not_in_vouchers + 2
    return row
