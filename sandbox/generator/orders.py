"""Seeded Amazon orders: who bought what, where, at which price, and what happened to it.

Price convention (all marketplaces, so Orders API and settlement agree): ``ItemPrice`` and the
settlement ``Principal`` are the line amount **net of VAT / sales tax**; ``ItemTax`` and the
settlement ``Tax`` row carry the tax. In EU marketplaces the catalog price is VAT-inclusive and
is split into net + VAT per unit, so unit price x quantity stays exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sandbox.catalog import MARKETPLACES, CatalogItem

# Share of orders per marketplace (percent).
MARKETPLACE_WEIGHTS: dict[str, int] = {"US": 50, "DE": 22, "UK": 18, "FR": 10}

# Amazon order-id prefixes seen per region (3-7-7 format).
_ORDER_PREFIXES = {
    "US": ("111", "112", "113", "114"),
    "DE": ("302", "303", "304", "028"),
    "FR": ("402", "403", "171", "404"),
    "UK": ("202", "203", "204", "026"),
}

# US sales tax by state in basis points (collected and withheld by Amazon as facilitator).
_US_STATES: dict[str, tuple[int, tuple[str, str]]] = {
    "CA": (725, ("Los Angeles", "90012")),
    "NY": (888, ("New York", "10001")),
    "TX": (625, ("Austin", "78701")),
    "WA": (650, ("Seattle", "98101")),
    "FL": (600, ("Miami", "33101")),
    "OR": (0, ("Portland", "97201")),
    "IL": (625, ("Chicago", "60601")),
    "PA": (600, ("Philadelphia", "19103")),
}
_CITIES = {
    "DE": (("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095"), ("Köln", "50667")),
    "FR": (("Paris", "75001"), ("Lyon", "69001"), ("Marseille", "13001"), ("Lille", "59000")),
    "UK": (("London", "EC1A 1BB"), ("Manchester", "M1 1AE"), ("Leeds", "LS1 1UR"), ("Bristol", "BS1 4DJ")),
}
_COUNTRY = {"US": "US", "DE": "DE", "FR": "FR", "UK": "GB"}
_FIRST = ("Alex", "Sam", "Maria", "Jonas", "Claire", "Emma", "Lukas", "Olivia", "Noah", "Léa", "Oliver", "Mia")
_LAST = ("Smith", "Müller", "Martin", "Jones", "Schmidt", "Bernard", "Brown", "Dubois", "Taylor", "Weber")
_STREETS = ("Main Street", "Hauptstraße", "Rue de la Paix", "High Street", "Oak Avenue", "Bahnhofstraße")

# Shipping charged on merchant-fulfilled lines, gross minor units per currency.
_MFN_SHIPPING = {"USD": 499, "EUR": 399, "GBP": 349}
# Shipping charged on some FBA lines and then waived by a free-shipping promotion (as in real files).
_AFN_SHIPPING = {"USD": 299, "EUR": 299, "GBP": 249}
FREE_SHIPPING_PROMOTION = "Amazon PLCC Free-Financing Universal Merchant Free Rush Shipping"


def ratio(amount: int, numerator: int, denominator: int) -> int:
    """amount * numerator / denominator rounded half away from zero, in integers."""
    value = abs(amount) * numerator
    rounded = (2 * value + denominator) // (2 * denominator)
    return rounded if amount >= 0 else -rounded


@dataclass(frozen=True)
class Buyer:
    name: str
    email: str
    street: str
    city: str
    postal_code: str
    state: str
    country: str
    phone: str

    def __repr__(self) -> str:  # buyer personal data stays out of logs and reprs
        return "Buyer(<redacted>)"


@dataclass(frozen=True)
class OrderLine:
    order_item_id: str
    sku: str
    quantity: int
    unit_price: int  # net minor units per unit
    unit_tax: int
    shipping: int  # line total, net
    shipping_tax: int
    promotion: int  # item discount on the line, positive
    promotion_id: str
    shipping_promotion: int  # shipping discount, positive (free-shipping promotion)
    # VAT marketplaces: the VAT on the discounts, refunded to the buyer as Promotion/TaxDiscount
    # (sp-api.md §1.4), so the VAT charged is that of the discounted price, as M3 invoices it.
    promotion_tax: int = 0
    shipping_promotion_tax: int = 0

    @property
    def tax_discount(self) -> int:
        return self.promotion_tax + self.shipping_promotion_tax

    @property
    def principal(self) -> int:
        return self.unit_price * self.quantity

    @property
    def tax(self) -> int:
        return self.unit_tax * self.quantity


@dataclass(frozen=True)
class AmazonOrder:
    order_id: str
    market: str  # marketplace code: US / DE / FR / UK
    channel: str  # AFN / MFN
    purchased: datetime
    status: str  # Shipped / Canceled / Unshipped / Pending
    updated: datetime
    shipped: datetime | None
    shipment_id: str
    buyer: Buyer
    lines: tuple[OrderLine, ...]
    is_prime: bool

    @property
    def currency(self) -> str:
        return MARKETPLACES[self.market].currency


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _token(
    rng: random.Random, n: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _buyer(rng: random.Random, market: str) -> Buyer:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    if market == "US":
        state = rng.choice(list(_US_STATES))
        city, postal = _US_STATES[state][1]
        phone = f"+1 {_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 4)}"
    else:
        state = ""
        city, postal = rng.choice(_CITIES[market])
        phone = f"+{ {'DE': 49, 'FR': 33, 'UK': 44}[market] } {_digits(rng, 10)}"
    return Buyer(
        name=f"{first} {last}",
        email=f"{_token(rng, 14, 'abcdefghijklmnopqrstuvwxyz0123456789')}@marketplace.amazon.com",
        street=f"{rng.randint(1, 250)} {rng.choice(_STREETS)}",
        city=city,
        postal_code=postal,
        state=state,
        country=_COUNTRY[market],
        phone=phone,
    )


def split_gross(gross: int, vat_pct: int) -> tuple[int, int]:
    """VAT-inclusive amount -> (net, vat) with net + vat == gross."""
    net = ratio(gross, 100, 100 + vat_pct)
    return net, gross - net


def _line(
    rng: random.Random, market: str, channel: str, item: CatalogItem, buyer: Buyer, price_factor_pct: int
) -> OrderLine:
    mp = MARKETPLACES[market]
    quantity = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
    listed = ratio(item.price(market), price_factor_pct, 100)
    if mp.vat_rate_pct:
        unit_price, unit_tax = split_gross(listed, mp.vat_rate_pct)
    else:
        unit_price, unit_tax = listed, ratio(listed, _US_STATES[buyer.state][0], 10000)
    shipping = shipping_tax = shipping_promotion = 0
    if channel == "MFN":
        gross_shipping = _MFN_SHIPPING[mp.currency]
    elif rng.random() < 0.25:
        gross_shipping = _AFN_SHIPPING[mp.currency]
    else:
        gross_shipping = 0
    if gross_shipping:
        if mp.vat_rate_pct:
            shipping, shipping_tax = split_gross(gross_shipping, mp.vat_rate_pct)
        else:
            shipping, shipping_tax = gross_shipping, ratio(gross_shipping, _US_STATES[buyer.state][0], 10000)
        if channel == "AFN" and rng.random() < 0.5:
            shipping_promotion = shipping  # free-shipping promotion waives the charge
    promotion, promotion_id = 0, ""
    if rng.random() < 0.12:
        promotion = ratio(unit_price * quantity, 10, 100)
        promotion_id = f"SAVE10-{item.category.upper()}"
    elif shipping_promotion:
        promotion_id = FREE_SHIPPING_PROMOTION
    promotion_tax = ratio(promotion, mp.vat_rate_pct, 100) if mp.vat_rate_pct else 0
    shipping_promotion_tax = shipping_tax if mp.vat_rate_pct and shipping_promotion else 0
    return OrderLine(
        order_item_id=_digits(rng, 14),
        sku=item.sku,
        quantity=quantity,
        unit_price=unit_price,
        unit_tax=unit_tax,
        shipping=shipping,
        shipping_tax=shipping_tax,
        promotion=promotion,
        promotion_id=promotion_id,
        shipping_promotion=shipping_promotion,
        promotion_tax=promotion_tax,
        shipping_promotion_tax=shipping_promotion_tax,
    )


def generate_orders(
    seed: int, catalog: list[CatalogItem], count: int, start: date, days: int, price_error_orders: int = 0
) -> tuple[list[AmazonOrder], set[str]]:
    """``count`` orders purchased in [start, start + days); returns them and the ids of orders
    whose price was deliberately mis-set (``price_error_orders`` of them, anomaly ground truth)."""
    rng = random.Random(f"orders-{seed}")
    begin = datetime.combine(start, time(0), tzinfo=UTC)
    world_end = begin + timedelta(days=days)
    markets = list(MARKETPLACE_WEIGHTS)
    orders: list[AmazonOrder] = []
    used_ids: set[str] = set()
    price_errors: set[str] = set()
    for _ in range(count):
        market = rng.choices(markets, weights=[MARKETPLACE_WEIGHTS[m] for m in markets])[0]
        purchased = begin + timedelta(seconds=rng.randrange(days * 86400))
        channel = "AFN" if rng.random() < 0.7 else "MFN"
        buyer = _buyer(rng, market)
        listed = [i for i in catalog if market in i.marketplaces]
        n_lines = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
        items = rng.sample(listed, n_lines)
        order_id = f"{rng.choice(_ORDER_PREFIXES[market])}-{_digits(rng, 7)}-{_digits(rng, 7)}"
        while order_id in used_ids:
            order_id = f"{rng.choice(_ORDER_PREFIXES[market])}-{_digits(rng, 7)}-{_digits(rng, 7)}"
        used_ids.add(order_id)
        # A price error is a wrongly listed price: the order itself carries it (x0.1 or x3).
        # Both draws happen whether or not errors are wanted, so a world with anomalies has the
        # same orders as the clean one apart from the falsified prices.
        error_roll, error_factor = rng.random(), rng.choice((10, 300))
        factor = 100
        if len(price_errors) < price_error_orders and error_roll < 0.1:
            factor = error_factor
            price_errors.add(order_id)
        lines = tuple(_line(rng, market, channel, item, buyer, factor) for item in items)
        ship_delay = timedelta(seconds=rng.randrange(3600, 36 * 3600 if channel == "AFN" else 72 * 3600))
        roll = rng.random()
        shipped: datetime | None = None
        if roll < 0.05:
            status, updated = "Canceled", purchased + timedelta(seconds=rng.randrange(600, 7200))
        elif purchased + ship_delay > world_end:
            status = "Pending" if purchased + timedelta(minutes=30) > world_end else "Unshipped"
            updated = purchased
        else:
            status, shipped = "Shipped", purchased + ship_delay
            updated = shipped
        orders.append(
            AmazonOrder(
                order_id=order_id,
                market=market,
                channel=channel,
                purchased=purchased,
                status=status,
                updated=updated,
                shipped=shipped,
                shipment_id=_token(rng, 9),
                buyer=buyer,
                lines=lines,
                is_prime=channel == "AFN",
            )
        )
    orders.sort(key=lambda o: (o.purchased, o.order_id))
    return orders, price_errors
