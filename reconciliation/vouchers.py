"""GL vouchers for one settlement: the journal M3 receives.

Journal convention (amounts in minor units, debit positive, credit negative):

- every settlement line of amount ``a`` books ``-a`` to the account its category maps to
  (money Amazon credits the seller is a credit; a fee Amazon charges is a debit);
- the deposit books ``+total`` on the deposit date to ``amazon_clearing``; when ``total`` is
  negative the seller owes Amazon and ``total`` (a credit) goes to ``payable_to_amazon``;
  a zero total books no deposit line.

Month split. Each line belongs to the calendar month (UTC) of its posted date; lines posted
in the deposit date's month or later belong to the deposit month. One voucher per month:

- an EARLIER month ``M`` (before the deposit month) gets its lines and one line on
  ``carry_over`` of ``+S_M`` where ``S_M`` is the sum of that month's settlement amounts,
  which balances it; it is dated the last day of ``M``;
- the DEPOSIT month's voucher gets its own lines, the deposit line, and takes every
  carry-over back with one ``carry_over`` line of ``-(S_1 + ... + S_k)``; it is dated the
  deposit date. Carry-over therefore nets to zero across the vouchers of a settlement.

It balances exactly when the lines sum to ``total-amount`` (the gate checks that first).

Lines are aggregated per (account, AIT2..AIT7, VAT code) within a voucher, never one M3 line
per report row (the marketplace's tax profile, ``reconciliation.tax``, is applied to the
per-category sums first, with the fee VAT treatment in force on the voucher's accounting date:
the month end for an earlier month, the deposit date for the deposit month); accounts that net
to zero are left out; deposit and carry-over lines stay separate lines. A ``Voucher`` whose
lines do not sum to zero cannot be constructed.

Gross lines. When the mapping's ``gross_lines`` is on, a category marked ``gross`` (revenue
and refunds: principal, shipping, promotions, refunds in the presets) is aggregated per
(account, AIT2..AIT7, category) with its debits and its credits as two separate lines: a sale
and its refund in one settlement leave both lines even when they share an account or net to
zero. That adds at most one line per gross category and dimension set to a voucher.

Multi-channel fulfilment lines (marketplace-name ``Non-Amazon …``) resolve a category's
``{channel}`` dimension to ``MCF`` instead of ``AMZ``, so their fees book apart from the
Amazon marketplace's.

Posting key ``AMZ-{settlement_id}-{YYYYMM}`` (YYYYMM = the voucher's accounting month) starts
the voucher text (VTXT, at most 40 characters); a settlement reversed and posted again takes
``AMZ-{settlement_id}-{YYYYMM}-v{N}`` (``at_version``), its reversal ``REV-`` + the key reversed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from reconciliation.m3_fields import AIT_LENGTH, CUAM_LENGTH, MAX_VOUCHER_LINES, VTXT_LENGTH
from reconciliation.mapping import (
    CHANNEL_AMAZON,
    CHANNEL_MCF,
    GLMapping,
    MappedLines,
    factorize_text,
    is_multichannel_row,
    marketplace_code,
    normalise_key,
)
from reconciliation.model import Settlement, currency_decimals, format_minor
from reconciliation.tax import (
    INPUT_TAX,
    TAX_FEE,
    CategorySums,
    TaxProfile,
    TaxProfiles,
    TaxSetupError,
    apply_tax_profile,
    tax_profiles,
    vat_code_for,
)

ROLE_SETTLEMENT = "settlement"
ROLE_DEPOSIT = "deposit"
ROLE_CARRY_OVER = "carry_over"

_DIMENSION_COLUMNS = ["ait2", "ait3", "ait4", "ait5", "ait6", "ait7"]


class VoucherError(ValueError):
    """A voucher that cannot exist."""


class UnbalancedVoucherError(VoucherError):
    def __init__(self, key: str, debit_minor: int, credit_minor: int, decimals: int, currency: str) -> None:
        self.key = key
        self.debit_minor = debit_minor
        self.credit_minor = credit_minor
        super().__init__(
            f"voucher {key} does not balance: debit {format_minor(debit_minor, decimals)} {currency}, "
            f"credit {format_minor(credit_minor, decimals)} {currency} "
            f"(difference {format_minor(debit_minor - credit_minor, decimals)})"
        )


class VoucherLimitError(VoucherError):
    """A value beyond an M3 field limit (AIT A10, VTXT A40, NLIN 999, CUAM N17)."""

    def __init__(self, key: str, field: str, value: object, limit: int) -> None:
        self.key, self.field, self.value, self.limit = key, field, value, limit
        super().__init__(f"voucher {key}: {field} {value!r} exceeds the M3 limit of {limit}")


class UnmappedLinesError(VoucherError):
    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(
            f"cannot build vouchers: {count} (transaction-type, amount-type, amount-description) "
            "combination(s) have no GL mapping"
        )


@dataclass(frozen=True)
class VoucherLine:
    account: str  # AIT1
    dimensions: tuple[str, ...]  # AIT2..AIT7
    amount_minor: int  # debit +, credit -
    category: str  # "+"-joined when several categories share the account
    description: str
    role: str = ROLE_SETTLEMENT  # settlement | deposit | carry_over
    vat_code: str = ""  # M3 VAT code (VTCD) from the marketplace's tax profile; "" none

    @property
    def ait(self) -> dict[str, str]:
        """AIT1..AIT7 as M3 field names."""
        return {"AIT1": self.account, **{f"AIT{i}": d for i, d in enumerate(self.dimensions, start=2)}}


@dataclass(frozen=True)
class Voucher:
    key: str
    settlement_id: str
    accounting_date: date
    currency: str
    decimals: int
    text: str
    lines: tuple[VoucherLine, ...]

    def __post_init__(self) -> None:
        if not self.text.startswith(self.key):
            raise VoucherError(f"voucher text {self.text!r} must start with the posting key {self.key}")
        if len(self.text) > VTXT_LENGTH:
            raise VoucherLimitError(self.key, "VTXT", self.text, VTXT_LENGTH)
        if not self.lines:
            raise VoucherError(f"voucher {self.key} has no lines")
        if len(self.lines) > MAX_VOUCHER_LINES:
            raise VoucherLimitError(self.key, "NLIN", len(self.lines), MAX_VOUCHER_LINES)
        for line in self.lines:
            for field, value in line.ait.items():
                if len(value) > AIT_LENGTH:
                    raise VoucherLimitError(self.key, field, value, AIT_LENGTH)
            if len(format_minor(line.amount_minor, self.decimals)) > CUAM_LENGTH:
                raise VoucherLimitError(self.key, "CUAM", line.amount_minor, CUAM_LENGTH)
        if self.debit_minor != self.credit_minor:
            raise UnbalancedVoucherError(self.key, self.debit_minor, self.credit_minor, self.decimals, self.currency)

    @property
    def debit_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines if line.amount_minor > 0)

    @property
    def credit_minor(self) -> int:
        return -sum(line.amount_minor for line in self.lines if line.amount_minor < 0)

    @property
    def deposit_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines if line.role == ROLE_DEPOSIT)

    @property
    def period(self) -> str:
        return self.accounting_date.strftime("%Y%m")


def posting_key(settlement_id: str, period: str, version: int = 1) -> str:
    """``AMZ-{id}-{YYYYMM}``; from version 2 on (a reversed settlement posted again)
    ``AMZ-{id}-{YYYYMM}-v{N}``: a new key, so M3 and the state store see a new voucher."""
    return key_at_version(f"AMZ-{settlement_id}-{period}", version)


def key_at_version(first_key: str, version: int) -> str:
    """A version-1 posting key (``AMZ-{id}-{YYYYMM}``) as it is spelled at ``version``."""
    return first_key if version == 1 else f"{first_key}-v{version}"


REVERSAL_PREFIX = "REV-"


def reversal_key(key: str) -> str:
    """The posting key of the voucher reversing the one posted under ``key``."""
    return f"{REVERSAL_PREFIX}{key}"


def key_version(key: str) -> int:
    """The version of a settlement voucher's posting key (1 for ``AMZ-{id}-{YYYYMM}``)."""
    last = key.rsplit("-", 1)[-1]
    return int(last[1:]) if last.startswith("v") and last[1:].isdigit() else 1


def at_version(voucher: Voucher, version: int) -> Voucher:
    """``voucher`` under the posting key of ``version`` (its text starts with the new key). The key
    is versioned as it stands, not rebuilt from the period: a voucher the period gate moved to
    the first open period keeps the key of the month it belongs to."""
    first_key = voucher.key if key_version(voucher.key) == 1 else voucher.key.rsplit("-", 1)[0]
    key = key_at_version(first_key, version)
    if key == voucher.key:
        return voucher
    text = f"{key}{voucher.text[len(voucher.key) :]}"[:VTXT_LENGTH].rstrip()
    return replace(voucher, key=key, text=text)


def _month_end(period: int) -> date:
    year, month = divmod(period, 100)
    return date(year, month, calendar.monthrange(year, month)[1])


def _line_periods(settlement: Settlement, lines: pd.DataFrame) -> np.ndarray:
    """YYYYMM (int) of the voucher each line belongs to."""
    posted = lines["posted_date"].dt.tz_convert("UTC")
    periods = (posted.dt.year * 100 + posted.dt.month).to_numpy(dtype=np.int64)
    deposit = settlement.deposit_date.tz_convert("UTC")
    capped: np.ndarray = np.minimum(periods, deposit.year * 100 + deposit.month)
    return capped


def planned_vouchers(settlement: Settlement) -> list[tuple[str, date]]:
    """(posting key, accounting date) of every voucher the settlement will produce, oldest first."""
    return _plan(settlement, _line_periods(settlement, settlement.lines))


def _plan(settlement: Settlement, periods: np.ndarray) -> list[tuple[str, date]]:
    """``planned_vouchers`` from the lines' periods (``_line_periods``)."""
    deposit = settlement.deposit_date.tz_convert("UTC")
    deposit_period = deposit.year * 100 + deposit.month
    # np.unique, not a Python set over every line (0.2 s per million lines).
    earlier = sorted(set(np.unique(periods).tolist()) - {deposit_period})
    plan = [(posting_key(settlement.settlement_id, str(p)), _month_end(p)) for p in earlier]
    plan.append((posting_key(settlement.settlement_id, str(deposit_period)), deposit.date()))
    return plan


def build_vouchers(
    settlement: Settlement, mapped: MappedLines, mapping: GLMapping, tax: TaxProfiles | None = None
) -> list[Voucher]:
    """One voucher per month the settlement touches (see the module docstring for the rule), with
    the marketplace's tax profile applied (``tax``, the shipped defaults when None;
    ``reconciliation.tax``)."""
    if not mapped.complete:
        raise UnmappedLinesError(len(mapped.unmapped))
    market = mapped.marketplace_code or marketplace_code(settlement.marketplace)
    currency = mapped.currency or settlement.currency
    decimals = currency_decimals(settlement.currency)
    periods = _line_periods(settlement, mapped.lines)
    plan = _plan(settlement, periods)
    base = (tax or tax_profiles())[market]
    # the fee VAT treatment in force on each voucher's accounting date
    profiles = {int(key.rsplit("-", 1)[1]): base.on(accounting_date) for key, accounting_date in plan}
    roles = {name: category.tax for name, category in mapping.categories.items()}
    try:
        sums = _sums_after_tax(periods, mapped.lines, mapping, profiles, roles)
    except TaxSetupError as exc:
        raise VoucherError(str(exc)) from None
    # (account, dims, gross part, VAT code) -> [amount, categories]; the gross part is ("", 0) for a
    # netted account, (category, ±1) for the credits (+1: settlement amounts > 0) or debits of a
    # gross category.
    accounts: dict[int, dict[tuple[str, tuple[str, ...], tuple[str, int], str], list[Any]]] = {}
    period_sums: dict[int, int] = {}
    for period, category, channel, positive, negative in sums:
        period_sums[period] = period_sums.get(period, 0) + positive + negative
        account, dims = mapping.account_for(category, market, currency, channel)
        gross = mapping.keeps_gross(category)
        vat_code = vat_code_for(category, roles.get(category, ""), profiles[period])
        for side, amount in ((1, positive), (-1, negative)):
            part = (category, side) if gross else ("", 0)
            slot = accounts.setdefault(period, {}).setdefault((account, dims, part, vat_code), [0, set()])
            slot[0] += amount
            slot[1].add(category)

    def account_line(category: str, amount: int, description: str, role: str) -> VoucherLine:
        account, dims = mapping.account_for(category, market, currency)
        return VoucherLine(account, dims, amount, category, description, role)

    vouchers = []
    carried = 0
    for index, (key, accounting_date) in enumerate(plan):
        period = int(key.rsplit("-", 1)[1])
        voucher_lines = []
        for (account, dims, _, vat_code), (amount, categories) in sorted(accounts.get(period, {}).items()):
            if amount:
                joined = "+".join(sorted(categories))
                voucher_lines.append(
                    VoucherLine(account, dims, -amount, joined, _describe(mapping, joined), vat_code=vat_code)
                )
        is_deposit_part = index == len(plan) - 1
        if not is_deposit_part:
            month_sum = period_sums.get(period, 0)
            carried += month_sum
            if month_sum:
                voucher_lines.append(
                    account_line("carry_over", month_sum, f"Carry-over {key} to deposit month", ROLE_CARRY_OVER)
                )
        else:
            if carried:
                voucher_lines.append(
                    account_line("carry_over", -carried, "Carry-over from earlier months", ROLE_CARRY_OVER)
                )
            total = settlement.total_minor
            if total > 0:
                voucher_lines.append(
                    account_line("amazon_clearing", total, f"Amazon deposit {accounting_date}", ROLE_DEPOSIT)
                )
            elif total < 0:
                voucher_lines.append(
                    account_line("payable_to_amazon", total, f"Payable to Amazon {accounting_date}", ROLE_DEPOSIT)
                )
        if not voucher_lines:
            continue  # nothing to book this month (every account nets to zero)
        text = f"{key} Amazon {market} {settlement.currency}"[:VTXT_LENGTH]
        vouchers.append(
            Voucher(
                key,
                settlement.settlement_id,
                accounting_date,
                settlement.currency,
                decimals,
                text,
                tuple(voucher_lines),
            )
        )
    return vouchers


def _sums_after_tax(
    periods: np.ndarray,
    lines: pd.DataFrame,
    mapping: GLMapping,
    profiles: dict[int, TaxProfile],
    roles: dict[str, str],
) -> list[CategorySums]:
    """The (period, category, channel) sums with each period's tax profile applied; fee rows taxed
    in rows of their own (``_fee_rows_with_own_tax``) are summed apart and get no fee treatment."""
    own_tax = _fee_rows_with_own_tax(periods, lines, roles)
    parts = [(periods, lines, False)]
    if own_tax is not None:
        parts = [(periods[~own_tax], lines[~own_tax], False), (periods[own_tax], lines[own_tax], True)]
    sums: list[CategorySums] = []
    for part_periods, part_lines, tax_in_rows in parts:
        by_period: dict[int, list[CategorySums]] = {}
        for entry in _sums_by_period_and_category(part_periods, part_lines, mapping):
            by_period.setdefault(entry[0], []).append(entry)
        for period, entries in by_period.items():
            profile = profiles[period].with_fee_tax_in_rows() if tax_in_rows else profiles[period]
            sums += apply_tax_profile(
                entries, profile, roles, mapping.categories, invoices_in_m3=mapping.invoices_in_m3
            )
    return sums


def _fee_rows_with_own_tax(periods: np.ndarray, lines: pd.DataFrame, roles: dict[str, str]) -> np.ndarray | None:
    """Which rows are fees (``tax: fee``) whose transaction carries its own row mapped to
    ``input_tax``: same normalised transaction type, order id and month (``AmazonFees`` /
    ``VINE_ENROLLMENT_FEE`` ``BASE_FEE`` and ``TAX_ON_FEE``; an order's fee and its tax row). Their
    tax is that row: splitting or reverse-charging them too would count it twice. None when no row
    is such a fee (the usual case, checked without touching the text columns)."""
    categories = lines["category"]
    is_tax_row = (categories == INPUT_TAX).to_numpy(dtype=bool)
    is_fee = categories.isin([name for name, role in roles.items() if role == TAX_FEE]).to_numpy(dtype=bool)
    if not (is_tax_row.any() and is_fee.any()):
        return None
    type_codes, type_names = factorize_text(lines["transaction_type"])
    normalised = pd.factorize(pd.Series([normalise_key(name) for name in type_names], dtype=object))[0]
    types = np.append(normalised, -1).astype(np.int64)[type_codes]  # code -1 (no type) picks the -1 appended
    orders, order_names = factorize_text(lines["order_id"])
    _, months = np.unique(periods, return_inverse=True)
    # one integer per (month, transaction type, order); far below int64's range for any real file
    key = (
        (months.reshape(-1).astype(np.int64) * (len(type_names) + 1) + types + 1) * (len(order_names) + 1) + orders + 1
    )
    with_tax = np.isin(key, key[is_tax_row])
    own: np.ndarray = is_fee & with_tax
    return own if own.any() else None


def _sums_by_period_and_category(periods: np.ndarray, lines: pd.DataFrame, mapping: GLMapping) -> list[CategorySums]:
    """(period, category, channel, Σ positive amount_minor, Σ negative amount_minor) of every
    (period, category, channel) some line has, sorted; a category the voucher nets (not kept gross)
    carries its net on one side, so the tax profile sees one sum per netted category.

    Summed over all report rows at once; a category and channel fix the account and dimensions,
    so the per-account aggregation only sees these sums (both signs, for gross lines). On integer
    codes: converting the category strings for a groupby costs ~0.1 s per million lines.
    """
    codes, names = factorize_text(lines["category"])
    has_category = codes >= 0  # no category: unmapped (build_vouchers refuses those before)
    # Codes follow first appearance; ranked by name, the keys sort by (period, category, channel).
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_name] = np.arange(len(names))
    width = max(len(names), 1) * 2
    mcf = is_multichannel_row(lines)[has_category].astype(np.int64)
    keys = periods[has_category] * width + rank[codes[has_category]] * 2 + mcf
    groups, group_of_row = np.unique(keys, return_inverse=True)
    group_of_row = group_of_row.reshape(-1)
    amounts = lines["amount_minor"].to_numpy(dtype=np.int64)[has_category]
    # int64 cannot wrap here: parse refuses files whose sums could (reconciliation/parse.py _summable).
    positive = np.zeros(len(groups), dtype=np.int64)
    negative = np.zeros(len(groups), dtype=np.int64)
    np.add.at(positive, group_of_row, np.where(amounts > 0, amounts, 0))
    np.add.at(negative, group_of_row, np.where(amounts < 0, amounts, 0))
    result = []
    for group, plus, minus in zip(groups.tolist(), positive.tolist(), negative.tolist()):
        period, rest = divmod(group, width)
        position, is_mcf = divmod(rest, 2)
        category = str(names[by_name[position]])
        if not mapping.keeps_gross(category):
            plus, minus = max(plus + minus, 0), min(plus + minus, 0)
        result.append((period, category, CHANNEL_MCF if is_mcf else CHANNEL_AMAZON, plus, minus))
    return result


def _describe(mapping: GLMapping, categories: str) -> str:
    names = categories.split("+")
    if len(names) == 1:
        return mapping.categories[names[0]].description
    return f"Amazon {', '.join(names)}"


def vouchers_frame(vouchers: list[Voucher] | tuple[Voucher, ...]) -> pd.DataFrame:
    """One row per voucher line (columns of ``schemas.VoucherLines`` plus context), for
    validation, the workbook and artifacts. Amounts stay integer minor units."""
    columns = [
        "voucher_key",
        "settlement_id",
        "accounting_date",
        "currency",
        "line",
        "account",
        *_DIMENSION_COLUMNS,
        "debit_minor",
        "credit_minor",
        "category",
        "description",
        "role",
        "vat_code",
    ]
    records = [
        (
            v.key,
            v.settlement_id,
            v.accounting_date,
            v.currency,
            number,
            line.account,
            *line.dimensions,
            max(line.amount_minor, 0),
            max(-line.amount_minor, 0),
            line.category,
            line.description,
            line.role,
            line.vat_code,
        )
        for v in vouchers
        for number, line in enumerate(v.lines, start=1)
    ]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype(
        {
            "line": "int64",
            "debit_minor": "int64",
            "credit_minor": "int64",
            **{
                c: "str"
                for c in (
                    "voucher_key",
                    "settlement_id",
                    "currency",
                    "account",
                    *_DIMENSION_COLUMNS,
                    "category",
                    "description",
                    "role",
                    "vat_code",
                )
            },
        }
    )
