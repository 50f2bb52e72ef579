"""The seeded marketplace world: catalog, orders, refunds, settlements, listings, anomalies.

``build_world(seed, ...)`` is a pure function of its arguments: the same arguments give
byte-identical settlement files and identical order JSON.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sandbox.catalog import MARKETPLACES, CatalogItem, build_catalog

from .formats import format_amount
from .orders import AmazonOrder, OrderLine, generate_orders
from .records import InjectedAnomaly, M3OrderLine, SettlementDocument
from .settlements import CURRENT_RESERVE, SETTLEMENT_DAYS, AnomalyPlan, Refund, SettlementBuilder, Window

SELLER_ID = "A2SANDBOXSELLER"
# Time of day each marketplace account closes its settlements (real files show fixed clocks).
_SETTLEMENT_CLOCK = {"US": time(14, 28, 38), "DE": time(8, 59, 52), "FR": time(9, 1, 17), "UK": time(8, 59, 45)}
_REFUND_PCT = 9
_SHIP_LEVEL = {"AFN": ("Expedited", "Expedited"), "MFN": ("Std Dom", "Standard")}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(currency: str, minor: int) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": format_amount(minor, False)}


def _to_decimal(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


@dataclass(frozen=True)
class World:
    seed: int
    start: date
    days: int
    catalog: tuple[CatalogItem, ...]
    orders: tuple[AmazonOrder, ...]
    refunds: tuple[Refund, ...]
    documents: tuple[SettlementDocument, ...]
    anomalies: list[InjectedAnomaly] = field(default_factory=list)
    seller_id: str = SELLER_ID

    @property
    def clock(self) -> date:
        """Where the world's time stands: the day after its last day (midnight UTC)."""
        return self.start + timedelta(days=self.days)

    def settlement_documents(self) -> list[SettlementDocument]:
        return list(self.documents)

    def since(self, earlier: World) -> World:
        """What this world (``earlier`` moved on) added: its new settlements and refunds, and the
        orders that are new or settled or refunded in them."""
        known_documents = {d.settlement_id for d in earlier.documents}
        documents = tuple(d for d in self.documents if d.settlement_id not in known_documents)
        known_refunds = {r.adjustment_id for r in earlier.refunds}
        refunds = tuple(r for r in self.refunds if r.adjustment_id not in known_refunds)
        known_orders = {o.order_id for o in earlier.orders}
        in_news = {r.order_id for r in refunds} | {
            row.order_id for d in documents for row in d.rows if row.transaction_type == "Order"
        }
        orders = tuple(o for o in self.orders if o.order_id not in known_orders or o.order_id in in_news)
        return replace(self, orders=orders, refunds=refunds, documents=documents, anomalies=[])

    def orders_v0(self) -> list[tuple[dict, list[dict]]]:
        """Every Amazon order as (Orders v0 ``Order``, [``OrderItem``, ...])."""
        items = {i.sku: i for i in self.catalog}
        return [
            (_order_json(order), [_item_json(order, line, items[line.sku]) for line in order.lines])
            for order in self.orders
        ]

    def m3_credit_notes(self) -> list[M3CreditNote]:
        """Per refund: the credit note M3 makes when order sync books the return, amounts as the
        settlement refunds them (a duplicated refund is still credited once)."""
        by_id = {o.order_id: o for o in self.orders}
        notes = []
        for refund in self.refunds:
            order = by_id[refund.order_id]
            mp = MARKETPLACES[order.market]
            line = next(li for li in order.lines if li.order_item_id == refund.order_item_id)
            net = line.principal + line.shipping - line.promotion - line.shipping_promotion
            tax = 0 if mp.facilitator_tax else line.tax + line.shipping_tax - line.tax_discount
            notes.append(
                M3CreditNote(
                    order.order_id, refund.adjustment_id, mp.currency, _to_decimal(net), _to_decimal(tax), refund.posted
                )
            )
        return notes

    def listings(self) -> list[dict]:
        rng = random.Random(f"listings-{self.seed}")
        result = []
        for item in self.catalog:
            for market in item.marketplaces:
                mp = MARKETPLACES[market]
                result.append(
                    {
                        "sku": item.sku,
                        "marketplace_id": mp.marketplace_id,
                        "asin": item.asin,
                        "product_type": item.product_type,
                        "title": item.name,
                        "price": format_amount(item.price(market), False),
                        "currency": mp.currency,
                        "quantity": rng.randint(0, 250),
                    }
                )
        return result

    def m3_order_lines(self) -> list[M3OrderLine]:
        """Per shipped Amazon order line: what M3 would invoice (net amounts, tax separately)."""
        items = {i.sku: i for i in self.catalog}
        lines = []
        for order in self.orders:
            if order.shipped is None:
                continue
            mp = MARKETPLACES[order.market]
            for line in order.lines:
                lines.append(
                    M3OrderLine(
                        amazon_order_id=order.order_id,
                        order_item_id=line.order_item_id,
                        marketplace_id=mp.marketplace_id,
                        currency=mp.currency,
                        fulfillment_channel=order.channel,
                        sku=line.sku,
                        itno=items[line.sku].itno,
                        quantity=line.quantity,
                        unit_price=_to_decimal(line.unit_price),
                        line_amount=_to_decimal(line.principal),
                        tax=_to_decimal(line.tax),
                        shipping=_to_decimal(line.shipping),
                        shipping_tax=_to_decimal(line.shipping_tax),
                        promotion=_to_decimal(line.promotion + line.shipping_promotion),
                        shipped=order.shipped,
                        tax_collected_by_amazon=mp.facilitator_tax,
                        item_promotion=_to_decimal(line.promotion),
                        shipping_promotion=_to_decimal(line.shipping_promotion),
                    )
                )
        return lines


@dataclass(frozen=True)
class M3CreditNote:
    """What M3 would credit for one refund of a settled order (a return order's credit note)."""

    amazon_order_id: str
    adjustment_id: str  # Amazon's refund id: one credit note per refund
    currency: str
    net: Decimal  # refunded principal and shipping less their promotions
    tax: Decimal  # the VAT refunded; 0 where Amazon collects the tax as marketplace facilitator
    refunded: datetime


def _order_total(order: AmazonOrder) -> int:
    return sum(
        li.principal + li.tax + li.shipping + li.shipping_tax - li.promotion - li.shipping_promotion - li.tax_discount
        for li in order.lines
    )


def _order_json(order: AmazonOrder) -> dict:
    mp = MARKETPLACES[order.market]
    quantity = sum(li.quantity for li in order.lines)
    shipped = order.status == "Shipped"
    level, category = _SHIP_LEVEL[order.channel]
    body: dict = {
        "AmazonOrderId": order.order_id,
        "PurchaseDate": _iso(order.purchased),
        "LastUpdateDate": _iso(order.updated),
        "OrderStatus": order.status,
        "FulfillmentChannel": order.channel,
        "SalesChannel": mp.name,
        "ShipServiceLevel": level,
        "NumberOfItemsShipped": quantity if shipped else 0,
        "NumberOfItemsUnshipped": 0 if shipped or order.status == "Canceled" else quantity,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": mp.marketplace_id,
        "ShipmentServiceLevelCategory": category,
        "OrderType": "StandardOrder",
        "EarliestShipDate": _iso(order.purchased + timedelta(hours=2)),
        "LatestShipDate": _iso(order.purchased + timedelta(days=2)),
        "IsBusinessOrder": False,
        "IsPrime": order.is_prime,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "BuyerInfo": {"BuyerEmail": order.buyer.email, "BuyerName": order.buyer.name},
    }
    if order.status != "Pending":
        body["OrderTotal"] = _money(mp.currency, _order_total(order))
    if order.status in ("Unshipped", "PartiallyShipped", "Shipped"):
        buyer = order.buyer
        address = {
            "Name": buyer.name,
            "AddressLine1": buyer.street,
            "City": buyer.city,
            "PostalCode": buyer.postal_code,
            "CountryCode": buyer.country,
            "Phone": buyer.phone,
            "AddressType": "Residential",
        }
        if buyer.state:
            address["StateOrRegion"] = buyer.state
        body["ShippingAddress"] = address
    return body


def _item_json(order: AmazonOrder, line: OrderLine, item: CatalogItem) -> dict:
    currency = order.currency
    body: dict = {
        "ASIN": item.asin,
        "SellerSKU": line.sku,
        "OrderItemId": line.order_item_id,
        "Title": item.name,
        "QuantityOrdered": line.quantity,
        "QuantityShipped": line.quantity if order.status == "Shipped" else 0,
        "ProductInfo": {"NumberOfItems": "1"},
        "IsGift": "false",
        "ConditionId": "New",
        "ConditionSubtypeId": "New",
        "IsTransparency": False,
        "SerialNumberRequired": False,
    }
    if order.status == "Pending":  # Amazon returns no pricing until the order leaves Pending
        return body
    body.update(
        {
            "ItemPrice": _money(currency, line.principal),
            "ItemTax": _money(currency, line.tax),
            "ShippingPrice": _money(currency, line.shipping),
            "ShippingTax": _money(currency, line.shipping_tax),
            "ShippingDiscount": _money(currency, line.shipping_promotion),
            "ShippingDiscountTax": _money(currency, line.shipping_promotion_tax),
            "PromotionDiscount": _money(currency, line.promotion),
            "PromotionDiscountTax": _money(currency, line.promotion_tax),
        }
    )
    if line.promotion_id:
        body["PromotionIds"] = [line.promotion_id]
    return body


def _window(start: date, market: str, period: int) -> Window:
    """A marketplace's ``period``-th 14-day window; the first opens the day before ``start``."""
    opening = datetime.combine(start - timedelta(days=1), _SETTLEMENT_CLOCK[market], tzinfo=UTC)
    begin = opening + timedelta(days=SETTLEMENT_DAYS * period, seconds=period)
    return Window(market, period, begin, begin + timedelta(days=SETTLEMENT_DAYS, seconds=1))


def _windows(start: date, days: int) -> list[Window]:
    """Per marketplace, back-to-back 14-day windows; the first opens the day before ``start``."""
    periods = max(1, days // SETTLEMENT_DAYS)
    return [_window(start, market, period) for market in _SETTLEMENT_CLOCK for period in range(periods)]


def _settled(order: AmazonOrder, windows: list[Window]) -> bool:
    return order.shipped is not None and any(w.market == order.market and w.contains(order.shipped) for w in windows)


def _refunds(seed: int, orders: list[AmazonOrder], windows: list[Window]) -> list[Refund]:
    rng = random.Random(f"refunds-{seed}")
    refunds = []
    for order in orders:
        if not _settled(order, windows) or rng.randrange(100) >= _REFUND_PCT:
            continue
        assert order.shipped is not None
        line = rng.choice(order.lines)
        posted = order.shipped + timedelta(days=rng.randint(2, 20), seconds=rng.randrange(86400))
        adjustment = "amzn1:crow:" + "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(22)
        )
        refund = Refund(order.order_id, line.order_item_id, posted, adjustment, str(rng.randrange(10**18, 10**19)))
        if any(w.market == order.market and w.contains(posted) for w in windows):
            refunds.append(refund)
    return refunds


def _anomaly_plan(
    seed: int, orders: list[AmazonOrder], refunds: list[Refund], windows: list[Window], price_errors: set[str]
) -> AnomalyPlan:
    rng = random.Random(f"anomalies-{seed}")
    settled = [o for o in orders if _settled(o, windows) and o.order_id not in price_errors]
    afn_items = [li.order_item_id for o in settled if o.channel == "AFN" for li in o.lines]
    fba = set(rng.sample(afn_items, min(3, len(afn_items))))
    others = [li.order_item_id for o in settled for li in o.lines if li.order_item_id not in fba]
    commission = set(rng.sample(others, min(3, len(others))))
    duplicates = {r.order_item_id for r in rng.sample(refunds, min(2, len(refunds)))}
    periods = max(w.period for w in windows)
    return AnomalyPlan(
        price_error_orders=frozenset(price_errors),
        fba_overcharge_items=frozenset(fba),
        commission_overcharge_items=frozenset(commission),
        duplicate_refund_items=frozenset(duplicates),
        missing_reimbursement=frozenset({("US", min(1, periods))}),
    )


def _settlement_ids(seed: int, windows: list[Window], after: int | None = None) -> dict[tuple[str, int], str]:
    """Increasing ids in the order the windows close; ``after``: the last id already given."""
    rng = random.Random(f"settlement-ids-{seed}")
    next_id = rng.randrange(10**10, 5 * 10**10)
    if after is not None:
        next_id = after
    ids = {}
    for window in sorted(windows, key=lambda w: (w.end, w.market)):
        next_id += rng.randrange(1000, 50000)
        ids[(window.market, window.period)] = str(next_id)
    return ids


def build_world(
    seed: int = 0, *, orders: int = 400, start: date = date(2026, 9, 1), days: int = 56, anomalies: bool = False
) -> World:
    """The deterministic sandbox world for these arguments."""
    if orders < 0 or days < 1:
        raise ValueError(f"build_world: orders must be >= 0 and days >= 1 (got orders={orders}, days={days})")
    catalog = build_catalog(seed)
    amazon_orders, price_errors = generate_orders(
        seed, catalog, orders, start, days, price_error_orders=3 if anomalies else 0
    )
    windows = _windows(start, days)
    refunds = _refunds(seed, amazon_orders, windows)
    plan = _anomaly_plan(seed, amazon_orders, refunds, windows, price_errors) if anomalies else AnomalyPlan()
    negative = ("FR", min(1, max(w.period for w in windows)))
    builder = SettlementBuilder(seed, catalog, amazon_orders, refunds, windows, plan, negative)
    documents = builder.build(_settlement_ids(seed, windows))
    return World(
        seed=seed,
        start=start,
        days=days,
        catalog=tuple(catalog),
        orders=tuple(amazon_orders),
        refunds=tuple(refunds),
        documents=tuple(documents),
        anomalies=list(builder.anomalies),
    )


def advance_world(world: World, days: int, orders: int) -> World:
    """``world`` moved ``days`` on: ``orders`` more Amazon orders purchased in those days, and the
    settlement of every marketplace window that closes by the new end (its 14-day cycle goes on:
    orders shipped and refunds posted in the window, the previous reserve carried over, ids
    increasing). What ``world`` holds stays as it was; the new part is a pure function of the
    world and the arguments, with no injected anomalies."""
    if orders < 0 or days < 1:
        raise ValueError(f"advance_world: orders must be >= 0 and days >= 1 (got orders={orders}, days={days})")
    first = world.clock
    # One random stream per stretch of time: the same advances of the same world give the same world.
    stretch_seed = int(hashlib.sha256(f"{world.seed}/{first.isoformat()}/{days}".encode()).hexdigest()[:15], 16)
    catalog = list(world.catalog)
    known = {o.order_id for o in world.orders}
    new_orders, _ = generate_orders(stretch_seed, catalog, orders, first, days)
    all_orders = [*world.orders, *(o for o in new_orders if o.order_id not in known)]
    end = datetime.combine(first + timedelta(days=days), time(0), tzinfo=UTC)
    windows: list[Window] = []
    reserves: dict[str, int] = {}
    for market in _SETTLEMENT_CLOCK:
        settled = sorted(
            (d for d in world.documents if d.marketplace_id == MARKETPLACES[market].marketplace_id),
            key=lambda d: d.end,
        )
        period = len(settled)
        while (window := _window(world.start, market, period)).end <= end:
            windows.append(window)
            period += 1
        if settled:
            reserves[market] = -sum(r.amount for r in settled[-1].rows if r.amount_description == CURRENT_RESERVE)
    refunds = _refunds(stretch_seed, all_orders, windows)
    builder = SettlementBuilder(stretch_seed, catalog, all_orders, refunds, windows, AnomalyPlan(), None)
    last_id = max((int(d.settlement_id) for d in world.documents), default=None)
    documents = builder.build(_settlement_ids(stretch_seed, windows, after=last_id), reserves) if windows else []
    return replace(
        world,
        days=world.days + days,
        orders=tuple(all_orders),
        refunds=(*world.refunds, *refunds),
        documents=(*world.documents, *documents),
    )
