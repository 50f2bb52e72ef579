"""The pure stages of settling one settlement, before anything talks to M3.

marketplace -> validate (pandera) -> map to GL -> gates (sum, mapping, voucher balance,
period) -> vouchers. Each stage's result is kept for the workbook; errors are data, not
exceptions.

The marketplace stage decides which marketplace the settlement books to (its rows, else the
seller account's configured marketplaces and the currency; ``reconciliation.marketplaces``).
When it cannot tell, or a row names a marketplace never seen, the ``marketplace`` gate holds
the settlement; the other stages still run so every problem is reported at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date

from reconciliation.gates import GateFailure, GateOutcome, check_gates
from reconciliation.mapping import GLMapping, MappedLines
from reconciliation.marketplaces import MarketplaceResolution, resolve_marketplace
from reconciliation.model import Settlement
from reconciliation.schemas import ValidationReport, validate_settlement
from reconciliation.tax import TaxProfiles

GATE_MARKETPLACE = "marketplace"
# {marketplace} in the dimensions of a settlement whose marketplace could not be told. It is
# held by the marketplace gate, so this never reaches M3; the workbook shows it as it is.
UNRESOLVED_MARKETPLACE_CODE = "??"


@dataclass(frozen=True, eq=False)
class PreparedSettlement:
    """A settlement through every pure stage. Compares by identity (``eq=False``): it holds DataFrames."""

    settlement: Settlement  # with its resolved marketplace (later stages read this one)
    validation: ValidationReport
    mapped: MappedLines
    gates: GateOutcome
    marketplace: MarketplaceResolution | None = None

    @property
    def held(self) -> bool:
        return self.gates.held

    @property
    def reasons(self) -> tuple[str, ...]:
        """Gate reasons first (they decide), then validation findings not already said."""
        reasons = list(self.gates.reasons)
        reasons += [r for r in self.validation.reasons if r not in reasons]
        return tuple(reasons)


def prepare_settlement(
    settlement: Settlement,
    mapping: GLMapping,
    *,
    closed_periods: Callable[[date], bool] | None = None,
    first_open_period: bool = False,
    already_posted: Collection[str] = (),
    configured_marketplaces: Sequence[str] = (),
    tax: TaxProfiles | None = None,
) -> PreparedSettlement:
    """Every pure stage; ``configured_marketplaces`` are the seller account's marketplace ids
    (``[amazon] marketplaces``), used only for a settlement whose rows name no marketplace.
    ``closed_periods``, ``first_open_period``, ``already_posted`` and ``tax`` (the tax profiles, the
    shipped ones when None): see ``reconciliation.gates.check_gates``."""
    resolution = resolve_marketplace(settlement.lines["marketplace_name"], settlement.currency, configured_marketplaces)
    if resolution.marketplace is not None and resolution.marketplace.name != settlement.marketplace:
        settlement = replace(settlement, marketplace=resolution.marketplace.name)
    code = resolution.marketplace.code if resolution.marketplace is not None else UNRESOLVED_MARKETPLACE_CODE
    validation = validate_settlement(settlement)
    mapped = mapping.map_lines(settlement.lines, code, currency=settlement.currency)
    gates = check_gates(
        settlement,
        mapped,
        mapping,
        closed_periods=closed_periods,
        first_open_period=first_open_period,
        already_posted=already_posted,
        tax=tax,
    )
    if resolution.held:
        gates = GateOutcome(True, (GateFailure(GATE_MARKETPLACE, resolution.problem), *gates.failures), ())
    return PreparedSettlement(settlement, validation, mapped, gates, resolution)
