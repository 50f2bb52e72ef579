"""Integrity gates: a settlement that fails any of them is held and posts nothing.

Gates, in order (every failing gate is reported, not just the first):

- ``sum``: the lines sum exactly to ``total-amount``;
- ``mapping``: every (transaction-type, amount-type, amount-description) has a GL rule;
- ``balance``: every voucher balances and respects the M3 field limits (checked by building them);
- ``period``: no voucher falls into a closed accounting period (``closed_periods`` comes from
  M3 via the flow; ``None`` means it cannot be told here, so the gate passes). Every voucher of
  a month-split settlement is checked before any is written. With ``first_open_period`` a
  voucher whose month is closed is dated the first day of the first open period after it
  (keeping its posting key) instead of holding the settlement.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import date

from reconciliation.mapping import GLMapping, MappedLines
from reconciliation.model import Settlement, exact_sum, format_minor
from reconciliation.schemas import balance_reason
from reconciliation.tax import TaxProfiles
from reconciliation.vouchers import Voucher, VoucherError, build_vouchers, planned_vouchers

GATE_SUM = "sum"
GATE_MAPPING = "mapping"
GATE_BALANCE = "balance"
GATE_PERIOD = "period"
# How far after a closed period the first open one is looked for; the flow reads M3's period
# status this many months past the settlement's last voucher.
FIRST_OPEN_SEARCH_MONTHS = 12


@dataclass(frozen=True)
class GateFailure:
    gate: str
    reason: str

    def __str__(self) -> str:
        return f"{self.gate}: {self.reason}"


@dataclass(frozen=True)
class GateOutcome:
    held: bool
    failures: tuple[GateFailure, ...]
    vouchers: tuple[Voucher, ...]  # empty when held

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.failures]


def check_gates(
    settlement: Settlement,
    mapped: MappedLines,
    mapping: GLMapping,
    *,
    closed_periods: Callable[[date], bool] | None = None,
    first_open_period: bool = False,
    already_posted: Collection[str] = (),
    tax: TaxProfiles | None = None,
) -> GateOutcome:
    """Run every gate; vouchers only when all pass. ``closed_periods`` tells whether the
    accounting period of a date is closed; ``first_open_period`` moves a voucher out of a closed
    period into the first open one instead of holding the settlement. Vouchers whose posting
    key is in ``already_posted`` keep their date: they are in M3 already (a rerun after the
    month closed reports them, it does not repost them)."""
    failures = [*_sum_gate(settlement), *_mapping_gate(settlement, mapped)]
    vouchers: list[Voucher] = []
    if not failures:
        try:
            vouchers = build_vouchers(settlement, mapped, mapping, tax)
        except VoucherError as exc:
            failures.append(GateFailure(GATE_BALANCE, str(exc)))
    period_failures, moved = _period_gate(settlement, closed_periods, first_open_period, already_posted)
    failures.extend(period_failures)
    if failures:
        return GateOutcome(True, tuple(failures), ())
    return GateOutcome(False, (), tuple(_redated(v, moved.get(v.key)) for v in vouchers))


def _money(amount_minor: int, settlement: Settlement) -> str:
    return f"{format_minor(amount_minor, settlement.decimals)} {settlement.currency}"


def _sum_gate(settlement: Settlement) -> list[GateFailure]:
    # Python-int sum: exact at any size (an int64 sum wraps silently); same sentence as validation's.
    reason = balance_reason(exact_sum(settlement.lines["amount_minor"]), settlement)
    return [] if reason is None else [GateFailure(GATE_SUM, reason)]


def _mapping_gate(settlement: Settlement, mapped: MappedLines) -> list[GateFailure]:
    return [
        GateFailure(
            GATE_MAPPING,
            f"unmapped: {u.transaction_type} / {u.amount_type} / {u.amount_description} "
            f"({u.line_count} line{'s' if u.line_count != 1 else ''}, {_money(u.total_minor, settlement)})",
        )
        for u in mapped.unmapped
    ]


def _period_gate(
    settlement: Settlement,
    closed_periods: Callable[[date], bool] | None,
    first_open_period: bool,
    already_posted: Collection[str],
) -> tuple[list[GateFailure], dict[str, date]]:
    """Failures for vouchers in closed periods, and the new date of each voucher moved out of one.

    Checks every planned voucher (not only the first), so a split settlement posts all or none."""
    if closed_periods is None:
        return [], {}
    failures, moved = [], {}
    for key, accounting_date in planned_vouchers(settlement):
        if key in already_posted or not closed_periods(accounting_date):
            continue
        first_open = first_open_day(accounting_date, closed_periods)
        if first_open_period and first_open is not None:
            moved[key] = first_open
            continue
        closed = (
            f"accounting period {accounting_date:%Y-%m} is closed (voucher {key} dated {accounting_date.isoformat()})"
        )
        if first_open is None:
            advice = f"no period is open in the {FIRST_OPEN_SEARCH_MONTHS} months after it; reopen one in M3"
        else:
            advice = (
                f"reopen it in M3, or post in the first open period ({first_open:%Y-%m}) "
                "with `m3sync settle --first-open-period`"
            )
        failures.append(GateFailure(GATE_PERIOD, f"{closed}: {advice}"))
    return failures, moved


def first_open_day(accounting_date: date, closed_periods: Callable[[date], bool]) -> date | None:
    """The first day of the first open period after ``accounting_date``'s; None when none is open
    within ``FIRST_OPEN_SEARCH_MONTHS``."""
    year, month = accounting_date.year, accounting_date.month
    for _ in range(FIRST_OPEN_SEARCH_MONTHS):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if not closed_periods(date(year, month, 1)):
            return date(year, month, 1)
    return None


def _redated(voucher: Voucher, accounting_date: date | None) -> Voucher:
    return voucher if accounting_date is None else replace(voucher, accounting_date=accounting_date)
