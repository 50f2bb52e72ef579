"""The steps of the order sync flow, one job each. The story is in ``flows/orders.py``.

An Amazon order reaches M3 at most once: before creating, the state store's id map and M3 itself
(the order's CUOR is the Amazon order id) are asked, so a rerun, or a crash between M3's answer and
our record of it, finds the order instead of creating it again. A buyer's customer (customers:
buyer) likewise: M3 is searched for the buyer key's prefix (YREF) before CRS610MI/Add.
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from prefect import task

from connectors.m3 import (
    CustomerRequest,
    M3DataError,
    M3OrderIncomplete,
    M3TransactionError,
    M3Unavailable,
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
    m3_order_state,
    map_order,
)
from sync.routing import DEFAULT_RETURN_ORDER_TYPE, MarketplaceRoute, RoutingSettings

ORDERS_WATERMARK = "orders.last_updated"
ORDER_ID_KIND = "order"  # the id map's kind: Amazon order id -> M3 ORNO
FLOW = "orders"  # the dead letters' flow
OVERLAP = timedelta(minutes=10)  # read again before the watermark: Amazon's LastUpdateDate may lag
FIRST_RUN_LOOK_BACK = timedelta(days=7)
PAGE_SIZE = 100  # orders per searchOrders page: Amazon's most
READ_AHEAD = 32  # pages read ahead of M3: more than searchOrders' burst (20), so the burst is never wasted
IN_DOUBT_ATTEMPTS = 3  # writes of an order whose answers were lost, each after M3 was read again
BUYER_KEY_SALT_FILE = "buyer_key.salt"  # in HOME: the per-install salt of buyer keys (sync/customers.py)

Outcome = Literal["created", "already_in_m3", "cancelled", "skipped", "waiting", "dead_lettered"]
OUTCOMES: tuple[Outcome, ...] = ("created", "already_in_m3", "cancelled", "skipped", "waiting", "dead_lettered")
_DONE: frozenset[Outcome] = frozenset({"created", "already_in_m3", "cancelled", "skipped", "dead_lettered"})


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


def order_pages(
    connections: Connections, since: datetime, profile: Profile, *, buyers: bool = False, page_size: int = PAGE_SIZE
) -> Iterator[list[AmazonOrder]]:
    """Orders updated since ``since`` in every region's account with their items, a page at a time.

    A thread reads ahead (at most ``READ_AHEAD`` pages) while the caller writes the last page
    to M3: Amazon's searchOrders quota, not M3, sets the pace. The connector retries Amazon's
    429s and outages with backoff; what it gives up on is raised here. The cloudsuite profile
    sends the delivery address to M3 and ``buyers`` (customers: buyer) creates customers from
    the buyer: those orders are read with buyer data (a restricted data token)."""
    pages: queue.Queue[list[AmazonOrder] | BaseException | None] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: list[AmazonOrder] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            page: list[AmazonOrder] = []
            for connector in connections.require_amazon():
                for order, items in connector.get_orders_with_items(since, pii=profile == "cloudsuite" or buyers):
                    page.append(AmazonOrder(order, tuple(items)))
                    if len(page) == page_size and not put(page):
                        return
                    page = [] if len(page) == page_size else page
            if page and not put(page):
                return
            put(None)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            put(exc)

    reader = threading.Thread(target=read, name="amazon-order-pages", daemon=True)
    reader.start()
    try:
        while (item := pages.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the reader stops at its next page (one it waits for on Amazon is not awaited)


@task(**CONNECTOR_RETRIES, task_run_name="fetch-{order_id}")
def fetch_order(connections: Connections, marketplace_id: str, order_id: str, *, buyers: bool = False) -> AmazonOrder:
    """One order by id with its items, as ``order_pages`` reads it (the dead-letter replay's way
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

    def __init__(self, connections: Connections, routing: RoutingSettings | None = None) -> None:
        self._m3 = connections.require_m3()
        # Return orders carry their Amazon order's CUOR too: the routing names their types.
        default = frozenset({DEFAULT_RETURN_ORDER_TYPE})
        self._return_types = routing.return_order_types if routing is not None else default
        self._by_customer: dict[str, dict[str, str]] = {}
        self._items: dict[str, bool] = {}
        self.open_letters = {letter.entity_key: letter.error for letter in connections.state.list_dead_letters(FLOW)}

    def orno(self, cuno: str, cuor: str) -> str | None:
        if cuno not in self._by_customer:
            self._by_customer[cuno] = self._m3.orders_by_reference(cuno, return_order_types=self._return_types)
        return self._by_customer[cuno].get(cuor)

    def add(self, cuno: str, cuor: str, orno: str) -> None:
        self._by_customer.setdefault(cuno, {})[cuor] = orno

    def forget(self, cuno: str) -> None:
        """Read the customer's orders from M3 again at the next look (after a lost answer)."""
        self._by_customer.pop(cuno, None)

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


@dataclass(frozen=True)
class NewOrder:
    """An order to create in M3 (mapped, its customer known); created with its page's others."""

    amazon: AmazonOrder
    mapped: MappedOrder
    marketplace: str | None  # the id map's marketplace code
    reason: str


@dataclass(frozen=True)
class FoundOrder:
    """An order M3 holds under its CUOR that our records do not: it counts once its lines are checked."""

    amazon: AmazonOrder
    mapped: MappedOrder
    marketplace: str | None
    orno: str
    reason: str


def sync_order(connections: Connections, routing: RoutingSettings, m3: M3Lookups, amazon: AmazonOrder) -> OrderResult:
    """One order into M3 (or why not): a page of one (the dead-letter replay's way)."""
    return sync_orders(connections, routing, m3, [amazon])[0]


def sync_orders(
    connections: Connections, routing: RoutingSettings, m3: M3Lookups, page: Sequence[AmazonOrder]
) -> list[OrderResult]:
    """A page of orders into M3, in order: each decided alone (``decide_order``), the new ones
    created together in a few bulk requests, each recorded in the id map as soon as M3 answered.
    M3 out of reach raises: the run stops and the page's unrecorded orders are not done."""
    decided = [decide_order(connections, routing, m3, amazon) for amazon in page]
    found = check_found(connections, m3, [d for d in decided if isinstance(d, FoundOrder)])
    created = create_new(connections, m3, [d for d in decided if isinstance(d, NewOrder)])
    done = {**found, **created}
    return [d if isinstance(d, OrderResult) else done[d.amazon.order_id] for d in decided]


def decide_order(
    connections: Connections, routing: RoutingSettings, m3: M3Lookups, amazon: AmazonOrder
) -> OrderResult | NewOrder | FoundOrder:
    """What to do with one order: its result when no M3 write is needed, else the order to
    create (or, found in M3 by its CUOR, to check)."""
    order_id, status = amazon.order_id, str(amazon.order.get("OrderStatus") or "")
    decision = decide_status(status, M3OrderState.ABSENT)
    if decision.action is OrderAction.WAIT:
        return _result(amazon, "waiting", decision.reason)
    route = routing.route(str(amazon.order.get("MarketplaceId") or ""))
    marketplace = route.marketplace.code if route else None
    buyer = None
    if routing.customers == "buyer" and route is not None:
        buyer = buyer_customer_for(amazon.order, route, buyer_key_salt(connections.home))
    buyer_cuno = buyer_customer_in_m3(connections, route, *buyer) if isinstance(buyer, tuple) and route else None
    orno = connections.state.m3_id_for(ORDER_ID_KIND, order_id)
    found_in_m3 = None
    if orno is None and route is not None and order_id:
        found_in_m3 = orno = m3.orno(buyer_cuno or route.customer, order_id)
        if orno is not None and order_id in m3.open_letters:  # left incomplete in M3 by an earlier run
            return dead_letter(connections, amazon, m3.open_letters[order_id])
    m3_state = M3OrderState.ABSENT if orno is None else M3OrderState.OPEN
    if orno is not None and status == "Canceled":  # only a cancellation needs M3's progress (one GetHead)
        m3_state = m3_order_state(connections.require_m3().order_progress(orno))
    decision = decide_status(status, m3_state)
    if found_in_m3 is not None and decision.action is not OrderAction.NOTHING:
        record_order(connections, amazon, found_in_m3, marketplace)
    if decision.action is OrderAction.NOTHING and (found_in_m3 is None or status == "Canceled"):
        if orno is not None:
            nothing_to_confirm(connections.state, order_id, status, str(amazon.order.get("FulfillmentChannel") or ""))
        return _result(amazon, "skipped" if orno is None else "already_in_m3", decision.reason, orno)
    if decision.action is OrderAction.CANCEL and orno is not None:
        return cancel_in_m3(connections, amazon, orno, decision.reason)
    if decision.action not in (OrderAction.CREATE, OrderAction.NOTHING):  # exceptions need a person
        reason = decision.reason if orno is None else f"order {order_id}: {decision.reason} (M3 order {orno})"
        return dead_letter(connections, amazon, reason)
    itnos = [routing.item_number(str(item.get("SellerSKU") or "")) for item in amazon.items]
    known = m3.known_items([*itnos, routing.shipping_item])
    mapped = map_order(amazon.order, amazon.items, routing, profile_of(connections), known_items=known)
    if found_in_m3 is not None:  # its lines are checked against the mapping before it counts
        if isinstance(mapped, MappedOrder):
            mapped = replace(mapped, cuno=buyer_cuno) if buyer_cuno else mapped
            return FoundOrder(amazon, mapped, marketplace, found_in_m3, decision.reason)
        if isinstance(mapped, SkippedOrder):  # one we never create (afn: skip): another tool's, complete or not
            record_order(connections, amazon, found_in_m3, marketplace)
            return _result(amazon, "already_in_m3", decision.reason, found_in_m3)
        return dead_letter(
            connections,
            amazon,
            f"order {order_id}: in M3 as {found_in_m3} by its CUOR; its lines cannot be checked: {mapped.message}",
        )
    if isinstance(mapped, SkippedOrder):
        return _result(amazon, "skipped", mapped.reason)
    if isinstance(mapped, OrderMappingError):
        return dead_letter(connections, amazon, mapped.message)
    if isinstance(buyer, OrderMappingError):
        return dead_letter(connections, amazon, buyer.message)
    if buyer is not None and route is not None:
        try:
            mapped = replace(mapped, cuno=buyer_cuno or create_buyer_customer(connections, route, *buyer))
        except (M3TransactionError, M3DataError) as exc:  # M3 refused the customer: this order only
            return dead_letter(connections, amazon, f"order {order_id}: M3 refused the buyer's customer: {exc}")
    return NewOrder(amazon, mapped, marketplace, decision.reason)


def create_new(connections: Connections, m3: M3Lookups, orders: Sequence[NewOrder]) -> dict[str, OrderResult]:
    """Create ``orders`` in M3 in bulk; each one's result by Amazon order id.

    An order whose answer never came is in doubt: M3 is read again by its CUOR first; found, it
    is checked like any order found there (``check_found``), absent, it is written again (at most
    ``IN_DOUBT_ATTEMPTS`` writes in all). Still in doubt then, it waits for the next run, which
    starts by looking it up. So an order is never created twice."""
    results: dict[str, OrderResult] = {}
    todo = list(orders)
    for attempt in range(1, IN_DOUBT_ATTEMPTS + 1):
        if not todo:
            break
        writes = connections.require_m3().create_orders([connector_request(new.mapped) for new in todo])
        in_doubt: list[tuple[NewOrder, M3Unavailable]] = []
        for new, written in zip(todo, writes, strict=True):
            order_id = new.amazon.order_id
            if written.created is not None:
                m3.add(new.mapped.cuno, order_id, written.created.orno)
                record_order(connections, new.amazon, written.created.orno, new.marketplace)
                results[order_id] = _result(new.amazon, "created", new.reason, written.created.orno)
            elif written.refused is not None:  # M3 refused it: this order only
                results[order_id] = dead_letter(
                    connections, new.amazon, f"order {order_id}: M3 refused it: {written.refused}"
                )
            elif written.in_doubt is not None:
                in_doubt.append((new, written.in_doubt))
        for cuno in {new.mapped.cuno for new, _ in in_doubt}:
            m3.forget(cuno)  # read M3 again: the lost answers' orders may be there
        found, todo = [], []
        for new, lost in in_doubt:
            orno = m3.orno(new.mapped.cuno, new.amazon.order_id)
            if orno is not None:
                reason = f"{new.reason}; M3's answer was lost, the order found in M3 by its CUOR"
                found.append(FoundOrder(new.amazon, new.mapped, new.marketplace, orno, reason))
            elif attempt < IN_DOUBT_ATTEMPTS:
                todo.append(new)
            else:
                reason = f"M3's answer never came ({lost.reason}); the next run looks the order up in M3 first"
                results[new.amazon.order_id] = _result(new.amazon, "waiting", reason)
        results.update(check_found(connections, m3, found, created=True))
    return results


def check_found(
    connections: Connections, m3: M3Lookups, orders: Sequence[FoundOrder], *, created: bool = False
) -> dict[str, OrderResult]:
    """Orders M3 holds under their CUOR, checked against their mapping (one bulk read of their
    lines): complete, they are recorded (already in M3, or ``created`` when this run's lost write
    made them); with only the first of their lines (a head whose lines an earlier attempt did not
    all add), the missing lines are added (brief profile) or the order is dead-lettered; lines
    that differ from the mapping are dead-lettered for a person."""
    if not orders:
        return {}
    operations = connections.require_m3()
    lines = operations.lines_of_orders([found.orno for found in orders])
    results: dict[str, OrderResult] = {}
    for found in orders:
        order_id, orno = found.amazon.order_id, found.orno
        have = [(line.itno, Decimal(line.quantity)) for line in sorted(lines[orno], key=lambda line: line.line_number)]
        want = [(line.itno, Decimal(line.quantity)) for line in found.mapped.lines]
        if have != want[: len(have)]:
            results[order_id] = dead_letter(
                connections,
                found.amazon,
                f"order {order_id}: in M3 as {orno} by its CUOR, but its lines {_lines_text(have)} are not "
                f"Amazon's {_lines_text(want)}; correct or delete {orno} in M3",
            )
            continue
        outcome: Outcome = "created" if created else "already_in_m3"
        reason = found.reason
        if len(have) < len(want):
            if operations.profile != "brief":
                results[order_id] = dead_letter(
                    connections,
                    found.amazon,
                    f"order {order_id}: in M3 as {orno} by its CUOR with {len(have)} of its {len(want)} lines; "
                    f"add the missing lines to {orno} in M3 (or delete it)",
                )
                continue
            try:
                operations.add_order_lines(
                    orno, [OrderLineRequest(**vars(line)) for line in found.mapped.lines[len(have) :]]
                )
            except (M3TransactionError, M3OrderIncomplete, M3DataError) as exc:
                results[order_id] = dead_letter(
                    connections, found.amazon, f"order {order_id}: in M3 as {orno} with missing lines M3 refused: {exc}"
                )
                continue
            except M3Unavailable as exc:  # the lines may be in: the next run checks the order again
                reason = (
                    f"M3's answer to {orno}'s missing lines never came ({exc.reason}); the next run checks it again"
                )
                results[order_id] = _result(found.amazon, "waiting", reason)
                continue
            outcome = "created"
            reason = f"{reason}; completed: M3 had {len(have)} of its {len(want)} lines, the missing ones added"
        m3.add(found.mapped.cuno, order_id, orno)
        record_order(connections, found.amazon, orno, found.marketplace)
        results[order_id] = _result(found.amazon, outcome, reason, orno)
    return results


def record_order(connections: Connections, amazon: AmazonOrder, orno: str, marketplace: str | None) -> None:
    """Amazon id -> M3 ORNO in the id map; an order order sync has just seen fulfilled by Amazon,
    Shipped or Canceled is done for shipment sync too (it spends no getOrder, 0.5/s, on it)."""
    connections.state.map_id(ORDER_ID_KIND, amazon.order_id, orno, marketplace)
    status, channel = str(amazon.order.get("OrderStatus") or ""), str(amazon.order.get("FulfillmentChannel") or "")
    nothing_to_confirm(connections.state, amazon.order_id, status, channel)


def _lines_text(lines: list[tuple[str, Decimal]]) -> str:
    return "[" + ", ".join(f"{itno} x {quantity.normalize():f}" for itno, quantity in lines) + "]"


def _result(amazon: AmazonOrder, outcome: Outcome, reason: str, orno: str | None = None) -> OrderResult:
    return OrderResult(amazon.order_id, outcome, reason, orno, amazon.last_update)


def cancel_in_m3(connections: Connections, amazon: AmazonOrder, orno: str, reason: str) -> OrderResult:
    """Delete M3 order ``orno`` of an order Amazon cancelled; M3 refusing (a line picked meanwhile)
    makes it a dead letter with M3's answer."""
    try:
        deleted = connections.require_m3().cancel_order(orno)
    except M3TransactionError as exc:
        return dead_letter(connections, amazon, f"order {amazon.order_id}: M3 refused to delete order {orno}: {exc}")
    return OrderResult(amazon.order_id, "cancelled", f"{reason} ({deleted} lines)", orno, amazon.last_update)


def buyer_key_salt(home: Path) -> str:
    """The install's salt of buyer keys, made on first use. Losing it re-keys every buyer (new customers)."""
    path = home / BUYER_KEY_SALT_FILE
    if not path.is_file():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def buyer_customer_in_m3(
    connections: Connections, route: MarketplaceRoute, key: str, buyer: BuyerCustomer
) -> str | None:
    """The buyer's M3 customer: recorded under the buyer key, else found in M3 by the key's prefix in
    YREF (a run that stopped between CRS610MI/Add's answer and its record) and recorded; None if none."""
    cuno = connections.state.m3_id_for(CUSTOMER_ID_KIND, key)
    if cuno is None and buyer.reference:
        found = connections.require_m3().customers_by_reference(buyer.reference)
        cuno = found[0] if found else None  # the first one M3 numbered, should a person have added another
        if cuno is not None:
            connections.state.map_id(CUSTOMER_ID_KIND, key, cuno, route.marketplace.code)
    return cuno


def create_buyer_customer(connections: Connections, route: MarketplaceRoute, key: str, buyer: BuyerCustomer) -> str:
    """The buyer's new M3 customer (CRS610MI/Add from the template), recorded under the buyer key."""
    cuno = connections.require_m3().create_customer(CustomerRequest(**buyer.request_fields()))
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
