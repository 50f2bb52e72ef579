"""Order routing settings (issue #14, item 2): which M3 customer, currency, facility, warehouse and
order type an Amazon order gets, per marketplace and fulfilment channel.

``sync/order_routing.yaml`` ships the defaults; ``HOME/order_routing.yaml`` replaces it as a whole
(a partial merge would make it unclear which file a value came from). Sandbox runs read
``HOME/sandbox/order_routing.yaml`` instead, which the sandbox writes from its catalog (its SKUs
differ from its item numbers) at every start: a user's own routing is never overwritten, nor
used against the sandbox M3. Loading validates everything
and raises :class:`RoutingSettingsError` with one line naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciliation.marketplaces import MARKETPLACES, Marketplace
from sync.yaml_file import read_yaml_file, refuse_unknown_keys, yaml_mapping

ROUTING_FILE_NAME = "order_routing.yaml"
SANDBOX_FOLDER = "sandbox"  # HOME/sandbox, where the emulators keep their data and files
SHIPPED_ROUTING = Path(__file__).with_name(ROUTING_FILE_NAME)

# M3 field lengths (m3-api.md section 4.1, OIS100MI AddBatchHead / AddBatchLine).
CUNO_LENGTH = 10
CUCD_LENGTH = 3
FACI_LENGTH = 3
WHLO_LENGTH = 3
ORTP_LENGTH = 3
ITNO_LENGTH = 15
DEFAULT_RETURN_ORDER_TYPE = "RET"  # the return order type refunds are credited with (sync/credits.py)

_MARKETPLACES_BY_CODE = {m.code: m for m in MARKETPLACES}

# marketplace: every order to the marketplace's customer; buyer: one M3 customer per Amazon buyer (sync/customers.py).
CustomerMode = Literal["marketplace", "buyer"]
CUSTOMER_MODES: tuple[CustomerMode, ...] = get_args(CustomerMode)


class RoutingSettingsError(ValueError):
    """A routing settings file is unusable; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class ChannelRoute:
    warehouse: str  # WHLO
    order_type: str  # ORTP


@dataclass(frozen=True)
class MarketplaceRoute:
    marketplace: Marketplace
    customer: str  # CUNO
    currency: str  # CUCD: the only currency this marketplace's orders may carry
    facility: str  # FACI
    mfn: ChannelRoute  # merchant-fulfilled: the picking warehouse
    afn: ChannelRoute | None  # fulfilled by Amazon: the FBA virtual warehouse; None = skip AFN orders
    customer_template: str | None = None  # CUTM: the template of buyer customers (customers: buyer)
    return_order_type: str = DEFAULT_RETURN_ORDER_TYPE  # ORTP of the return orders crediting refunds


@dataclass(frozen=True)
class RoutingSettings:
    company_time_zone: ZoneInfo
    shipping_item: str  # ITNO of the non-stock line carrying the shipping charge
    items: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # SellerSKU -> ITNO
    marketplaces: Mapping[str, MarketplaceRoute] = field(default_factory=lambda: MappingProxyType({}))  # by id
    source: str = ""  # the file the settings came from (for messages)
    customers: CustomerMode = "marketplace"

    def item_number(self, sku: str) -> str:
        """The M3 item number of an Amazon SKU: the mapping's, else the SKU itself."""
        return self.items.get(sku, sku)

    def route(self, marketplace_id: str) -> MarketplaceRoute | None:
        return self.marketplaces.get(marketplace_id)

    @property
    def return_order_types(self) -> frozenset[str]:
        """The order types of every marketplace's return orders: an M3 order of one of them with an
        Amazon order id as CUOR credits that order, it is not the order itself."""
        return frozenset({DEFAULT_RETURN_ORDER_TYPE} | {r.return_order_type for r in self.marketplaces.values()})


def load_routing(home: Path | None = None, *, sandbox: bool = False) -> RoutingSettings:
    """The routing settings: ``home/order_routing.yaml`` (``home/sandbox/order_routing.yaml`` for
    a sandbox run) if it exists, else the shipped defaults."""
    path = SHIPPED_ROUTING
    if home is not None:
        override = routing_path(home, sandbox=sandbox)
        if override.is_file():
            path = override
    return read_routing(path)


def routing_path(home: Path, *, sandbox: bool = False) -> Path:
    """Where ``home``'s routing override is: the user's, or the one the sandbox writes."""
    return (home / SANDBOX_FOLDER if sandbox else home) / ROUTING_FILE_NAME


def read_routing(path: Path) -> RoutingSettings:
    raw = read_yaml_file(path, RoutingSettingsError)
    return parse_routing(raw, str(path))


def parse_routing(raw: object, source: str) -> RoutingSettings:
    """Validate an already-loaded YAML document (``source`` names it in messages)."""
    top = _mapping(raw, source, "(top level)")
    _no_unknown_keys(top, {"company_time_zone", "shipping_item", "items", "marketplaces", "customers"}, source, "")
    customers = _customer_mode(top.get("customers", "marketplace"), source)
    zone_name = _text(top, "company_time_zone", source, "", limit=None)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RoutingSettingsError(
            f"{source}: company_time_zone: {zone_name!r} is not a known time zone (e.g. Europe/Berlin)"
        ) from None
    shipping_item = _text(top, "shipping_item", source, "", limit=ITNO_LENGTH)
    items_raw = _mapping(top.get("items") or {}, source, "items")
    items: dict[str, str] = {}
    for sku, itno in items_raw.items():
        if not isinstance(itno, str) or not itno or len(itno) > ITNO_LENGTH:
            raise RoutingSettingsError(
                f"{source}: items.{sku}: must be an item number of 1 to {ITNO_LENGTH} characters"
            )
        items[str(sku)] = itno
    marketplaces_raw = _mapping(top.get("marketplaces"), source, "marketplaces")
    if not marketplaces_raw:
        raise RoutingSettingsError(f"{source}: marketplaces: at least one marketplace must be routed")
    routes: dict[str, MarketplaceRoute] = {}
    for code, entry in marketplaces_raw.items():
        route = _marketplace_route(str(code), entry, source)
        if customers == "buyer" and route.customer_template is None:
            raise RoutingSettingsError(
                f"{source}: marketplaces.{code}.customer_template: missing (customers: buyer creates each "
                "buyer's customer from it)"
            )
        routes[route.marketplace.marketplace_id] = route
    return RoutingSettings(
        company_time_zone=zone,
        shipping_item=shipping_item,
        items=MappingProxyType(items),
        marketplaces=MappingProxyType(routes),
        source=source,
        customers=customers,
    )


def _customer_mode(raw: object, source: str) -> CustomerMode:
    for mode in CUSTOMER_MODES:
        if raw == mode:
            return mode
    raise RoutingSettingsError(f"{source}: customers: {raw!r} is not one of {', '.join(CUSTOMER_MODES)}")


def _marketplace_route(code: str, entry: object, source: str) -> MarketplaceRoute:
    key = f"marketplaces.{code}"
    marketplace = _MARKETPLACES_BY_CODE.get(code)
    if marketplace is None:
        known = ", ".join(sorted(_MARKETPLACES_BY_CODE))
        raise RoutingSettingsError(f"{source}: {key}: unknown marketplace code (known: {known})")
    body = _mapping(entry, source, key)
    _no_unknown_keys(
        body,
        {"customer", "currency", "facility", "mfn", "afn", "customer_template", "return_order_type"},
        source,
        key,
    )
    afn_raw = body.get("afn")
    template = None
    if body.get("customer_template") is not None:
        template = _text(body, "customer_template", source, key, limit=CUNO_LENGTH)
    return MarketplaceRoute(
        marketplace=marketplace,
        customer=_text(body, "customer", source, key, limit=CUNO_LENGTH),
        currency=_text(body, "currency", source, key, limit=CUCD_LENGTH),
        facility=_text(body, "facility", source, key, limit=FACI_LENGTH),
        mfn=_channel_route(body.get("mfn"), source, f"{key}.mfn"),
        afn=None if afn_raw == "skip" else _channel_route(afn_raw, source, f"{key}.afn", may_skip=True),
        customer_template=template,
        return_order_type=(
            _text(body, "return_order_type", source, key, limit=ORTP_LENGTH)
            if "return_order_type" in body
            else DEFAULT_RETURN_ORDER_TYPE
        ),
    )


def _channel_route(raw: object, source: str, key: str, *, may_skip: bool = False) -> ChannelRoute:
    if raw is None:
        skip = " or skip" if may_skip else ""
        raise RoutingSettingsError(f"{source}: {key}: missing (warehouse and order_type{skip})")
    body = _mapping(raw, source, key)
    _no_unknown_keys(body, {"warehouse", "order_type"}, source, key)
    return ChannelRoute(
        warehouse=_text(body, "warehouse", source, key, limit=WHLO_LENGTH),
        order_type=_text(body, "order_type", source, key, limit=ORTP_LENGTH),
    )


def _mapping(raw: object, source: str, key: str) -> dict[str, Any]:
    return yaml_mapping(raw, source, key, RoutingSettingsError)


def _no_unknown_keys(body: Mapping[str, Any], allowed: set[str], source: str, key: str) -> None:
    refuse_unknown_keys(body, allowed, source, key, RoutingSettingsError)


def _text(body: Mapping[str, Any], name: str, source: str, key: str, *, limit: int | None) -> str:
    where = f"{key}.{name}" if key else name
    value = body.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Never converted: YAML reads 010 as 8 and 1e2 as text, so a code written as a number is ambiguous.
        raise RoutingSettingsError(f"{source}: {where}: write the code in quotes ('{value}'), YAML reads a number")
    if not isinstance(value, str) or not value.strip():
        raise RoutingSettingsError(f"{source}: {where}: missing or empty")
    if limit is not None and len(value) > limit:
        raise RoutingSettingsError(f"{source}: {where}: {value!r} is {len(value)} characters, M3 allows {limit}")
    return value
