"""Amazon order -> M3 customer order, as pure functions (issue #14, items 1 and 2).

Input: an Orders API v0 ``Order`` and its ``OrderItem`` records as the Amazon connector hands them
out (``connectors/amazon/orders.py``: plain dicts, ``Money`` amounts as strings). Output: a
:class:`MappedOrder` (what ``connectors.m3.OrderRequest`` takes, field for field: the domain may not
import the connectors, so the flow builds the request with ``OrderRequest(**mapped.request_fields())``),
a :class:`SkippedOrder`, or an :class:`OrderMappingError`. Bad orders are data, never exceptions.

Rules:
- CUOR and YREF carry the Amazon order id (CUOR is the idempotency reference).
- ORDT is the purchase date (ISO 8601) as a date in the company's time zone.
- SAPR (unit price) = ItemPrice / quantity (ItemPrice is the line total), rounded UP to the currency's
  minor unit; the few minor units that adds (less than one per piece) go onto the line's discount
  amount (DIA1) with the promotion discount, so the line's net is exactly ItemPrice - PromotionDiscount.
- Shipping (sum of ShippingPrice, less ShippingDiscount) is one line of the configured non-stock item.
- The delivery address (cloudsuite, merchant-fulfilled orders only: ``brief`` has no AddBatchAddress,
  and Amazon itself delivers FBA orders): name and address lines are wrapped at word boundaries into
  M3's 36-character CUNM, CUA1..CUA3, a long name spilling onto the next line; what does not fit is an
  error, never cut.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal

from sync.routing import ITNO_LENGTH, ChannelRoute, MarketplaceRoute, RoutingSettings

Profile = Literal["brief", "cloudsuite"]
PROFILES: tuple[Profile, ...] = ("brief", "cloudsuite")

ADDRESS_LINE_LENGTH = 36  # CUNM, CUA1..CUA4: A36
# OrderAddress (the connector's AddBatchAddress) carries CUNM and CUA1..CUA3: four lines in all.
ADDRESS_LINES = 4
POSTAL_CODE_LENGTH = 10  # PONO
TOWN_LENGTH = 20  # TOWN
COUNTRY_LENGTH = 3  # CSCD
STATE_LENGTH = 2  # ECAR: a state code; longer regions (Bayern, Île-de-France) are not codes
PHONE_LENGTH = 16  # PHNO

# Problem kinds an OrderMappingError names.
UNKNOWN_SKU = "unknown SKU"
ZERO_QUANTITY = "quantity 0"
UNEXPECTED_CURRENCY = "unexpected currency"
NAME_TOO_LONG = "name too long"
ADDRESS_TOO_LONG = "address too long"
MISSING_FIELD = "missing field"
BAD_VALUE = "bad value"
NOT_ROUTED = "marketplace not routed"


@dataclass(frozen=True)
class OrderProblem:
    kind: str  # one of the kinds above
    detail: str  # names fields and SKUs, never buyer data


@dataclass(frozen=True)
class OrderMappingError:
    """An order that cannot become an M3 order as it stands: the dead letter's reason."""

    amazon_order_id: str
    problems: tuple[OrderProblem, ...]

    @property
    def message(self) -> str:
        return f"order {self.amazon_order_id}: " + "; ".join(f"{p.kind}: {p.detail}" for p in self.problems)


@dataclass(frozen=True)
class SkippedOrder:
    amazon_order_id: str
    reason: str


@dataclass(frozen=True)
class MappedLine:
    """One order line, as ``connectors.m3.OrderLineRequest`` takes it."""

    itno: str
    quantity: int
    unit_price: Decimal | None
    discount: Decimal | None = None
    warehouse: str | None = None
    requested_delivery_date: date | None = None


@dataclass(frozen=True)
class MappedAddress:
    """The delivery address, as ``connectors.m3.OrderAddress`` takes it. Buyer data: no repr."""

    name: str = field(repr=False)
    address1: str = field(repr=False)
    address2: str | None = field(default=None, repr=False)
    address3: str | None = field(default=None, repr=False)
    postal_code: str | None = field(default=None, repr=False)
    town: str | None = field(default=None, repr=False)
    country: str | None = None
    state: str | None = None
    phone: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MappedOrder:
    """One M3 customer order for the connector's profile, as ``connectors.m3.OrderRequest`` takes it."""

    profile: Profile
    cuno: str
    customer_order_ref: str
    order_type: str
    lines: tuple[MappedLine, ...]
    order_date: date | None = None
    requested_delivery_date: date | None = None
    warehouse: str | None = None
    facility: str | None = None
    currency: str | None = None
    your_reference: str | None = None
    delivery_address: MappedAddress | None = None

    def request_fields(self) -> dict[str, Any]:
        """Keyword arguments of ``OrderRequest`` (lines and address still as mapped records)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "profile"}


OrderMapping = MappedOrder | SkippedOrder | OrderMappingError


# -- status handling --------------------------------------------------------------------------------
class M3OrderState(Enum):
    ABSENT = "absent"  # no M3 order carries the Amazon order id (CUOR)
    OPEN = "open"  # in M3, no line beyond allocated (status 22-33, or no lines left): M3 deletes it
    PICKING = "picking"  # a line on a picking list (44): the warehouse has it in hand
    DELIVERED = "delivered"  # a line delivered (66) or invoiced (77)
    CANCELLED = "cancelled"  # deleted in M3: the order we recorded is gone, or its lines are (9x)


# Line statuses (OIS100MI ORSL/ORST, m3-api.md 4.1): first digit 2 to allocate, 3 allocated,
# 4 on a picking list, 6 delivered, 7 invoiced, 9 deleted.
_PICKING_FROM, _DELIVERED_FROM, _DELETED_FROM = "44", "66", "90"


def m3_order_state(progress: tuple[str, str] | None) -> M3OrderState:
    """The state of an M3 order from its head's lowest and highest line status (GetHead ORSL, ORST);
    ``None``: M3 has no such order (deleted). A head without lines ("", "") is open: nothing shipped."""
    if progress is None:
        return M3OrderState.CANCELLED
    lowest, highest = progress
    if lowest >= _DELETED_FROM:  # every line deleted but kept as history
        return M3OrderState.CANCELLED
    if highest >= _DELETED_FROM:  # some lines deleted (9x): the others decide
        highest = lowest
    if highest >= _DELIVERED_FROM:
        return M3OrderState.DELIVERED
    if highest >= _PICKING_FROM:
        return M3OrderState.PICKING
    return M3OrderState.OPEN


class OrderAction(Enum):
    WAIT = "wait"  # look again on a later run
    CREATE = "create"
    NOTHING = "nothing"  # M3 already has it, or there is nothing to undo
    CANCEL = "cancel"  # delete the M3 order's lines and head
    EXCEPTION = "exception"  # needs a person: report it


@dataclass(frozen=True)
class StatusDecision:
    action: OrderAction
    reason: str


_WAITING = frozenset({"Pending", "PendingAvailability"})  # no prices yet / preorder not yet available
_TO_CREATE = frozenset({"Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"})


def decide_status(order_status: str, m3_state: M3OrderState) -> StatusDecision:
    """What to do with an Amazon order in ``order_status`` given what M3 holds for it."""
    if order_status in _WAITING:
        return StatusDecision(OrderAction.WAIT, f"{order_status}: Amazon has not confirmed the order yet")
    if order_status in _TO_CREATE:
        if m3_state is M3OrderState.ABSENT:
            return StatusDecision(OrderAction.CREATE, f"{order_status}: not in M3 yet")
        return StatusDecision(OrderAction.NOTHING, f"{order_status}: already in M3")
    if order_status == "Canceled":
        return _cancel_decision(m3_state)
    # Unfulfillable and statuses Amazon may add: a person looks, nothing happens silently.
    return StatusDecision(OrderAction.EXCEPTION, f"order status {order_status!r} is not handled automatically")


def _cancel_decision(m3_state: M3OrderState) -> StatusDecision:
    if m3_state is M3OrderState.ABSENT:
        return StatusDecision(OrderAction.NOTHING, "Canceled before it reached M3")
    if m3_state is M3OrderState.CANCELLED:
        return StatusDecision(OrderAction.NOTHING, "Canceled: the M3 order is already deleted")
    if m3_state is M3OrderState.OPEN:
        return StatusDecision(OrderAction.CANCEL, "Canceled before delivery: the M3 order is deleted")
    if m3_state is M3OrderState.PICKING:
        return StatusDecision(
            OrderAction.EXCEPTION, "Canceled while M3 picks it (status 44): stop the picking list, then delete"
        )
    return StatusDecision(OrderAction.EXCEPTION, "Canceled after M3 delivered it: a return, not a cancellation")


# -- mapping ----------------------------------------------------------------------------------------
def map_order(
    order: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    settings: RoutingSettings,
    profile: Profile,
    *,
    known_items: Set[str] | None = None,
) -> OrderMapping:
    """The M3 order for an Amazon order and its items; ``known_items`` (M3's item numbers), when given,
    turns an SKU mapping to no M3 item into an error here rather than an M3 rejection later."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")  # a caller's bug
    order_id = str(order.get("AmazonOrderId") or "")
    if not order_id:
        return OrderMappingError("(no AmazonOrderId)", (OrderProblem(MISSING_FIELD, "AmazonOrderId"),))
    route = settings.route(str(order.get("MarketplaceId") or ""))
    if route is None:
        detail = f"MarketplaceId {order.get('MarketplaceId')!r} has no entry in {settings.source or 'the routing'}"
        return OrderMappingError(order_id, (OrderProblem(NOT_ROUTED, detail),))
    channel = order.get("FulfillmentChannel")
    if channel == "AFN" and route.afn is None:
        return SkippedOrder(order_id, f"fulfilled by Amazon: afn is skip for {route.marketplace.code}")
    if channel not in ("AFN", "MFN"):
        return OrderMappingError(order_id, (OrderProblem(BAD_VALUE, f"FulfillmentChannel {channel!r}"),))
    channel_route = route.afn if channel == "AFN" else route.mfn
    assert channel_route is not None  # AFN with afn None returned above

    problems: list[OrderProblem] = []
    order_date = _order_date(order.get("PurchaseDate"), settings, problems)
    lines = _lines(items, route, settings, known_items, problems)
    address = None
    if profile == "cloudsuite" and channel == "MFN":
        address = _address(order.get("ShippingAddress"), problems)
    if problems:
        return OrderMappingError(order_id, tuple(problems))
    return _order(order_id, profile, route, channel_route, order_date, tuple(lines), address)


def _order(
    order_id: str,
    profile: Profile,
    route: MarketplaceRoute,
    channel_route: ChannelRoute,
    order_date: date | None,
    lines: tuple[MappedLine, ...],
    address: MappedAddress | None,
) -> MappedOrder:
    return MappedOrder(
        profile=profile,
        cuno=route.customer,
        customer_order_ref=order_id,
        order_type=channel_route.order_type,
        lines=lines,
        order_date=order_date,
        warehouse=channel_route.warehouse,
        facility=route.facility,
        currency=route.currency,
        your_reference=order_id,
        delivery_address=address,
    )


def _order_date(raw: object, settings: RoutingSettings, problems: list[OrderProblem]) -> date | None:
    if not isinstance(raw, str) or not raw:
        problems.append(OrderProblem(MISSING_FIELD, "PurchaseDate"))
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(OrderProblem(BAD_VALUE, f"PurchaseDate {raw!r} is not ISO 8601"))
        return None
    if moment.tzinfo is None:
        problems.append(OrderProblem(BAD_VALUE, f"PurchaseDate {raw!r} has no time zone"))
        return None
    return order_date_in(moment, settings)


def order_date_in(moment: datetime, settings: RoutingSettings) -> date:
    """The calendar date of ``moment`` (time-zone aware) in the company's time zone: M3's ORDT."""
    return moment.astimezone(settings.company_time_zone).date()


def unit_price(line_total: Decimal, quantity: int, decimals: int) -> tuple[Decimal, Decimal]:
    """(unit price, rounding): ``line_total / quantity`` rounded up to ``decimals`` places, and what
    ``quantity`` such units add above ``line_total`` (0 <= rounding < quantity minor units).
    10.00 / 3 -> (3.34, 0.02): 3 x 3.34 - 0.02 = 10.00 exactly."""
    unit = (line_total / quantity).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_CEILING)
    return unit, unit * quantity - line_total


def _money(
    item: Mapping[str, Any], name: str, route: MarketplaceRoute, where: str, problems: list[OrderProblem]
) -> Decimal:
    """The amount of Money field ``name`` (absent = 0); its currency must be the marketplace's."""
    raw = item.get(name)
    if raw is None:
        return Decimal(0)
    if not isinstance(raw, Mapping):
        problems.append(OrderProblem(BAD_VALUE, f"{where} {name} is not a Money object"))
        return Decimal(0)
    currency = raw.get("CurrencyCode")
    if currency != route.currency:
        problems.append(
            OrderProblem(
                UNEXPECTED_CURRENCY,
                f"{where} {name} in {currency!r}, {route.marketplace.code} orders are in {route.currency}",
            )
        )
    try:
        amount = Decimal(str(raw.get("Amount")))
    except InvalidOperation:
        amount = Decimal("NaN")
    decimals = route.marketplace.decimals
    if not amount.is_finite() or amount < 0 or -int(amount.as_tuple().exponent) > max(decimals, 0):
        # Negative, or finer than the currency's minor unit: not an amount Amazon charged.
        problems.append(OrderProblem(BAD_VALUE, f"{where} {name} amount {raw.get('Amount')!r}"))
        return Decimal(0)
    return amount


def _lines(
    items: Sequence[Mapping[str, Any]],
    route: MarketplaceRoute,
    settings: RoutingSettings,
    known_items: Set[str] | None,
    problems: list[OrderProblem],
) -> list[MappedLine]:
    if not items:
        problems.append(OrderProblem(MISSING_FIELD, "the order has no items"))
        return []
    decimals = route.marketplace.decimals
    lines: list[MappedLine] = []
    shipping = shipping_discount = Decimal(0)
    for item in items:
        sku = str(item.get("SellerSKU") or "")
        where = f"item {item.get('OrderItemId') or '?'} (SKU {sku!r})"
        problems_before = len(problems)
        itno = settings.item_number(sku) if sku else ""
        if not sku:
            problems.append(OrderProblem(MISSING_FIELD, f"{where}: SellerSKU"))
        elif len(itno) > ITNO_LENGTH or (known_items is not None and itno not in known_items):
            problems.append(OrderProblem(UNKNOWN_SKU, f"{where} maps to item {itno!r}, which M3 does not have"))
        quantity = item.get("QuantityOrdered")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            problems.append(OrderProblem(BAD_VALUE, f"{where}: QuantityOrdered {quantity!r}"))
        elif quantity == 0:
            problems.append(OrderProblem(ZERO_QUANTITY, f"{where} has QuantityOrdered 0"))
        if "ItemPrice" not in item:
            problems.append(OrderProblem(MISSING_FIELD, f"{where}: ItemPrice"))
        line_total = _money(item, "ItemPrice", route, where, problems)
        promotion = _money(item, "PromotionDiscount", route, where, problems)
        shipping += _money(item, "ShippingPrice", route, where, problems)
        shipping_discount += _money(item, "ShippingDiscount", route, where, problems)
        if len(problems) > problems_before:
            continue
        assert isinstance(quantity, int)
        price, rounding = unit_price(line_total, quantity, decimals)
        if promotion > line_total:
            problems.append(OrderProblem(BAD_VALUE, f"{where}: PromotionDiscount exceeds ItemPrice"))
            continue
        discount = promotion + rounding
        lines.append(MappedLine(itno=itno, quantity=quantity, unit_price=price, discount=discount or None))
    if shipping > 0:
        lines.append(
            MappedLine(itno=settings.shipping_item, quantity=1, unit_price=shipping, discount=shipping_discount or None)
        )
    return lines


def fit_lines(texts: Sequence[str], width: int = ADDRESS_LINE_LENGTH) -> tuple[str, ...] | None:
    """Each text wrapped at word boundaries into lines of at most ``width``; None if a word is longer
    than ``width`` (it cannot be split without cutting it)."""
    lines: list[str] = []
    for text in texts:
        words = text.split()
        if any(len(word) > width for word in words):
            return None
        lines.extend(textwrap.wrap(" ".join(words), width, break_long_words=False, break_on_hyphens=False))
    return tuple(lines)


_STREET_KEYS = ("AddressLine1", "AddressLine2", "AddressLine3")


def _address(raw: object, problems: list[OrderProblem]) -> MappedAddress | None:
    street_lines = [str(raw[k]) for k in _STREET_KEYS if raw.get(k)] if isinstance(raw, Mapping) else []
    if not isinstance(raw, Mapping) or not raw.get("Name") or not street_lines:
        # Amazon withholds the address without a Restricted Data Token; the connector must fetch it with one.
        problems.append(OrderProblem(MISSING_FIELD, "ShippingAddress (Name and an AddressLine)"))
        return None
    name = fit_lines([str(raw["Name"])])
    street = fit_lines(street_lines)
    if name is None or len(name) > ADDRESS_LINES - 1:  # the name needs CUNM and leaves CUA1 for the street
        problems.append(
            OrderProblem(
                NAME_TOO_LONG,
                f"ShippingAddress Name does not fit {ADDRESS_LINES - 1} lines of {ADDRESS_LINE_LENGTH} characters",
            )
        )
        return None
    if street is None or len(name) + len(street) > ADDRESS_LINES:
        problems.append(
            OrderProblem(
                ADDRESS_TOO_LONG,
                f"ShippingAddress Name and AddressLine1-3 do not fit {ADDRESS_LINES} lines of "
                f"{ADDRESS_LINE_LENGTH} characters (CUNM, CUA1-CUA3)",
            )
        )
        return None
    problems_before = len(problems)
    lines = name + street + (None,) * (ADDRESS_LINES - len(name) - len(street))
    short: dict[str, str | None] = {}
    for key, limit, m3_field in (
        ("PostalCode", POSTAL_CODE_LENGTH, "PONO"),
        ("City", TOWN_LENGTH, "TOWN"),
        ("CountryCode", COUNTRY_LENGTH, "CSCD"),
        ("Phone", PHONE_LENGTH, "PHNO"),
    ):
        value = str(raw.get(key) or "").strip() or None
        if value is not None and len(value) > limit:
            problems.append(
                OrderProblem(ADDRESS_TOO_LONG, f"ShippingAddress {key} is longer than {m3_field} ({limit})")
            )
        short[key] = value
    state = str(raw.get("StateOrRegion") or "").strip()
    if len(problems) > problems_before:
        return None
    return MappedAddress(
        name=str(lines[0]),
        address1=str(lines[1]),
        address2=lines[2],
        address3=lines[3],
        postal_code=short["PostalCode"],
        town=short["City"],
        country=short["CountryCode"],
        state=state if 0 < len(state) <= STATE_LENGTH else None,
        phone=short["Phone"],
    )


def fit_address(raw: object) -> tuple[MappedAddress | None, tuple[OrderProblem, ...]]:
    """An Amazon ShippingAddress fitted to M3's address fields, or the problems (no buyer data in them);
    the order's delivery address and a buyer's customer (sync/customers.py) share it."""
    problems: list[OrderProblem] = []
    address = _address(raw, problems)
    return address, tuple(problems)
