"""Integrity gates: a settlement that fails any of them is held and posts nothing.

Gates, in order (every failing gate is reported, not just the first):

- ``sum``: the lines sum exactly to ``total-amount``;
- ``mapping``: every (transaction-type, amount-type, amount-description) has a GL rule;
- ``balance``: every voucher balances and respects the M3 field limits (checked by building them);
- ``period``: no voucher falls into a closed accounting period (``closed_periods`` comes from
  M3 via the flow; ``None`` means it cannot be told here, so the gate passes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from reconciliation.mapping import GLMapping, MappedLines
from reconciliation.model import Settlement, exact_sum, format_minor
from reconciliation.schemas import balance_reason
from reconciliation.vouchers import Voucher, VoucherError, build_vouchers, planned_vouchers

GATE_SUM = "sum"
GATE_MAPPING = "mapping"
GATE_BALANCE = "balance"
GATE_PERIOD = "period"


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
) -> GateOutcome:
    """Run every gate; vouchers only when all pass."""
    failures = [*_sum_gate(settlement), *_mapping_gate(settlement, mapped)]
    vouchers: list[Voucher] = []
    if not failures:
        try:
            vouchers = build_vouchers(settlement, mapped, mapping)
        except VoucherError as exc:
            failures.append(GateFailure(GATE_BALANCE, str(exc)))
    failures.extend(_period_gate(settlement, closed_periods))
    if failures:
        return GateOutcome(True, tuple(failures), ())
    return GateOutcome(False, (), tuple(vouchers))


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


def _period_gate(settlement: Settlement, closed_periods: Callable[[date], bool] | None) -> list[GateFailure]:
    if closed_periods is None:
        return []
    return [
        GateFailure(
            GATE_PERIOD,
            f"accounting period {accounting_date:%Y-%m} is closed (voucher {key} dated {accounting_date.isoformat()})",
        )
        for key, accounting_date in planned_vouchers(settlement)
        if closed_periods(accounting_date)
    ]
