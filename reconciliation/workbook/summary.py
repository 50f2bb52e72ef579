"""The Summary sheet: one row per settlement with its status and checks; below, one block per
settlement whose items by M3 account sum, in formulas, to Amazon's total and the vouchers'
deposit line, and the run's totals per currency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
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
    total_style,
    warn_unless_ok,
    write_header_row,
)
from reconciliation.workbook.lines import exact_sum
from reconciliation.xlsx_tables import Styles

SUMMARY_HEADER_ROW = 3  # 0-based: title, generated-at and counts rows come first

# The settlement blocks' and currency totals' columns (formula layouts, written cell by cell).
BLOCK_COLUMNS = (
    SheetColumn("Item", 28),  # "Deposit line of the vouchers" in bold
    SheetColumn("Description", 38),  # wrapped beyond
    SheetColumn("M3 account", 11),
    SheetColumn("Amount", 15),
    SheetColumn("Currency", 9),
    SheetColumn("Lines", 8),
)
BLOCK_HEADERS = [c.header for c in BLOCK_COLUMNS]
_BLOCK_AT = column_positions(BLOCK_COLUMNS)
_ITEM, _DESCRIPTION, _ACCOUNT = _BLOCK_AT["Item"], _BLOCK_AT["Description"], _BLOCK_AT["M3 account"]
_AMOUNT, _CURRENCY, _LINE_COUNT = _BLOCK_AT["Amount"], _BLOCK_AT["Currency"], _BLOCK_AT["Lines"]
SummaryColumn = SheetColumn  # the name this module's columns had before SheetColumn served every sheet

# The Summary's table: what an accountant scans first, narrow enough to print on a landscape
# page together with the settlement blocks below it (which share its first columns, so each
# column is as wide as the wider of the two).
_TABLE_COLUMNS = (
    SheetColumn("Settlement ID", 14),
    SheetColumn("Marketplace and period (UTC)", 28),
    SheetColumn("Deposit date (UTC)", 12),
    SheetColumn("Total (deposit)", 15),
    SheetColumn("Status", 13),
    SheetColumn("M3 voucher numbers", 14),
    SheetColumn("Checks", 14),
    SheetColumn("Reconciliation", 15),
    SheetColumn("Reasons", 30),
)
SUMMARY_COLUMNS = tuple(
    SheetColumn(c.header, max([c.width, *(b.width for b in BLOCK_COLUMNS[index : index + 1])]))
    for index, c in enumerate(_TABLE_COLUMNS)
)
SUMMARY_HEADERS = [c.header for c in SUMMARY_COLUMNS]
_AT = column_positions(SUMMARY_COLUMNS)


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
    first_block = row
    for outcome in outcomes:
        row = _write_settlement_block(sheet, styles, row, outcome, descriptions) + 1
    if outcomes:
        _write_currency_totals(sheet, styles, row, CurrencyTotals.of(outcomes), (first_block, row - 1))


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
        "Reasons": cell_text("\n".join(outcome.reasons)),
    }
    for name, text in texts.items():
        if text:
            sheet.write_string(row, _AT[name], text, wrap)
    sheet.set_row(row, row_height([(text, SUMMARY_COLUMNS[_AT[n]].width) for n, text in texts.items()]))
    # at the top of the row, beside the first line of the wrapped texts
    top_date = styles.get(f"{DATE}:top", {"num_format": "yyyy-mm-dd", "valign": "top"})
    sheet.write_datetime(row, _AT["Deposit date (UTC)"], naive_utc(settlement.deposit_date), top_date)
    currency = settlement.currency
    top_money = styles.get(
        f"{amount_style(currency)}:top", {"num_format": currency_number_format(currency), "valign": "top"}
    )
    total = to_decimal(settlement.total_minor, settlement.decimals)
    sheet.write_number(row, _AT["Total (deposit)"], total, top_money)


# --- summary: one block per settlement that ties to its deposit, totals per currency ---------

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


def _write_description(sheet: Worksheet, styles: Styles, row: int, text: str) -> None:
    """A block row's description, wrapped, and the row as tall as it."""
    sheet.write_string(row, _DESCRIPTION, cell_text(text), styles.get(WRAP))
    sheet.set_row(row, row_height([(text, SUMMARY_COLUMNS[_DESCRIPTION].width)]))


@dataclass(frozen=True)
class SummaryItem:
    """One row of a settlement block: the settlement's lines of one GL category and account."""

    item: str
    description: str
    account: str
    amount_minor: int
    line_count: int


def summary_items(outcome: SettlementOutcome, descriptions: Mapping[str, str]) -> list[SummaryItem]:
    """The settlement's lines summed exactly per GL category and account, in the block's item order.

    Descriptions are the GL mapping's: ``descriptions`` (category -> description), else as the
    vouchers' lines carry them; a category neither names is described in words made from its name."""
    settlement = outcome.settlement
    mapped = outcome.mapped
    if mapped is None or len(mapped.lines) != len(settlement.lines):
        amounts = settlement.lines["amount_minor"].to_numpy(dtype=np.int64)
        return [SummaryItem(_ITEM_OTHER, _NOT_MAPPED, "", exact_sum(amounts), len(amounts))] if len(amounts) else []
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
        amounts = group["amount_minor"].to_numpy(dtype=np.int64)
        description = _NOT_MAPPED if not category else category_words(str(category), described)
        item = _ITEM_OF.get(str(category), _ITEM_OTHER)
        items.append(SummaryItem(item, description, str(account), exact_sum(amounts), len(amounts)))
    return sorted(items, key=lambda i: (_ITEM_ORDER[i.item], i.description == _NOT_MAPPED, i.account))


def _write_block_header(sheet: Worksheet, styles: Styles, row: int) -> None:
    for column, spec in enumerate(BLOCK_COLUMNS):
        sheet.write_string(row, column, spec.header, styles.get(HEADER))


def _write_check(
    sheet: Worksheet,
    styles: Styles,
    row: int,
    label: str,
    a: str,
    b: str,
    difference: int,
    decimals: int,
    currency: str,
) -> None:
    """A check row: OK when cells ``a`` and ``b`` agree (to the currency's decimals), else the difference."""
    sheet.write_string(row, _ITEM, label, styles.get(BOLD))
    rounded = f"ROUND({a}-{b},{decimals})"
    cached: str | Decimal = "OK" if not difference else to_decimal(difference, decimals)
    sheet.write_formula(row, _AMOUNT, f'=IF({rounded}=0,"OK",{rounded})', styles.get(amount_style(currency)), cached)
    sheet.conditional_format(
        row, _AMOUNT, row, _AMOUNT, {"type": "cell", "criteria": "!=", "value": '"OK"', "format": styles.get(BAD)}
    )


def _write_settlement_block(
    sheet: Worksheet, styles: Styles, row: int, outcome: SettlementOutcome, descriptions: Mapping[str, str]
) -> int:
    """One settlement's items summing (a formula) to Amazon's total and to the vouchers' deposit
    line, with a check cell for each; returns the row after the block."""
    settlement = outcome.settlement
    currency, decimals = settlement.currency, settlement.decimals
    money = styles.get(amount_style(currency))
    total_money = styles.get(total_style(currency))
    start, end = (naive_utc(t).strftime("%Y-%m-%d") for t in (settlement.start, settlement.end))
    sheet.write_string(
        row,
        _ITEM,
        f"Settlement {settlement.settlement_id}: {settlement.marketplace}, {currency}, {start} to {end} (UTC), "
        f"deposit {naive_utc(settlement.deposit_date).strftime('%Y-%m-%d')}; "
        f"{STATUS_WORDS.get(outcome.status, outcome.status)}",
        styles.get(BOLD),
    )
    _write_block_header(sheet, styles, row + 1)
    row += 2
    items = summary_items(outcome, descriptions)
    first = row
    for item in items:
        sheet.write_string(row, _ITEM, item.item)
        _write_description(sheet, styles, row, item.description)
        if item.account:
            sheet.write_string(row, _ACCOUNT, item.account)
        sheet.write_number(row, _AMOUNT, to_decimal(item.amount_minor, decimals), money)
        sheet.write_string(row, _CURRENCY, currency)
        sheet.write_number(row, _LINE_COUNT, item.line_count)
        row += 1
    items_minor = sum(i.amount_minor for i in items)
    sum_cell, total_cell, deposit_cell = cell_ref(row, _AMOUNT), cell_ref(row + 1, _AMOUNT), cell_ref(row + 2, _AMOUNT)
    bold = styles.get(BOLD)
    sheet.write_string(row, _ITEM, _TOTAL_OF_ITEMS, bold)
    formula = f"=SUM({cell_ref(first, _AMOUNT)}:{cell_ref(row - 1, _AMOUNT)})" if items else "=0"
    sheet.write_formula(row, _AMOUNT, formula, total_money, to_decimal(items_minor, decimals))
    sheet.write_string(row + 1, _ITEM, _AMAZON_TOTAL, bold)
    _write_description(sheet, styles, row + 1, "The settlement's total amount in Amazon's file")
    sheet.write_number(row + 1, _AMOUNT, to_decimal(settlement.total_minor, decimals), money)
    sheet.write_string(row + 1, _CURRENCY, currency)
    sheet.write_string(row + 2, _ITEM, _DEPOSIT_LINE, bold)
    sheet.write_string(row + 4, _ITEM, _CHECK_DEPOSIT, bold)
    _write_check(
        sheet,
        styles,
        row + 3,
        _CHECK_TOTAL,
        sum_cell,
        total_cell,
        items_minor - settlement.total_minor,
        decimals,
        currency,
    )
    if outcome.vouchers:
        deposit_lines = [line for v in outcome.vouchers for line in v.lines if line.role == ROLE_DEPOSIT]
        deposit_minor = sum(line.amount_minor for line in deposit_lines)
        _write_description(
            sheet,
            styles,
            row + 2,
            "; ".join(dict.fromkeys(line.description for line in deposit_lines)) or "No deposit (nil total)",
        )
        sheet.write_string(row + 2, _ACCOUNT, ", ".join(dict.fromkeys(line.account for line in deposit_lines)))
        sheet.write_number(row + 2, _AMOUNT, to_decimal(deposit_minor, decimals), money)
        sheet.write_string(row + 2, _CURRENCY, currency)
        _write_check(
            sheet,
            styles,
            row + 4,
            _CHECK_DEPOSIT,
            sum_cell,
            deposit_cell,
            items_minor - deposit_minor,
            decimals,
            currency,
        )
    else:
        _write_description(sheet, styles, row + 2, "No vouchers: nothing to post (see Status and Reasons)")
        sheet.write_string(row + 4, _AMOUNT, "No vouchers")
    return row + 5


@dataclass(frozen=True)
class CurrencyTotals:
    """A currency's exact sums over the run (minor units): the cached values of the totals' formulas."""

    items: dict[str, int]
    amazon_total_minor: int
    deposit_minor: int

    @classmethod
    def of(cls, outcomes: Sequence[SettlementOutcome]) -> dict[str, CurrencyTotals]:
        found: dict[str, CurrencyTotals] = {}
        for outcome in outcomes:
            currency = outcome.settlement.currency
            known = found.get(currency, cls({name: 0 for name, _ in _ITEMS}, 0, 0))
            items = dict(known.items)
            for item in summary_items(outcome, {}):
                items[item.item] += item.amount_minor
            deposit = sum(v.deposit_minor for v in outcome.vouchers)
            found[currency] = cls(
                items, known.amazon_total_minor + outcome.settlement.total_minor, known.deposit_minor + deposit
            )
        return dict(sorted(found.items()))


def _write_currency_totals(
    sheet: Worksheet, styles: Styles, row: int, totals: dict[str, CurrencyTotals], blocks: tuple[int, int]
) -> int:
    """Per currency, the run's items, Amazon's totals and the deposit lines: SUMIFS over the
    settlement blocks' rows ``blocks`` (0-based, inclusive); returns the row after them."""
    sheet.write_string(row, _ITEM, "Totals of the run per currency", styles.get(TITLE))
    row += 1

    def column(index: int) -> str:
        letter = column_letter(index)
        return f"${letter}${blocks[0] + 1}:${letter}${blocks[1] + 1}"

    def sumifs(label: str, currency: str) -> str:
        return f'=SUMIFS({column(_AMOUNT)},{column(_ITEM)},"{label}",{column(_CURRENCY)},"{currency}")'

    bold = styles.get(BOLD)
    for currency, figures in totals.items():
        money, total_money = styles.get(amount_style(currency)), styles.get(total_style(currency))
        decimals = currency_decimals(currency)
        sheet.write_string(row, _ITEM, f"All settlements in {currency}", bold)
        _write_block_header(sheet, styles, row + 1)
        row += 2
        first = row
        for name, _ in _ITEMS:
            sheet.write_string(row, _ITEM, name)
            sheet.write_formula(row, _AMOUNT, sumifs(name, currency), money, to_decimal(figures.items[name], decimals))
            sheet.write_string(row, _CURRENCY, currency)
            row += 1
        items_minor = sum(figures.items.values())
        sheet.write_string(row, _ITEM, _TOTAL_OF_ITEMS, bold)
        sum_formula = f"=SUM({cell_ref(first, _AMOUNT)}:{cell_ref(row - 1, _AMOUNT)})"
        sheet.write_formula(row, _AMOUNT, sum_formula, total_money, to_decimal(items_minor, decimals))
        sheet.write_string(row + 1, _ITEM, _AMAZON_TOTAL, bold)
        amazon = to_decimal(figures.amazon_total_minor, decimals)
        sheet.write_formula(row + 1, _AMOUNT, sumifs(_AMAZON_TOTAL, currency), money, amazon)
        difference = items_minor - figures.amazon_total_minor
        _write_check(
            sheet,
            styles,
            row + 2,
            _CHECK_TOTAL,
            cell_ref(row, _AMOUNT),
            cell_ref(row + 1, _AMOUNT),
            difference,
            decimals,
            currency,
        )
        sheet.write_string(row + 3, _ITEM, _DEPOSIT_LINE, bold)
        deposit = to_decimal(figures.deposit_minor, decimals)
        sheet.write_formula(row + 3, _AMOUNT, sumifs(_DEPOSIT_LINE, currency), money, deposit)
        sheet.write_string(row + 4, _ITEM, "Not in vouchers", bold)
        _write_description(sheet, styles, row + 4, "Amazon's total of settlements held or not prepared")
        sheet.write_formula(
            row + 4,
            _AMOUNT,
            f"={cell_ref(row + 1, _AMOUNT)}-{cell_ref(row + 3, _AMOUNT)}",
            money,
            to_decimal(figures.amazon_total_minor - figures.deposit_minor, decimals),
        )
        row += 6
    return row
