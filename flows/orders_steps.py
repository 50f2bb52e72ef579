"""The steps of the order sync flow, one job each. The story is in ``flows/orders.py``.

An Amazon order reaches M3 at most once: before creating, the state store's id map and M3 itself
(the order's CUOR is the Amazon order id) are asked, so a rerun, or a crash between M3's answer and
our record of it, finds the order instead of creating it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from prefect import task

from connectors.m3 import (
    CustomerRequest,
    M3DataError,
    M3OrderIncomplete,
    M3TransactionError,
    OrderLineRequest,
    OrderRequest,
)
from connectors.m3.records import OrderAddress
from flows.connections import Connections
from flows.settlement_steps import CONNECTOR_RETRIES
from flows.shipments import nothing_to_confirm  # shipment sync need not read what order sync saw done
from sync.customers import CUSTOMER_ID_KIND, BuyerCustomer, buyer_customer_for
from sync.order_mapping import (
    M3OrderState,
    MappedOrder,
    OrderAction,
    OrderMappingError,
    Profile,
    SkippedOrder,
    decide_status,
    map_order,
)
from sync.routing import MarketplaceRoute, RoutingSettings

ORDERS_WATERMARK = "orders.last_updated"
ORDER_ID_KIND = "order"  # the id map's kind: Amazon order id -> M3 ORNO
FLOW = "orders"  # the dead letters' flow
OVERLAP = timedelta(minutes=10)  # read again before the watermark: Amazon's LastUpdateDate may lag
FIRST_RUN_LOOK_BACK = timedelta(days=7)
BUYER_KEY_SALT_FILE = "buyer_key.salt"  # in HOME: the per-install salt of buyer keys (sync/customers.py)

Outcome = Literal["created", "already_in_m3", "skipped", "waiting", "dead_lettered"]
OUTCOMES: tuple[Outcome, ...] = ("created", "already_in_m3", "skipped", "waiting", "dead_lettered")
_DONE: frozenset[Outcome] = frozenset({"created", "already_in_m3", "skipped", "dead_lettered"})


@dataclass(frozen=True)
class AmazonOrder:
    """One order as the Amazon connector hands it out, with its items."""

    order: Mapping[str, Any] = field(repr=False)  # may hold buyer data
    items: tuple[Mapping[str, Any], ...] = field(repr=False)

    @property
    def order_id(self) -> str:
        return str(self.order.get("AmazonOrderId") or "")

    @property
    def last_update(self) -> datetime | None:
        raw = self.order.get("LastUpdateDate")
        try:
            return datetime.fromisoformat(str(raw)) if raw else None
        except ValueError:
            return None


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    outcome: Outcome
    reason: str = ""  # no buyer data: statuses, fields, SKUs, M3's answer
    orno: str | None = None
    last_update: datetime | None = None

    @property
    def done(self) -> bool:
        return self.outcome in _DONE


def read_since(stored: str | None, since: datetime | None, now: datetime) -> datetime:
    """Where the run reads from: ``since`` when given, else the watermark less the overlap, else the look-back."""
    if since is not None:
        return since
    if stored:
        return datetime.fromisoformat(stored) - OVERLAP
    return now - FIRST_RUN_LOOK_BACK


@task(**CONNECTOR_RETRIES)
def fetch_orders(
    connections: Connections, since: datetime, profile: Profile, *, buyers: bool = False
) -> list[AmazonOrder]:
    """Orders updated since ``since`` in every region's account, all pages, with their items.
    The cloudsuite profile sends the delivery address to M3 and ``buyers`` (customers: buyer) creates
    customers from the buyer: those orders are read with buyer data (a restricted data token)."""
    fetched: list[AmazonOrder] = []
    for connector in connections.require_amazon():
        for order, items in connector.get_orders_with_items(since, pii=profile == "cloudsuite" or buyers):
            fetched.append(AmazonOrder(order, tuple(items)))
    return fetched


@task(**CONNECTOR_RETRIES, task_run_name="fetch-{order_id}")
def fetch_order(connections: Connections, marketplace_id: str, order_id: str, *, buyers: bool = False) -> AmazonOrder:
    """One order by id with its items, as ``fetch_orders`` reads it (the dead-letter replay's way
    back to an order: its letter holds no buyer data). The cloudsuite profile adds the address,
    ``buyers`` (customers: buyer) the address and the buyer's e-mail."""
    connector = connections.require_amazon().for_marketplace(marketplace_id)
    head = connector.get_order(order_id)
    if profile_of(connections) == "cloudsuite" or buyers:
        address = connector.get_order_address(order_id).get("ShippingAddress")
        head = {**head, "ShippingAddress": address} if address else head
    if buyers:
        info = connector.get_order_buyer_info(order_id)
        head = {**head, "BuyerInfo": {k: v for k, v in info.items() if k != "AmazonOrderId"}}
    return AmazonOrder(head, tuple(connector.get_order_items(order_id)))


class M3Lookups:
    """What a run asks M3 once and remembers: CUOR -> ORNO per customer (one LstHead each, kept
    current as the run creates orders), which item numbers exist, and the orders with an open
    dead letter (the state store's)."""

    def __init__(self, connections: Connections) -> None:
        self._m3 = connections.require_m3()
        self._by_customer: dict[str, dict[str, str]] = {}
        self._items: dict[str, bool] = {}
        self.open_letters = {letter.entity_key: letter.error for letter in connections.state.list_dead_letters(FLOW)}

    def orno(self, cuno: str, cuor: str) -> str | None:
        if cuno not in self._by_customer:
            self._by_customer[cuno] = self._m3.orders_by_reference(cuno)
        return self._by_customer[cuno].get(cuor)

    def add(self, cuno: str, cuor: str, orno: str) -> None:
        self._by_customer.setdefault(cuno, {})[cuor] = orno

    def known_items(self, itnos: Iterable[str]) -> set[str]:
        """Which of ``itnos`` M3 has: an unknown SKU is a mapping error, never a half-created order."""
        for itno in itnos:
            if itno not in self._items:
                try:
                    self._m3.get_item(itno)
                    self._items[itno] = True
                except M3TransactionError:  # M3 answered: no such item (out of reach raises on)
                    self._items[itno] = False
        return {itno for itno, known in self._items.items() if known}


def sync_order(connections: Connections, routing: RoutingSettings, m3: M3Lookups, amazon: AmazonOrder) -> OrderResult:
    """One order into M3 (or why not). M3 out of reach raises: the run stops and the order is not done."""
    order_id, status = amazon.order_id, str(amazon.order.get("OrderStatus") or "")

    def result(outcome: Outcome, reason: str, orno: str | None = None) -> OrderResult:
        return OrderResult(order_id, outcome, reason, orno, amazon.last_update)

    decision = decide_status(status, M3OrderState.ABSENT)
    if decision.action is OrderAction.WAIT:
        return result("waiting", decision.reason)
    route = routing.route(str(amazon.order.get("MarketplaceId") or ""))
    buyer = None
    if routing.customers == "buyer" and route is not None:
        buyer = buyer_customer_for(amazon.order, route, buyer_key_salt(connections.home))
    buyer_cuno = connections.state.m3_id_for(CUSTOMER_ID_KIND, buyer[0]) if isinstance(buyer, tuple) else None
    orno = connections.state.m3_id_for(ORDER_ID_KIND, order_id)
    if orno is None and route is not None and order_id:
        orno = m3.orno(buyer_cuno or route.customer, order_id)
        if orno is not None and order_id in m3.open_letters:  # left incomplete in M3 by an earlier run
            return dead_letter(connections, amazon, m3.open_letters[order_id])
        if orno is not None:  # in M3 but not in our records: a crash after M3 answered, or another tool
            connections.state.map_id(ORDER_ID_KIND, order_id, orno, route.marketplace.code)
    decision = decide_status(status, M3OrderState.ABSENT if orno is None else M3OrderState.OPEN)
    if decision.action is OrderAction.NOTHING:
        if orno is not None:
            nothing_to_confirm(connections.state, order_id, status, str(amazon.order.get("FulfillmentChannel") or ""))
        return result("skipped" if orno is None else "already_in_m3", decision.reason, orno)
    if decision.action is not OrderAction.CREATE:  # cancelling and exceptions need a person for now
        return dead_letter(connections, amazon, decision.reason)
    itnos = [routing.item_number(str(item.get("SellerSKU") or "")) for item in amazon.items]
    known = m3.known_items([*itnos, routing.shipping_item])
    mapped = map_order(amazon.order, amazon.items, routing, profile_of(connections), known_items=known)
    if isinstance(mapped, SkippedOrder):
        return result("skipped", mapped.reason)
    if isinstance(mapped, OrderMappingError):
        return dead_letter(connections, amazon, mapped.message)
    if isinstance(buyer, OrderMappingError):
        return dead_letter(connections, amazon, buyer.message)
    if buyer is not None and route is not None:
        try:
            mapped = replace(mapped, cuno=buyer_cuno or create_buyer_customer(connections, route, *buyer))
        except (M3TransactionError, M3DataError) as exc:  # M3 refused the customer: this order only
            return dead_letter(connections, amazon, f"order {order_id}: M3 refused the buyer's customer: {exc}")
    try:
        created = connections.require_m3().create_order(connector_request(mapped))
    except (M3TransactionError, M3OrderIncomplete, M3DataError) as exc:  # M3 refused it: this order only
        return dead_letter(connections, amazon, f"order {order_id}: M3 refused it: {exc}")
    m3.add(mapped.cuno, order_id, created.orno)
    connections.state.map_id(ORDER_ID_KIND, order_id, created.orno, route.marketplace.code if route else None)
    nothing_to_confirm(connections.state, order_id, status, str(amazon.order.get("FulfillmentChannel") or ""))
    return result("created", decision.reason, created.orno)


def buyer_key_salt(home: Path) -> str:
    """The install's salt of buyer keys, made on first use. Losing it re-keys every buyer (new customers)."""
    path = home / BUYER_KEY_SALT_FILE
    if not path.is_file():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def create_buyer_customer(connections: Connections, route: MarketplaceRoute, key: str, buyer: BuyerCustomer) -> str:
    """The buyer's new M3 customer (CRS610MI/Add from the template), recorded under the buyer key."""
    cuno = connections.require_m3().create_customer(CustomerRequest(**vars(buyer)))
    connections.state.map_id(CUSTOMER_ID_KIND, key, cuno, route.marketplace.code)
    return cuno


def profile_of(connections: Connections) -> Profile:
    return "cloudsuite" if connections.m3_profile == "cloudsuite" else "brief"


def connector_request(mapped: MappedOrder) -> OrderRequest:
    """The M3 connector's request for a mapped order, field for field."""
    head = mapped.request_fields()
    head["lines"] = tuple(OrderLineRequest(**vars(line)) for line in mapped.lines)
    if mapped.delivery_address is not None:
        head["delivery_address"] = OrderAddress(**vars(mapped.delivery_address))
    return OrderRequest(**head)


def dead_letter(connections: Connections, amazon: AmazonOrder, reason: str) -> OrderResult:
    """Keep the order for a person (``m3sync dead-letters``). The payload is what re-fetches it, no buyer data."""
    order = amazon.order
    payload = {
        "amazon_order_id": amazon.order_id,
        "marketplace_id": order.get("MarketplaceId"),
        "order_status": order.get("OrderStatus"),
        "last_update_date": order.get("LastUpdateDate"),
    }
    connections.state.add_dead_letter(FLOW, ORDER_ID_KIND, amazon.order_id, payload, reason)
    return OrderResult(amazon.order_id, "dead_lettered", reason, None, amazon.last_update)


def next_watermark(results: list[OrderResult], read_until: datetime) -> str:
    """Up to when the next run may start reading: the run's start, held back by the earliest
    last update of an order not done (waiting), so the next run sees it again."""
    pending = [r.last_update for r in results if not r.done and r.last_update is not None]
    return min([read_until.astimezone(UTC), *pending]).astimezone(UTC).isoformat()


def orders_document(results: list[OrderResult], since: datetime, watermark: str | None) -> dict[str, Any]:
    """The JSON document ``m3sync orders --json`` prints (docs/cli-contract.md)."""
    document: dict[str, Any] = {"since": since.astimezone(UTC).isoformat(), "watermark": watermark}
    for outcome in OUTCOMES:
        document[outcome] = [
            {"amazon_order_id": r.order_id, **({"m3_order": r.orno} if r.orno else {}), "reason": r.reason}
            for r in results
            if r.outcome == outcome
        ]
    document["counts"] = {outcome: len(document[outcome]) for outcome in OUTCOMES}
    return document


def orders_message(document: dict[str, Any]) -> str | None:
    """The one-line reason a run fails ("2 of 40 orders dead-lettered: 111-… (unknown SKU …)"), or None."""
    letters = document["dead_lettered"]
    if not letters:
        return None
    total = sum(document["counts"].values())
    first = letters[0]
    reason = first["reason"].removeprefix(f"order {first['amazon_order_id']}: ")
    more = f" and {len(letters) - 1} more" if len(letters) > 1 else ""
    return f"{len(letters)} of {total} orders dead-lettered: {first['amazon_order_id']} ({reason}){more}"
