"""The Read me sheet: what each sheet holds and how a settlement is booked, in an accountant's words."""

from __future__ import annotations

from collections.abc import Sequence

from xlsxwriter.worksheet import Worksheet

from reconciliation.model import format_minor
from reconciliation.outcome import SettlementOutcome
from reconciliation.workbook.common import (
    SHEET_ANOMALIES,
    SHEET_CHECKS,
    SHEET_EXCEPTIONS,
    SHEET_FEES,
    SHEET_JOURNAL,
    SHEET_LINES,
    SHEET_RECONCILIATION,
    SHEET_SUMMARY,
    SHEET_VALIDATION,
    TITLE,
    WRAP,
    SheetColumn,
    column_positions,
)
from reconciliation.xlsx_tables import Styles

_HEADING, _TOPIC_STYLE = "readme:heading", "readme:topic"  # styles of this sheet only
# Two columns and no header row: a topic, and its explanation (a section heading spans both).
READ_ME_COLUMNS = (SheetColumn("Topic", 24), SheetColumn("Explanation", 110))
_TOPIC, _TEXT = (column_positions(READ_ME_COLUMNS)[name] for name in ("Topic", "Explanation"))


def read_me_rows(outcomes: Sequence[SettlementOutcome]) -> list[tuple[str, str]]:
    """(topic, explanation) rows of the Read me sheet, in an accountant's words; "" topic: a
    section heading in the explanation. Accounts are the ones this run's GL mapping booked."""
    accounts = accounts_in_use(outcomes)

    def account(category: str, name: str) -> str:
        found = accounts.get(category)
        return f"{name} {' / '.join(found)}" if found else f"{name} (see the {SHEET_JOURNAL} sheet)"

    carry_over = account("carry_over", "the carry-over account")
    deposit = account("amazon_clearing", "the Amazon deposit clearing account")
    payable = account("payable_to_amazon", "the payable to Amazon account")
    mappings = sorted({a.mapping_name for o in outcomes for a in o.audits.values()})
    mapping_text = (
        f"The accounts come from the GL mapping {', '.join(mappings)}: your own copy in HOME/mappings/"
        f"{mappings[0]}.yaml when it exists, otherwise the preset shipped with m3sync."
        if mappings
        else "The accounts come from the GL mapping chosen with --mapping: your own HOME/mappings/NAME.yaml "
        "when it exists, otherwise the preset shipped with m3sync."
    )
    tolerances = sorted(
        {
            f"{format_minor(o.reconciliation.tolerance_minor, o.settlement.decimals)} {o.settlement.currency}"
            for o in outcomes
            if o.reconciliation is not None
        }
    )
    tolerance = " / ".join(tolerances) if tolerances else "the run's --tolerance (0.01 unless chosen otherwise)"
    return [
        ("", "What each sheet holds"),
        (
            SHEET_SUMMARY,
            "One row per settlement: status, M3 voucher numbers, checks, reconciliation and reasons. Below, "
            "the settlements side by side, one column each (grouped by currency), with a row per item and M3 "
            "account: sales, shipping, tax, promotions, refunds, Amazon fees by kind, reserves, reimbursements "
            "and other items. Each column adds up, as a formula, to the total Amazon reported and to the "
            "vouchers' deposit line, with a check cell under each (OK, or the difference in red). Last, the "
            "run's totals per currency.",
        ),
        (
            SHEET_CHECKS,
            "Per settlement, the figures behind the Summary's checks: the sum of its lines, the vouchers' "
            "debits, credits and deposit line, each difference a formula (0 when they agree); its voucher keys, "
            "the reconciliation's counts, the file it came from and where its lines are.",
        ),
        (
            SHEET_JOURNAL,
            "The GL vouchers sent to M3, line by line, with a total row per voucher (debits equal "
            "credits), the M3 voucher number, and where each voucher's figures came from.",
        ),
        (
            SHEET_FEES,
            "Every amount of the run summed by Amazon's transaction type, amount type and description, "
            "with the GL category it was booked to: compare it with Seller Central's statement.",
        ),
        (
            SHEET_RECONCILIATION,
            "Each Amazon order against its M3 invoice and credit note: matched, a difference, "
            "missing in M3, not settled yet, or refunded without a credit note, and in which settlement it was paid.",
        ),
        (SHEET_EXCEPTIONS, "Everything that needs a person before the month can be closed, and why."),
        (SHEET_VALIDATION, "Lines of the settlement files that failed a check: file, line, column and value."),
        (SHEET_ANOMALIES, "Orders whose Amazon fees look unusual, the highest score first, with the reasons."),
        (
            SHEET_LINES,
            "Every line of the settlement files as Amazon sent it (a large run: the lines summed per "
            "day and fee type, and every line in the CSV file beside this workbook).",
        ),
        ("", "How a settlement is booked"),
        (
            "Month-end split",
            "A settlement can span a month end. Each line is booked in the month Amazon posted "
            "it, so a settlement gets one voucher per month. The voucher of an earlier month is dated that month's "
            f"last day and balanced by {carry_over}; the voucher of the deposit month, dated the deposit date, takes "
            "the carry-over back, so the carry-over account is nil once the whole settlement is booked. The "
            "voucher's key ends with its accounting month (YYYYMM).",
        ),
        (
            "Deposit line",
            f"The deposit month's voucher debits the amount Amazon paid out to {deposit}, which "
            f"clears against the bank statement. When Amazon's total is negative (the seller owes Amazon) it is "
            f"credited to {payable} instead.",
        ),
        (
            "Facilitator tax",
            "Where Amazon is the marketplace facilitator (for example US sales tax), the tax "
            "Amazon collects and the tax it withholds to remit itself net on "
            f"{account('facilitator_tax_clearing', 'the facilitator tax clearing account')}, which is nil after "
            "each settlement.",
        ),
        (
            "Payment clearing",
            "When M3's customer ledger keeps the Amazon invoices open (the allocate set-up), "
            "the settlement's receivable amounts go to the payment clearing account ([m3] payment_clearing_account "
            "in config.toml, 1519 unless set) instead of the customer receivable, and an M3 customer payment "
            "(ARS040MI) pays the invoices one by one from it. What no invoice takes stays on the clearing account "
            f"and is named in the settlement's reasons. Otherwise the receivable "
            f"({account('principal', 'account')}) is settled directly.",
        ),
        (
            "Reserves",
            f"Amazon holds back part of the balance as a reserve and releases it in a later settlement; "
            f"both book to {account('reserves', 'the reserve account')}, whose balance is what Amazon still holds.",
        ),
        (
            "Tolerance",
            f"An order whose settled amount differs from its M3 invoice by at most {tolerance} is "
            "matched; a larger difference is a mismatch to look at.",
        ),
        (
            "GL mapping",
            f"{mapping_text} An Amazon fee no rule maps holds its settlement: add a rule for it to "
            "that file and run again. The Journal sheet shows each voucher's mapping and its SHA-256.",
        ),
        ("Times and amounts", "Times are UTC. Amounts are exact, in each settlement's currency."),
    ]


def accounts_in_use(outcomes: Sequence[SettlementOutcome]) -> dict[str, list[str]]:
    """GL category -> the accounts this run booked it to (sorted), from the vouchers' lines
    (carry-over and deposit by their role) and the mapped settlement lines."""
    found: dict[str, set[str]] = {}
    for outcome in outcomes:
        for voucher in outcome.vouchers:
            for line in voucher.lines:
                for category in line.category.split("+"):
                    found.setdefault(category, set()).add(line.account)
        mapped = outcome.mapped
        if mapped is not None and len(mapped.lines):
            pairs = mapped.lines[["category", "account"]].dropna().drop_duplicates()
            for category, account in pairs.itertuples(index=False):
                found.setdefault(str(category), set()).add(str(account))
    return {category: sorted(accounts) for category, accounts in found.items()}


def write_read_me(sheet: Worksheet, styles: Styles, outcomes: Sequence[SettlementOutcome]) -> None:
    for index, column in enumerate(READ_ME_COLUMNS):
        sheet.set_column(index, index, column.width)
    sheet.write_string(0, _TOPIC, "Read me: how to read this workbook", styles.get(TITLE))
    wrap = styles.get(WRAP)
    heading = styles.get(_HEADING, {"bold": True, "bottom": 1, "valign": "top"})
    topic = styles.get(_TOPIC_STYLE, {"bold": True, "text_wrap": True, "valign": "top"})
    row = 1
    for name, text in read_me_rows(outcomes):
        if not name:  # a section: a blank row, then its heading across both columns
            row += 1
            sheet.write_string(row, _TOPIC, text, heading)
            sheet.write_blank(row, _TEXT, None, heading)
        else:
            sheet.write_string(row, _TOPIC, name, topic)
            sheet.write_string(row, _TEXT, text, wrap)  # no row height: Excel and LibreOffice fit it to the text
        row += 1
