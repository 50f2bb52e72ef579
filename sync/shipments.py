"""M3 deliveries -> Amazon shipment confirmations, as pure functions (issue #14, item 5).

Input: the deliveries of one M3 customer order as the M3 connector reads them (MWS411MI lines,
MWS410MI head: tracking number ETRN, forwarding agent FWNO, departure date DSDT; any object with
those attributes, ``connectors.m3.Delivery`` among them) and the Amazon order's items (order item
id, M3 item number, quantity ordered). Output: one :class:`PlannedPackage` per delivery with a
tracking number (what ``connectors.amazon.PackageDetail`` takes), the deliveries still waiting
for one, and :class:`ShipmentProblem` records for what cannot be confirmed. Bad data is data,
never an exception.

Rules:
- One package per delivery; its package reference is the delivery number (DLIX, a positive number
  as Amazon requires), so the same delivery is always the same package.
- A delivery without a tracking number waits (it is not packed yet).
- The carrier comes from ``sync/carriers.yaml`` (FWNO -> Amazon carrier code), which
  ``HOME/carriers.yaml`` extends and overrides entry by entry; an unknown forwarding agent is a
  problem, never a guessed carrier ("Other" and a name only where the mapping says so).
- The ship date is the departure date (DSDT) at noon UTC, never later than now (Amazon refuses
  ship dates in the future).
- Delivery lines are matched to Amazon items by M3 item number, in item order, never beyond an
  item's ordered quantity over all deliveries; lines of ``ignored_items`` (the shipping charge's
  non-stock item) are not Amazon items and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from sync.yaml_file import read_yaml_file

CARRIERS_FILE_NAME = "carriers.yaml"
SHIPPED_CARRIERS = Path(__file__).with_name(CARRIERS_FILE_NAME)
OTHER_CARRIER = "Other"  # Amazon's code for a carrier not on its list: carrierName says which
SHIP_TIME = time(12, tzinfo=UTC)  # DSDT is a date; noon UTC is that day in every marketplace's zone

# Problem kinds a ShipmentProblem names.
UNKNOWN_CARRIER = "unknown forwarding agent"
BAD_DELIVERY = "bad delivery"
UNMATCHED_LINE = "delivery line not in the Amazon order"


class CarrierSettingsError(ValueError):
    """A carriers file is unusable; the message is one line naming the file and the entry."""


@dataclass(frozen=True)
class Carrier:
    code: str  # Amazon's carrierCode
    name: str | None = None  # carrierName; required with code "Other"


@dataclass(frozen=True)
class CarrierMapping:
    carriers: Mapping[str, Carrier]  # FWNO -> carrier
    sources: tuple[str, ...] = ()  # the files it came from (for messages)

    def carrier_for(self, forwarding_agent: str) -> Carrier | None:
        return self.carriers.get(forwarding_agent.strip())


class DeliveryLineLike(Protocol):
    @property
    def itno(self) -> str: ...
    @property
    def quantity(self) -> Decimal: ...


class DeliveryLike(Protocol):
    @property
    def dlix(self) -> str: ...
    @property
    def tracking(self) -> str: ...
    @property
    def carrier(self) -> str: ...
    @property
    def departure_date(self) -> date | None: ...
    @property
    def lines(self) -> Sequence[DeliveryLineLike]: ...


@dataclass(frozen=True)
class AmazonItem:
    """One item of the Amazon order: what a package line refers to."""

    order_item_id: str
    itno: str  # the M3 item number its SellerSKU maps to
    quantity: int  # QuantityOrdered


@dataclass(frozen=True)
class PackageItem:
    order_item_id: str
    quantity: int


@dataclass(frozen=True)
class PlannedPackage:
    """One delivery to confirm, as ``connectors.amazon.PackageDetail`` takes it."""

    dlix: str
    package_reference_id: str
    carrier_code: str
    carrier_name: str | None
    tracking_number: str
    ship_date: datetime
    items: tuple[PackageItem, ...]


@dataclass(frozen=True)
class ShipmentProblem:
    kind: str
    dlix: str
    detail: str  # names the delivery, agent and items, never buyer data

    @property
    def message(self) -> str:
        return f"delivery {self.dlix}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ShipmentPlan:
    amazon_order_id: str
    packages: tuple[PlannedPackage, ...]
    waiting: tuple[str, ...]  # DLIX of deliveries without a tracking number yet
    problems: tuple[ShipmentProblem, ...]

    @property
    def message(self) -> str:
        return f"order {self.amazon_order_id}: " + "; ".join(p.message for p in self.problems)


def plan_shipments(
    amazon_order_id: str,
    deliveries: Sequence[DeliveryLike],
    items: Sequence[AmazonItem],
    carriers: CarrierMapping,
    *,
    now: datetime,
    ignored_items: Set[str] = frozenset(),
) -> ShipmentPlan:
    """The packages of one order's deliveries, in delivery number order (see the module's rules)."""
    remaining = {n: item.quantity for n, item in enumerate(items)}
    packages: list[PlannedPackage] = []
    waiting: list[str] = []
    problems: list[ShipmentProblem] = []
    for delivery in sorted(deliveries, key=lambda d: (len(d.dlix), d.dlix)):
        # Every delivery's lines use up the items' quantities, waiting or not, so that a later
        # delivery is never given quantities an earlier one holds.
        package_items, line_problems = _package_items(delivery, items, remaining, ignored_items)
        if not package_items and not line_problems:
            continue  # only non-Amazon lines (the shipping charge): nothing to tell Amazon
        if not delivery.tracking.strip():
            waiting.append(delivery.dlix)
            continue
        found = list(line_problems)
        carrier = carriers.carrier_for(delivery.carrier)
        if carrier is None:
            known = ", ".join(sorted(carriers.carriers)) or "none"
            found.append(
                ShipmentProblem(
                    UNKNOWN_CARRIER,
                    delivery.dlix,
                    f"forwarding agent {delivery.carrier.strip() or '(empty)'!r} is not in "
                    f"{CARRIERS_FILE_NAME} (known: {known})",
                )
            )
        if not (delivery.dlix.isdigit() and int(delivery.dlix) > 0):
            found.append(ShipmentProblem(BAD_DELIVERY, delivery.dlix, "the delivery number is not a positive number"))
        if delivery.departure_date is None:
            found.append(ShipmentProblem(BAD_DELIVERY, delivery.dlix, "no departure date (DSDT)"))
        if found or carrier is None or delivery.departure_date is None:
            problems += found
            continue
        packages.append(
            PlannedPackage(
                dlix=delivery.dlix,
                package_reference_id=str(int(delivery.dlix)),
                carrier_code=carrier.code,
                carrier_name=carrier.name,
                tracking_number=delivery.tracking.strip(),
                ship_date=min(datetime.combine(delivery.departure_date, SHIP_TIME), now),
                items=package_items,
            )
        )
    return ShipmentPlan(amazon_order_id, tuple(packages), tuple(waiting), tuple(problems))


def _package_items(
    delivery: DeliveryLike, items: Sequence[AmazonItem], remaining: dict[int, int], ignored_items: Set[str]
) -> tuple[tuple[PackageItem, ...], tuple[ShipmentProblem, ...]]:
    quantities: dict[int, int] = {}  # by the item's position: packages list items in the order's order
    problems: list[ShipmentProblem] = []
    for line in delivery.lines:
        if line.itno in ignored_items:
            continue
        if line.quantity != line.quantity.to_integral_value() or line.quantity < 1:
            problems.append(ShipmentProblem(BAD_DELIVERY, delivery.dlix, f"item {line.itno}: quantity {line.quantity}"))
            continue
        open_quantity = int(line.quantity)
        for n, item in enumerate(items):
            if item.itno != line.itno or not remaining[n] or not open_quantity:
                continue
            taken = min(remaining[n], open_quantity)
            remaining[n] -= taken
            open_quantity -= taken
            quantities[n] = quantities.get(n, 0) + taken
        if open_quantity:
            problems.append(
                ShipmentProblem(
                    UNMATCHED_LINE,
                    delivery.dlix,
                    f"item {line.itno}: {open_quantity} of {line.quantity} delivered beyond the Amazon order's items",
                )
            )
    return tuple(PackageItem(items[n].order_item_id, quantities[n]) for n in sorted(quantities)), tuple(problems)


# -- the carrier mapping -------------------------------------------------------------------------


def load_carriers(home: Path | None = None) -> CarrierMapping:
    """The shipped mapping, extended and overridden entry by entry by ``home/carriers.yaml``."""
    shipped = read_carriers(SHIPPED_CARRIERS)
    override = home / CARRIERS_FILE_NAME if home is not None else None
    if override is None or not override.is_file():
        return shipped
    extra = read_carriers(override)
    return CarrierMapping(MappingProxyType({**shipped.carriers, **extra.carriers}), (*shipped.sources, *extra.sources))


def read_carriers(path: Path) -> CarrierMapping:
    raw = read_yaml_file(path, CarrierSettingsError)
    return parse_carriers(raw, str(path))


def parse_carriers(raw: object, source: str) -> CarrierMapping:
    """Validate an already-loaded YAML document (``source`` names it in messages)."""
    if not isinstance(raw, dict) or set(raw) != {"carriers"} or not isinstance(raw["carriers"], dict):
        raise CarrierSettingsError(f"{source}: must hold one key, carriers, mapping forwarding agents to carriers")
    carriers: dict[str, Carrier] = {}
    for agent, entry in raw["carriers"].items():
        where = f"{source}: carriers.{agent}"
        if not isinstance(entry, dict) or not set(entry) <= {"code", "name"}:
            raise CarrierSettingsError(f"{where}: must be {{code: ..., name: ...}} (name only with code Other)")
        code, name = entry.get("code"), entry.get("name")
        if not isinstance(code, str) or not code.strip():
            raise CarrierSettingsError(f"{where}: code must be Amazon's carrier code (e.g. UPS), or Other")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise CarrierSettingsError(f"{where}: name must be text")
        if code == OTHER_CARRIER and name is None:
            raise CarrierSettingsError(f"{where}: code Other needs the carrier's name")
        carriers[str(agent).strip()] = Carrier(code.strip(), name.strip() if name else None)
    return CarrierMapping(MappingProxyType(carriers), (source,))
