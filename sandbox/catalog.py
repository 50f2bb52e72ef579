"""The seeded product catalog both emulators share.

One deterministic list for a seed: the SP-API sandbox lists these SKUs, the M3 sandbox holds
the matching item numbers (ITNO) and stock, and the settlement generator prices and fees
them. Prices are integer minor units per marketplace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Marketplace:
    code: str  # short code used inside the project: US, DE, FR, UK
    marketplace_id: str  # Amazon's id
    name: str  # marketplace-name as settlement files spell it
    currency: str
    region: str  # SP-API region: na / eu
    aws_region: str
    date_style: str  # "iso" (YYYY-MM-DD) or "eu" (DD.MM.YYYY)
    decimal_comma: bool
    vat_rate_pct: int  # 0 where Amazon collects marketplace-facilitator sales tax instead
    facilitator_tax: bool


MARKETPLACES: dict[str, Marketplace] = {
    "US": Marketplace("US", "ATVPDKIKX0DER", "Amazon.com", "USD", "na", "us-east-1", "iso", False, 0, True),
    "DE": Marketplace("DE", "A1PA6795UKMFR9", "Amazon.de", "EUR", "eu", "eu-west-1", "eu", True, 19, False),
    "FR": Marketplace("FR", "A13V1IB3VIYZZH", "Amazon.fr", "EUR", "eu", "eu-west-1", "eu", True, 20, False),
    "UK": Marketplace("UK", "A1F83G8C2ARO7P", "Amazon.co.uk", "GBP", "eu", "eu-west-1", "eu", False, 20, False),
}

MARKETPLACE_BY_ID = {m.marketplace_id: m for m in MARKETPLACES.values()}

# Category -> (Amazon productType for the Listings API, referral fee in basis points).
CATEGORIES: dict[str, tuple[str, int]] = {
    "Home": ("HOME", 1500),
    "Kitchen": ("KITCHEN", 1500),
    "Sports": ("SPORTING_GOODS", 1500),
    "Toys": ("TOY", 1500),
    "Electronics": ("CONSUMER_ELECTRONICS", 800),
    "Beauty": ("BEAUTY", 1200),
}

# Size tier -> FBA fee per unit in minor units, per currency.
FBA_FEES: dict[str, dict[str, int]] = {
    "small_standard": {"USD": 322, "EUR": 285, "GBP": 256},
    "large_standard": {"USD": 584, "EUR": 431, "GBP": 392},
    "small_oversize": {"USD": 1011, "EUR": 812, "GBP": 744},
}

_NOUNS = {
    "Home": ["Cushion Cover", "Throw Blanket", "Wall Clock", "Photo Frame", "Door Mat"],
    "Kitchen": ["Chef Knife", "Cutting Board", "Coffee Grinder", "Spice Rack", "Tea Kettle"],
    "Sports": ["Yoga Mat", "Resistance Band", "Water Bottle", "Jump Rope", "Foam Roller"],
    "Toys": ["Building Blocks", "Puzzle 500", "Toy Car", "Plush Bear", "Kite"],
    "Electronics": ["USB-C Cable", "Power Bank", "Bluetooth Speaker", "Phone Stand", "Earbuds"],
    "Beauty": ["Hair Brush", "Face Roller", "Nail Kit", "Makeup Bag", "Bath Salts"],
}
_ADJECTIVES = ["Classic", "Pro", "Eco", "Deluxe", "Compact", "Premium", "Basic", "Travel"]

# Per-marketplace price relative to the USD list price, in percent.
_PRICE_FACTOR = {"US": 100, "DE": 95, "FR": 97, "UK": 82}


@dataclass(frozen=True)
class CatalogItem:
    sku: str  # seller SKU on Amazon
    itno: str  # M3 item number (MITMAS ITNO, A15)
    asin: str
    name: str  # item name (M3 ITDS, A30)
    category: str
    product_type: str  # Listings API productType
    size_tier: str
    weight_g: int
    referral_bp: int  # referral commission rate in basis points
    unit_cost: int  # standard cost in minor units of USD
    prices: dict[str, int] = field(default_factory=dict)  # marketplace code -> price (minor units, tax incl. where VAT)
    marketplaces: tuple[str, ...] = ()  # where it is listed

    def price(self, marketplace: str) -> int:
        return self.prices[marketplace]


def build_catalog(seed: int = 0, size: int = 24) -> list[CatalogItem]:
    """Deterministic catalog of ``size`` items for ``seed``."""
    rng = random.Random(f"catalog-{seed}")
    items: list[CatalogItem] = []
    categories = list(CATEGORIES)
    for n in range(size):
        category = categories[n % len(categories)]
        noun = _NOUNS[category][(n // len(categories)) % len(_NOUNS[category])]
        adjective = rng.choice(_ADJECTIVES)
        tier = rng.choices(list(FBA_FEES), weights=[5, 4, 1])[0]
        weight = {
            "small_standard": rng.randint(80, 400),
            "large_standard": rng.randint(400, 4000),
            "small_oversize": rng.randint(4000, 20000),
        }[tier]
        usd = rng.randrange(999, 9999, 100) - 1  # x.99 price points
        listed = ("US", "DE", "FR", "UK") if n % 5 else ("US", "DE", "UK")
        prices = {m: (usd * _PRICE_FACTOR[m] // 100 // 100) * 100 + 99 for m in listed}
        number = 10001 + n
        items.append(
            CatalogItem(
                sku=f"{category[:3].upper()}-{number}",
                itno=f"A{number}",
                asin=f"B0{str(rng.randrange(10**7, 10**8))[:7]}X",  # 10 characters like a real ASIN
                name=f"{adjective} {noun}"[:30],
                category=category,
                product_type=CATEGORIES[category][0],
                size_tier=tier,
                weight_g=weight,
                referral_bp=CATEGORIES[category][1],
                unit_cost=usd * rng.randint(30, 45) // 100,
                prices=prices,
                marketplaces=listed,
            )
        )
    return items
