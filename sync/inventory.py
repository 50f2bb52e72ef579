"""Available-to-sell and prices for Amazon listings (issue #15, items 1, 2 and 4): pure rules.

Per marketplace: the allocatable quantity of the item over the marketplace's warehouses, less a
buffer (per SKU, else per item group, else the default: fixed units, a percentage of the
allocatable quantity rounded up, or both, whichever is larger), floored at zero; an item whose
M3 status is not 20 (released) publishes zero. The price comes from M3, per marketplace from
one of two sources (``price_source``): the marketplace's sales price list in its currency
(OIS017MI/GetBasePrice, the default when ``price_list`` is given) or the item's own basic sales
price (``item``: MMS200MI/GetItmPrice SAPR per SACD units, in its currency CUCS; held where
that is not the marketplace's currency), optionally rounded (``ends_in: "0.99"``: up to the next
price ending in .99; ``nearest: "0.05"``: to the nearest multiple, halves up); a change larger
than ``review_percent`` against the last price Amazon accepted is held, and a missing or zero
price is held too. FBA listings are Amazon's stock: never patched.

``plan_listing`` compares what should be published with what Amazon last accepted and returns
an immutable `ListingPlan`: the patches to send (only the changes; ``full`` sends both), what
was held and why. Errors are data (``held``, ``notes``), never exceptions.

``sync/inventory.yaml`` ships the defaults; ``HOME/inventory.yaml`` replaces it as a whole
(as ``HOME/order_routing.yaml`` replaces the routing, sync/routing.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from reconciliation.marketplaces import MARKETPLACES, Marketplace
from sync.catalog import schema_violations  # the catalog's check: one set of schema rules
from sync.routing import RoutingSettings
from sync.yaml_file import read_yaml_file, refuse_unknown_keys, yaml_mapping

INVENTORY_FILE_NAME = "inventory.yaml"
SHIPPED_INVENTORY = Path(__file__).with_name(INVENTORY_FILE_NAME)
SELLABLE_STATUS = "20"  # MMS200MI STAT 20 = released (m3-api.md 4.3); any other status publishes zero
DEFAULT_CHANNEL = "DEFAULT"  # fulfillment_channel_code of a merchant-fulfilled (MFN) offer
PRRF_LENGTH = 10  # OIS017MI price list (PRRF A10)
WHLO_LENGTH = 3
ITGR_LENGTH = 8

_MARKETPLACES_BY_CODE = {m.code: m for m in MARKETPLACES}
Fulfillment = Literal["MFN", "AFN"]
Outcome = Literal["sent", "unchanged", "held", "fba"]
PriceSource = Literal["price_list", "item"]
PRICE_SOURCES: tuple[PriceSource, ...] = ("price_list", "item")


class InventorySettingsError(ValueError):
    """The inventory settings file is unusable; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class BufferRule:
    """Stock kept back from Amazon: ``units``, or ``percent`` of the allocatable quantity
    (rounded up), whichever is larger."""

    units: int = 0
    percent: Decimal = Decimal(0)

    def buffer(self, allocatable: int) -> int:
        share = (Decimal(max(allocatable, 0)) * self.percent / 100).to_integral_value(ROUND_CEILING)
        return max(self.units, int(share))


@dataclass(frozen=True)
class Rounding:
    """A marketplace's price rounding: ``ends_in`` (0.99: 12.34 -> 12.99, 13.00 -> 13.99; never
    below M3's price) or ``nearest`` (0.05: 12.32 -> 12.30, 12.33 -> 12.35)."""

    ends_in: Decimal | None = None
    nearest: Decimal | None = None

    def apply(self, price: Decimal) -> Decimal:
        if self.ends_in is not None:
            candidate = price.to_integral_value(ROUND_FLOOR) + self.ends_in
            return candidate if candidate >= price else candidate + 1
        if self.nearest is not None:
            return (price / self.nearest).to_integral_value(ROUND_HALF_UP) * self.nearest
        return price


@dataclass(frozen=True)
class MarketplaceStock:
    marketplace: Marketplace
    warehouses: tuple[str, ...]  # WHLO whose allocatable quantity counts for this marketplace
    price_list: str | None = None  # OIS017MI PRRF of price_source "price_list"
    rounding: Rounding = field(default_factory=Rounding)
    item_price: bool = False  # price_source "item": the item's sales price, not a price list

    @property
    def currency(self) -> str:
        return self.marketplace.currency

    @property
    def price_source(self) -> PriceSource | None:
        """Where prices come from; None: the marketplace's prices are left alone."""
        if self.item_price:
            return "item"
        return "price_list" if self.price_list is not None else None

    @property
    def price_origin(self) -> str:
        """Where the price comes from, as messages name it."""
        if self.price_source == "item":
            return "the M3 item's sales price (MMS200MI)"
        return f"M3 price list {self.price_list}"


@dataclass(frozen=True)
class InventorySettings:
    marketplaces: Mapping[str, MarketplaceStock]  # by marketplace id
    default_buffer: BufferRule = field(default_factory=BufferRule)
    group_buffers: Mapping[str, BufferRule] = field(default_factory=lambda: MappingProxyType({}))  # by ITGR
    sku_buffers: Mapping[str, BufferRule] = field(default_factory=lambda: MappingProxyType({}))  # by SKU
    review_percent: Decimal = Decimal(20)
    readback_after_seconds: int = 600  # a patch younger than this is not read back yet (Amazon works on it)
    skus: tuple[str, ...] = ()  # only these SKUs (empty: every SKU the item mapping or M3's balances know)
    source: str = ""

    def buffer_rule(self, sku: str, item_group: str | None) -> BufferRule:
        """The SKU's rule, else its item group's, else the default."""
        if sku in self.sku_buffers:
            return self.sku_buffers[sku]
        if item_group is not None and item_group in self.group_buffers:
            return self.group_buffers[item_group]
        return self.default_buffer

    @property
    def warehouses(self) -> tuple[str, ...]:
        """Every warehouse any marketplace counts, in first-named order."""
        return tuple(dict.fromkeys(w for m in self.marketplaces.values() for w in m.warehouses))


# -- what the rules are given ----------------------------------------------------------------------
@dataclass(frozen=True)
class ItemFacts:
    """An M3 item as the rules need it (MMS200MI/GetItmBasic)."""

    itno: str
    status: str
    item_group: str


@dataclass(frozen=True)
class KnownListing:
    """What Amazon last accepted for one SKU and marketplace (or showed when first read)."""

    product_type: str
    fulfillment: Fulfillment
    quantity: int | None
    price: Decimal | None


@dataclass(frozen=True)
class ListingPlan:
    """One SKU in one marketplace: what to publish, what to send, what was held and why."""

    sku: str
    marketplace_id: str
    itno: str
    product_type: str
    currency: str
    fulfillment: Fulfillment
    quantity: int
    price: Decimal | None
    send_quantity: bool = False
    send_price: bool = False
    held: tuple[str, ...] = ()  # what was not sent, and why (an exception)
    notes: tuple[str, ...] = ()  # published anyway, but worth a look (an exception)

    @property
    def outcome(self) -> Outcome:
        if self.fulfillment == "AFN":
            return "fba"
        if self.send_quantity or self.send_price:
            return "sent"
        return "held" if self.held else "unchanged"

    def patches(self) -> tuple[dict[str, Any], ...]:
        """The JSON patches of patchListingsItem for what is to be sent (Amazon's shape, sp-api.md 4).
        ``merge`` by the element's selector (channel code, marketplace), not ``replace``: a replace
        would drop what the seller keeps on Amazon beside the quantity and price (an FBA channel's
        element, restock date, handling time, minimum and maximum seller-allowed prices)."""
        patches: list[dict[str, Any]] = []
        if self.send_quantity:
            patches.append(
                {
                    "op": "merge",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": DEFAULT_CHANNEL, "quantity": self.quantity}],
                }
            )
        if self.send_price and self.price is not None:
            patches.append(
                {
                    "op": "merge",
                    "path": "/attributes/purchasable_offer",
                    "value": [
                        {
                            "marketplace_id": self.marketplace_id,
                            "currency": self.currency,
                            "our_price": [{"schedule": [{"value_with_tax": self.price}]}],
                        }
                    ],
                }
            )
        return tuple(patches)


# The attribute each kind of patch sets, and what the plan stops sending when it breaks the schema.
_QUANTITY_ATTRIBUTE, _PRICE_ATTRIBUTE = "fulfillment_availability", "purchasable_offer"


def checked_against(plan: ListingPlan, schema: Mapping[str, Any]) -> ListingPlan:
    """``plan`` with each patch that breaks the product type's JSON Schema held (not sent), the
    reason naming the attribute and the rule: Amazon would refuse it the same way. A quantity
    patch and a price patch stand alone (a price held never holds the quantity back)."""
    patches = {str(p["path"]).rsplit("/", 1)[-1]: p["value"] for p in plan.patches()}
    broken: dict[str, list[str]] = {}
    for violation in schema_violations(schema, patches):
        broken.setdefault(violation.attribute, []).append(f"{violation.rule} ({violation.detail} at {violation.path})")
    if not broken:
        return plan
    held = tuple(
        f"{plan.sku} in {plan.marketplace_id}: {name} breaks product type {plan.product_type}'s schema: "
        + "; ".join(rules)
        for name, rules in broken.items()
    )
    return replace(
        plan,
        send_quantity=plan.send_quantity and _QUANTITY_ATTRIBUTE not in broken,
        send_price=plan.send_price and _PRICE_ATTRIBUTE not in broken,
        held=plan.held + held,
    )


# -- the rules -------------------------------------------------------------------------------------
def available_to_sell(
    stock: MarketplaceStock,
    rule: BufferRule,
    item: ItemFacts | None,
    allocatable: Mapping[str, Decimal],
) -> tuple[int, tuple[str, ...]]:
    """The quantity to publish and notes on it: allocatable over the marketplace's warehouses
    (whole units, rounded down), less the buffer, floored at zero. No item, a status other than
    20, no balance in any of the warehouses or a negative total publish zero."""
    if item is None:
        return 0, ("no M3 item: publishing 0",)
    if item.status != SELLABLE_STATUS:
        return 0, ()  # expected: a blocked or discontinued item is simply not for sale
    found = [allocatable[w] for w in stock.warehouses if w in allocatable]
    if not found:
        return 0, (f"no balance in warehouse(s) {', '.join(stock.warehouses)}: publishing 0",)
    total = int(sum(found, Decimal(0)).to_integral_value(ROUND_FLOOR))
    if total < 0:
        return 0, (f"negative allocatable balance {total}: publishing 0",)
    return max(total - rule.buffer(total), 0), ()


def listing_price(
    stock: MarketplaceStock,
    m3_price: Decimal | None,
    last_accepted: Decimal | None,
    review_percent: Decimal,
    price_currency: str | None = None,
) -> tuple[Decimal | None, str | None]:
    """The price to publish (currency decimals, rounded by the marketplace's rule) and why it is
    held (None: publish it). ``price_currency``: the currency M3 holds the price in (the item's
    sales price has one; a price list's is the marketplace's). Without a price source the
    marketplace's prices are left alone."""
    if stock.price_source is None:
        return None, None
    if price_currency is not None and price_currency != stock.currency:
        return None, f"{stock.price_origin} is in {price_currency}, not {stock.currency}"
    if m3_price is None:
        return None, f"no price for {stock.currency} in {stock.price_origin}"
    quantum = Decimal(1).scaleb(-stock.marketplace.decimals)
    in_m3 = m3_price.quantize(quantum, ROUND_HALF_UP)
    price = stock.rounding.apply(in_m3).quantize(quantum, ROUND_HALF_UP)
    if in_m3 <= 0 or price <= 0:  # judged before rounding too: ends_in would make 0.00 a 0.99
        price = min(in_m3, price)
        return price, f"price {price} {stock.currency} in {stock.price_origin} is not positive"
    if last_accepted is not None and last_accepted > 0:
        change = abs(price - last_accepted) / last_accepted * 100
        if change > review_percent:
            return price, (
                f"price {last_accepted} -> {price} {stock.currency} changes {change.quantize(Decimal('0.1'))}% "
                f"(more than {review_percent}%): held for review"
            )
    return price, None


def plan_listing(
    settings: InventorySettings,
    sku: str,
    marketplace_id: str,
    item: ItemFacts | None,
    itno: str,
    allocatable: Mapping[str, Decimal],
    m3_price: Decimal | None,
    known: KnownListing,
    *,
    full: bool = False,
    price_currency: str | None = None,
) -> ListingPlan:
    """What to send for ``sku`` in the marketplace given what Amazon last accepted (``known``):
    the quantity when it changed, the price when it changed and is not held; ``full`` sends both.
    ``price_currency``: the currency of ``m3_price`` when it is the item's sales price."""
    stock = settings.marketplaces[marketplace_id]
    rule = settings.buffer_rule(sku, item.item_group if item is not None else None)
    quantity, notes = available_to_sell(stock, rule, item, allocatable)
    price, price_held = listing_price(stock, m3_price, known.price, settings.review_percent, price_currency)
    base = ListingPlan(
        sku=sku,
        marketplace_id=marketplace_id,
        itno=itno,
        product_type=known.product_type,
        currency=stock.currency,
        fulfillment=known.fulfillment,
        quantity=quantity,
        price=price if price_held is None else None,
    )
    if known.fulfillment == "AFN":
        return base  # Amazon's stock and Amazon's offer: never patched
    return replace(
        base,
        send_quantity=full or known.quantity != quantity,
        send_price=price is not None and price_held is None and (full or known.price != price),
        held=(price_held,) if price_held is not None else (),
        notes=notes,
    )


def skus_to_sync(
    settings: InventorySettings, routing: RoutingSettings, items_with_balance: Iterable[str]
) -> dict[str, str]:
    """SKU -> M3 item number of every SKU to sync, mapped as order sync maps them
    (``RoutingSettings.item_number``): the settings' list when given, else every SKU of the
    routing's item map, plus every item M3 holds a balance of that no SKU maps to (its SKU is its
    item number)."""
    skus = list(settings.skus) if settings.skus else list(routing.items)
    if not settings.skus:
        mapped = set(routing.items.values())
        skus += [itno for itno in items_with_balance if itno not in mapped]
    return {sku: routing.item_number(sku) for sku in sorted(set(skus))}


# -- the settings file -----------------------------------------------------------------------------
def load_inventory_settings(home: Path | None = None) -> InventorySettings:
    """``home/inventory.yaml`` if it exists, else the shipped defaults (sync/inventory.yaml)."""
    path = SHIPPED_INVENTORY
    if home is not None and (home / INVENTORY_FILE_NAME).is_file():
        path = home / INVENTORY_FILE_NAME
    return parse_inventory_settings(read_yaml_file(path, InventorySettingsError), str(path))


def parse_inventory_settings(raw: object, source: str) -> InventorySettings:
    """Validate an already-loaded YAML document (``source`` names it in messages)."""
    top = _mapping(raw, source, "(top level)")
    _no_unknown_keys(top, {"marketplaces", "buffers", "review_percent", "readback_after_seconds", "skus"}, source, "")
    marketplaces_raw = _mapping(top.get("marketplaces"), source, "marketplaces")
    if not marketplaces_raw:
        raise InventorySettingsError(f"{source}: marketplaces: at least one marketplace must be configured")
    marketplaces: dict[str, MarketplaceStock] = {}
    for code, body in marketplaces_raw.items():
        stock = _marketplace_stock(code, body, source)
        marketplaces[stock.marketplace.marketplace_id] = stock
    buffers = _mapping(top.get("buffers") or {}, source, "buffers")
    _no_unknown_keys(buffers, {"default", "item_groups", "skus"}, source, "buffers")
    groups = _mapping(buffers.get("item_groups") or {}, source, "buffers.item_groups")
    skus = _mapping(buffers.get("skus") or {}, source, "buffers.skus")
    listed = top.get("skus") or []
    if not isinstance(listed, list) or not all(isinstance(s, str) and s for s in listed):
        raise InventorySettingsError(f"{source}: skus: must be a list of SKUs (text)")
    readback = top.get("readback_after_seconds", 600)
    if not isinstance(readback, int) or isinstance(readback, bool) or readback < 0:
        raise InventorySettingsError(f"{source}: readback_after_seconds: must be a whole number of 0 or more")
    return InventorySettings(
        marketplaces=MappingProxyType(marketplaces),
        default_buffer=_buffer(buffers.get("default") or {}, source, "buffers.default"),
        group_buffers=MappingProxyType({g: _group_buffer(g, r, source) for g, r in groups.items()}),
        sku_buffers=MappingProxyType({s: _buffer(r, source, f"buffers.skus.{s}") for s, r in skus.items()}),
        review_percent=_decimal(top.get("review_percent", 20), source, "review_percent", positive=True),
        readback_after_seconds=readback,
        skus=tuple(listed),
        source=source,
    )


def _marketplace_stock(code: str, raw: object, source: str) -> MarketplaceStock:
    key = f"marketplaces.{code}"
    marketplace = _MARKETPLACES_BY_CODE.get(code)
    if marketplace is None:
        raise InventorySettingsError(
            f"{source}: {key}: unknown marketplace code (known: {', '.join(sorted(_MARKETPLACES_BY_CODE))})"
        )
    body = _mapping(raw, source, key)
    _no_unknown_keys(body, {"warehouses", "price_list", "price_source", "rounding"}, source, key)
    warehouses = body.get("warehouses")
    if (
        not isinstance(warehouses, list)
        or not warehouses
        or not all(isinstance(w, str) and 0 < len(w) <= WHLO_LENGTH for w in warehouses)
    ):
        raise InventorySettingsError(
            f"{source}: {key}.warehouses: must list warehouse codes in quotes ('100'), 1 to {WHLO_LENGTH} characters"
        )
    price_list = body.get("price_list")
    if price_list is not None and (not isinstance(price_list, str) or not 0 < len(price_list) <= PRRF_LENGTH):
        raise InventorySettingsError(
            f"{source}: {key}.price_list: must be a price list code in quotes, 1 to {PRRF_LENGTH} characters"
        )
    price_source = body.get("price_source", "price_list" if price_list is not None else None)
    if price_source is not None and price_source not in PRICE_SOURCES:
        raise InventorySettingsError(f"{source}: {key}.price_source: must be one of {', '.join(PRICE_SOURCES)}")
    if (price_source == "price_list") != (price_list is not None):
        raise InventorySettingsError(
            f"{source}: {key}.price_list: give a price list with price_source: price_list (the default), "
            "and none with price_source: item"
        )
    return MarketplaceStock(
        marketplace=marketplace,
        warehouses=tuple(warehouses),
        price_list=price_list,
        rounding=_rounding(body.get("rounding"), source, f"{key}.rounding"),
        item_price=price_source == "item",
    )


def _rounding(raw: object, source: str, key: str) -> Rounding:
    if raw is None or raw == "none":
        return Rounding()
    body = _mapping(raw, source, key)
    _no_unknown_keys(body, {"ends_in", "nearest"}, source, key)
    if len(body) != 1:
        raise InventorySettingsError(f"{source}: {key}: give one of ends_in or nearest (or none)")
    if "ends_in" in body:
        ending = _decimal(body["ends_in"], source, f"{key}.ends_in", positive=False)
        if not 0 <= ending < 1:
            raise InventorySettingsError(f"{source}: {key}.ends_in: must be the cents part, 0 to 0.99 ('0.99')")
        return Rounding(ends_in=ending)
    return Rounding(nearest=_decimal(body["nearest"], source, f"{key}.nearest", positive=True))


def _buffer(raw: object, source: str, key: str) -> BufferRule:
    body = _mapping(raw, source, key)
    _no_unknown_keys(body, {"units", "percent"}, source, key)
    units = body.get("units", 0)
    if not isinstance(units, int) or isinstance(units, bool) or units < 0:
        raise InventorySettingsError(f"{source}: {key}.units: must be a whole number of 0 or more")
    percent = _decimal(body.get("percent", 0), source, f"{key}.percent", positive=False)
    if not 0 <= percent <= 100:
        raise InventorySettingsError(f"{source}: {key}.percent: must be 0 to 100")
    return BufferRule(units=units, percent=percent)


def _decimal(raw: object, source: str, key: str, *, positive: bool) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InventorySettingsError(f"{source}: {key}: must be a number")
    try:
        value = Decimal(str(raw))  # a YAML float's shortest text: 0.99 stays 0.99
    except InvalidOperation:
        raise InventorySettingsError(f"{source}: {key}: {raw!r} is not a number") from None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise InventorySettingsError(f"{source}: {key}: must be {'more than' if positive else 'at least'} 0")
    return value


def _group_buffer(group: str, raw: object, source: str) -> BufferRule:
    key = f"buffers.item_groups.{group}"
    if len(group) > ITGR_LENGTH:
        raise InventorySettingsError(f"{source}: {key}: an item group (ITGR) has at most {ITGR_LENGTH} characters")
    return _buffer(raw, source, key)


def _mapping(raw: object, source: str, key: str) -> dict[str, Any]:
    return yaml_mapping(raw, source, key, InventorySettingsError)


def _no_unknown_keys(body: Mapping[str, Any], allowed: set[str], source: str, key: str) -> None:
    refuse_unknown_keys(body, allowed, source, key, InventorySettingsError)
