"""The pure stages of settling one settlement, before anything talks to M3.

marketplace -> validate (pandera) -> map to GL -> facilitator tax (the orders Amazon collects
the tax for, booked to the clearing: ``reconciliation.tax.book_facilitator_tax``) -> gates (sum,
mapping, voucher balance, period) -> vouchers. Each stage's result is kept for the workbook; errors are data, not
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
from reconciliation.invoice_policy import InvoicePolicy, apply_invoice_policy
from reconciliation.mapping import GLMapping, MappedLines, marketplace_code
from reconciliation.marketplaces import MarketplaceResolution, resolve_marketplace
from reconciliation.matching import Reconciliation
from reconciliation.model import Settlement
from reconciliation.schemas import ValidationReport, validate_settlement
from reconciliation.tax import TaxProfiles, book_facilitator_tax, tax_profiles

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
    notes: tuple[str, ...] = ()  # orders posted elsewhere by the user's choice (``with_invoice_policy``)

    @property
    def held(self) -> bool:
        return self.gates.held

    @property
    def reasons(self) -> tuple[str, ...]:
        """Gate reasons first (they decide), then validation findings not already said."""
        reasons = list(self.gates.reasons)
        reasons += [r for r in self.validation.reasons if r not in reasons]
        return (*reasons, *self.notes)


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
    mapped = map_settlement_lines(settlement, mapping, tax, code)
    gates = _gates(settlement, mapped, mapping, resolution, (), closed_periods, first_open_period, already_posted, tax)
    return PreparedSettlement(settlement, validation, mapped, gates, resolution)


def map_settlement_lines(
    settlement: Settlement, mapping: GLMapping, tax: TaxProfiles | None = None, code: str | None = None
) -> MappedLines:
    """The settlement's lines mapped to GL categories for marketplace ``code`` (the settlement's
    own when None), with the facilitator orders' tax booked to the clearing as the marketplace's
    tax profile says (``tax``, the shipped profiles when None): what vouchers are built from."""
    code = marketplace_code(settlement.marketplace) if code is None else code
    mapped = mapping.map_lines(settlement.lines, code, currency=settlement.currency)
    return book_facilitator_tax(mapped, mapping, (tax or tax_profiles())[code])


def with_invoice_policy(
    prepared: PreparedSettlement,
    reconciliation: Reconciliation,
    mapping: GLMapping,
    policy: InvoicePolicy,
    *,
    closed_periods: Callable[[date], bool] | None = None,
    first_open_period: bool = False,
    already_posted: Collection[str] = (),
    tax: TaxProfiles | None = None,
) -> PreparedSettlement:
    """``prepared`` after the user's choice for orders M3 has no document for
    (``reconciliation.invoice_policy``): their lines held by the ``invoices`` gate, or moved to
    the chosen categories and the gates and vouchers built again (the same arguments as
    ``prepare_settlement``). Unchanged when every order has its M3 document."""
    settlement = prepared.settlement
    result = apply_invoice_policy(prepared.mapped, reconciliation, mapping, policy, decimals=settlement.decimals)
    if not result.changed:
        return prepared
    # the lines re-booked (a refund's tax reversal has the output role) go through the profile again
    profile = (tax or tax_profiles())[prepared.mapped.marketplace_code]
    mapped = book_facilitator_tax(result.mapped, mapping, profile)
    gates = _gates(
        settlement,
        mapped,
        mapping,
        prepared.marketplace,
        result.holds,
        closed_periods,
        first_open_period,
        already_posted,
        tax,
    )
    return replace(prepared, mapped=mapped, gates=gates, notes=result.notes)


def _gates(
    settlement: Settlement,
    mapped: MappedLines,
    mapping: GLMapping,
    resolution: MarketplaceResolution | None,
    holds: tuple[GateFailure, ...],
    closed_periods: Callable[[date], bool] | None,
    first_open_period: bool,
    already_posted: Collection[str],
    tax: TaxProfiles | None,
) -> GateOutcome:
    """``check_gates``, with the marketplace gate's failure first and ``holds`` (other gates'
    failures found before) after the others."""
    gates = check_gates(
        settlement,
        mapped,
        mapping,
        closed_periods=closed_periods,
        first_open_period=first_open_period,
        already_posted=already_posted,
        tax=tax,
    )
    marketplace = (
        (GateFailure(GATE_MARKETPLACE, resolution.problem),) if resolution is not None and resolution.held else ()
    )
    failures = (*marketplace, *gates.failures, *holds)
    return GateOutcome(True, failures, ()) if failures else gates
