"""The pure stages of settling one settlement, before anything talks to M3.

validate (pandera) -> map to GL -> gates (sum, mapping, voucher balance, period) -> vouchers.
Each stage's result is kept for the workbook; errors are data, not exceptions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from reconciliation.gates import GateOutcome, check_gates
from reconciliation.mapping import GLMapping, MappedLines
from reconciliation.model import Settlement
from reconciliation.schemas import ValidationReport, validate_settlement


@dataclass(frozen=True)
class PreparedSettlement:
    settlement: Settlement
    validation: ValidationReport
    mapped: MappedLines
    gates: GateOutcome

    @property
    def held(self) -> bool:
        return self.gates.held

    @property
    def reasons(self) -> tuple[str, ...]:
        """Gate reasons first (they decide), then validation findings not already said."""
        reasons = list(self.gates.reasons)
        reasons += [r for r in self.validation.reasons if r not in reasons]
        return tuple(reasons)


def prepare_settlement(settlement: Settlement, mapping: GLMapping, *,
                       closed_periods: Callable[[date], bool] | None = None) -> PreparedSettlement:
    validation = validate_settlement(settlement)
    mapped = mapping.map_settlement(settlement)
    gates = check_gates(settlement, mapped, mapping, closed_periods=closed_periods)
    return PreparedSettlement(settlement, validation, mapped, gates)
