"""Small settlement files with the row shapes and vocabulary real sellers' files have.

Opt-in and separate from ``build_world`` (whose bytes the demo and the tests pin): one small,
balanced V2 file per variant of ``settlement-vocabulary.md``::

    from sandbox.generator.variants import VARIANTS, real_world_variants, variant_settlement
    for name, data in real_world_variants(seed=0):      # [(variant name, file bytes), ...]
        ...
    doc = variant_settlement("jp", seed=0)               # a SettlementDocument (text + rows)

Each file is a pure function of (variant, seed). Amounts are integer minor units of the
settlement currency (JPY has none) and total-amount is their exact sum. Transaction types of
the 2024+ vocabulary are spelled as real files spell them in that layout (upper case with
underscores, ``CHARGEBACK_REFUND``); classic rows keep the classic spelling (``Order``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox.catalog import FBA_FEES, MARKETPLACES, CatalogItem, Marketplace, build_catalog

from .formats import render_v2
from .orders import ratio
from .records import SettlementDocument, SettlementRow

# Marketplaces the default world does not sell in (ids as Amazon documents them).
EXTRA_MARKETPLACES: dict[str, Marketplace] = {
    "CA": Marketplace("CA", "A2EUQ1WTGCTBG2", "Amazon.ca", "CAD", "na", "us-east-1", "iso", False, 13, False),
    "AU": Marketplace("AU", "A39IBJ37TRP1C6", "Amazon.com.au", "AUD", "fe", "us-west-2", "iso", False, 10, False),
    "JP": Marketplace("JP", "A1VC38T7YXB528", "Amazon.co.jp", "JPY", "fe", "us-west-2", "jp", False, 10, False),
    "TR": Marketplace("TR", "A33AVAJ2PDY3EV", "Amazon.com.tr", "TRY", "eu", "eu-west-1", "iso", False, 20, False),
}
_DECIMALS = {"JPY": 0}
# Prices and FBA fees outside the catalog's markets: percent of the USD minor-unit amount.
_PRICE_FACTOR_PCT = {"CA": 135, "AU": 150, "JP": 150, "TR": 3300}
_FEE_FACTOR_PCT = {"CA": 135, "AU": 150, "JP": 100, "TR": 3300}
# Amazon order-id prefixes (3-7-7) per marketplace.
_ORDER_PREFIXES = {
    "US": (111, 112, 113, 114),
    "CA": (701, 702),
    "AU": (249, 250),
    "JP": (249, 250, 503),
    "TR": (405, 406),
    "DE": (302, 303, 304),
    "UK": (202, 203, 204),
}
# Multi-channel fulfilment costs more than fulfilling an Amazon order of the same item.
MCF_FEE_PCT = 200
_START = datetime(2024, 10, 9, 14, 28, 38, tzinfo=UTC)  # the clock of a real US file
_DAYS = 14
LIQUIDATIONS = "Liquidations"


def _market(code: str) -> Marketplace:
    return MARKETPLACES.get(code) or EXTRA_MARKETPLACES[code]


def _decimals(market: Marketplace) -> int:
    return _DECIMALS.get(market.currency, 2)


@dataclass(frozen=True)
class _Context:
    """What a variant's rows are drawn from: its marketplace, window, catalog and random stream."""

    market: Marketplace
    catalog: tuple[CatalogItem, ...]
    rng: random.Random

    def moment(self) -> datetime:
        return _START + timedelta(seconds=self.rng.randrange(3600, _DAYS * 86400 - 3600))

    def item(self) -> CatalogItem:
        return self.rng.choice(self.catalog)

    def price(self, item: CatalogItem) -> int:
        code = self.market.code
        return item.price(code) if code in item.prices else ratio(item.price("US"), _PRICE_FACTOR_PCT[code], 100)

    def fba_fee(self, item: CatalogItem) -> int:
        fees = FBA_FEES[item.size_tier]
        if self.market.currency in fees:
            return fees[self.market.currency]
        return ratio(fees["USD"], _FEE_FACTOR_PCT[self.market.code], 100)

    def order_id(self) -> str:
        prefix = self.rng.choice(_ORDER_PREFIXES[self.market.code])
        return f"{prefix}-{self.digits(7)}-{self.digits(7)}"

    def digits(self, n: int) -> str:
        return str(self.rng.randrange(10 ** (n - 1), 10**n))


def _row(
    transaction_type: str, amount_type: str, description: str, amount: int, posted: datetime, **extra: object
) -> SettlementRow:
    return SettlementRow(
        transaction_type=transaction_type,
        amount_type=amount_type,
        amount_description=description,
        amount=amount,
        posted=posted,
        **extra,
    )  # type: ignore[arg-type]


def _item_rows(
    ctx: _Context,
    transaction_type: str,
    parts: list[tuple[str, str, int]],
    *,
    order_id: str | None = None,
    marketplace_name: str | None = None,
    sku: str | None = None,
    quantity: int | None = None,
    adjustment: bool = False,
    posted: datetime | None = None,
    **extra: object,
) -> list[SettlementRow]:
    """Rows of one order item event sharing its ids, one per (amount-type, description, amount);
    zero amounts are left out except the Principal (MCF orders carry ``Principal 0.00``)."""
    posted = posted or ctx.moment()
    name = ctx.market.name if marketplace_name is None else marketplace_name
    common = dict(
        order_id=order_id or ctx.order_id(),
        marketplace_name=name,
        order_item_code=ctx.digits(14),
        sku=sku or ctx.item().sku,
        quantity=quantity,
        fulfillment_id="AFN",
    )
    common["merchant_order_id"] = common["order_id"]
    if adjustment:
        common["adjustment_id"] = ctx.digits(14)
        common["merchant_adjustment_item_id"] = ctx.digits(10)
    common.update(extra)
    return [
        _row(transaction_type, kind, description, amount, posted, **common)  # type: ignore[arg-type]
        for kind, description, amount in parts
        if amount or description == "Principal"
    ]


def _sale(
    ctx: _Context,
    *,
    item: CatalogItem | None = None,
    quantity: int = 1,
    extra_parts: tuple[tuple[str, str, int], ...] = (),
) -> list[SettlementRow]:
    """An ordinary FBA order line: price, tax, commission and FBA fee of the catalog item."""
    item = item or ctx.item()
    principal = ctx.price(item) * quantity
    tax = ratio(principal, ctx.market.vat_rate_pct, 100)
    parts = [
        ("ItemPrice", "Principal", principal),
        ("ItemPrice", "Tax", tax),
        ("ItemFees", "FBAPerUnitFulfillmentFee", -ctx.fba_fee(item) * quantity),
        ("ItemFees", "Commission", -ratio(principal + tax, item.referral_bp, 10000)),
        *extra_parts,
    ]
    return _item_rows(ctx, "Order", parts, sku=item.sku, quantity=quantity)


def _advertising(ctx: _Context) -> SettlementRow:
    return _row(
        "ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -ctx.rng.randrange(1500, 9000), ctx.moment()
    )


# --- the variants --------------------------------------------------------------------------------


def _liquidations(ctx: _Context) -> list[SettlementRow]:
    rows = _sale(ctx)
    for _ in range(2):
        item, quantity = ctx.item(), ctx.rng.randint(5, 40)
        proceeds = ratio(ctx.price(item) * quantity, 10, 100)  # liquidators pay about a tenth
        rows += _item_rows(
            ctx,
            LIQUIDATIONS,
            [("ItemPrice", "Principal", proceeds), ("ItemFees", "LiquidationsBrokerageFee", -ratio(proceeds, 15, 100))],
            order_id=ctx.digits(7),
            sku=item.sku,
            quantity=quantity,
        )
    rows += _item_rows(
        ctx,
        "LIQUIDATIONS_ADJUSTMENTS",
        [
            ("ItemPrice", "TAX", ctx.rng.randrange(50, 300)),
            ("ItemWithheldTax", "MARKETPLACEFACILITATORTAX_PRINCIPAL", -ctx.rng.randrange(50, 300)),
        ],
        order_id=ctx.digits(7),
    )
    return rows


def _account_level_only(ctx: _Context) -> list[SettlementRow]:
    """No order at all and no marketplace-name on any row (a real CA file, 5 rows)."""
    inbound = [
        _row(
            "other-transaction",
            "other-transaction",
            "FBAInboundTransportationFee",
            -ctx.rng.randrange(500, 30000),
            ctx.moment(),
            shipment_id="FBA" + ctx.digits(9),
        )
        for _ in range(2)
    ]
    return [
        _row("other-transaction", "other-transaction", "Subscription Fee", -2999, ctx.moment()),
        *inbound,
        _row(
            "other-transaction", "other-transaction", "Successful charge", ctx.rng.randrange(1000, 5000), ctx.moment()
        ),
        _advertising(ctx),
    ]


def _plain_market(ctx: _Context) -> list[SettlementRow]:
    rows = [row for _ in range(3) for row in _sale(ctx, quantity=ctx.rng.randint(1, 2))]
    return rows + [_advertising(ctx)]


def _jp(ctx: _Context) -> list[SettlementRow]:
    rows = _plain_market(ctx)
    item = ctx.item()
    points = -ratio(ctx.price(item), 1, 100)  # 1 % Amazon points on the order
    return rows + _sale(ctx, item=item, extra_parts=(("Points", "PointsGranted", points),))


def _mcf(ctx: _Context) -> list[SettlementRow]:
    """Amazon orders and MCF orders of the same SKUs: MCF rows carry Principal 0.00 and a higher fee."""
    rows: list[SettlementRow] = []
    names = (f"Non-Amazon {ctx.market.code}", "Non-Amazon", f"Non-Amazon {ctx.market.code}")
    for name in names:
        item, quantity = ctx.item(), ctx.rng.randint(1, 2)
        rows += _sale(ctx, item=item, quantity=quantity)
        shop_order = f"#{ctx.rng.randint(1000, 9999)}"
        rows += _item_rows(
            ctx,
            "Order",
            [
                ("ItemPrice", "Principal", 0),
                ("ItemFees", "FBAPerUnitFulfillmentFee", -ratio(ctx.fba_fee(item), MCF_FEE_PCT, 100) * quantity),
            ],
            order_id=f"S01-{ctx.digits(7)}-{ctx.digits(7)}",
            marketplace_name=name,
            sku=item.sku,
            quantity=quantity,
            merchant_order_id=shop_order,
            merchant_order_item_id=item.sku,
        )
    return rows


def _fee_layout_2024(ctx: _Context) -> list[SettlementRow]:
    """The amount-type names the fee; the description splits base fee, discount and tax on the fee."""
    rows = _sale(ctx)
    for transaction_type, fee_type in (
        ("AMAZONFEES", "VINE_ENROLLMENT_FEE"),
        ("FBAFEES", "FBA_INVENTORY_STORAGE_FEE"),
        ("FBAFEES", "AWD_STORAGE_FEE"),
        ("FBAFEES", "FBA_REMOVAL_ORDER_DISPOSAL_FEE"),
    ):
        base = ctx.rng.randrange(500, 20000)
        discount = ratio(base, 25, 100) if transaction_type == "AMAZONFEES" else 0
        tax = ratio(base - discount, ctx.market.vat_rate_pct, 100)
        posted = ctx.moment()
        rows += [
            _row(transaction_type, fee_type, description, amount, posted)
            for description, amount in (("BASE_FEE", -base), ("DISCOUNT_ON_FEE", discount), ("TAX_ON_FEE", -tax))
            if amount
        ]
    return rows


def _refund_like(ctx: _Context, transaction_type: str) -> list[SettlementRow]:
    """A sale and its chargeback / A-to-z refund (US: tax withheld by Amazon and given back)."""
    item = ctx.item()
    sale = _sale(ctx, item=item)
    principal = next(r.amount for r in sale if r.amount_description == "Principal")
    tax = ratio(principal, 7, 100)
    commission = ratio(principal, item.referral_bp, 10000)
    parts = [
        ("ItemPrice", "Principal", -principal),
        ("ItemPrice", "Tax", -tax),
        ("ItemFees", "Commission", commission),
        ("ItemFees", "RefundCommission", -min(ratio(commission, 20, 100), 500)),
        ("ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", tax),
    ]
    refunded = min(sale[0].posted + timedelta(days=3), _START + timedelta(days=_DAYS) - timedelta(seconds=1))
    return sale + _item_rows(
        ctx, transaction_type, parts, order_id=sale[0].order_id, sku=item.sku, adjustment=True, posted=refunded
    )


def _retrocharge(ctx: _Context) -> list[SettlementRow]:
    rows = _sale(ctx)
    for transaction_type, sign in (("ORDER_RETROCHARGE", -1), ("REFUND_RETROCHARGE", 1)):
        tax, shipping_tax = ctx.rng.randrange(20, 400), ctx.rng.randrange(5, 60)
        rows += _item_rows(
            ctx,
            transaction_type,
            [
                ("ItemPrice", "TAX", sign * tax),
                ("ItemPrice", "SHIPPINGTAX", sign * shipping_tax),
                ("ItemWithheldTax", "MARKETPLACEFACILITATORTAX_PRINCIPAL", -sign * tax),
                ("ItemWithheldTax", "MARKETPLACEFACILITATORTAX_SHIPPING", -sign * shipping_tax),
            ],
        )
    # Each retrocharge's tax and withheld tax net to zero; this one leaves a residue to adjust.
    rows += _item_rows(ctx, "ORDER_RETROCHARGE", [("ItemPrice", "TAX", -ctx.rng.randrange(10, 90))])
    return rows


def _fee_with_tax(
    ctx: _Context, transaction_type: str, amount_type: str, descriptions: tuple[str, str]
) -> list[SettlementRow]:
    """A fee and the VAT Amazon charges on it (two rows, same moment)."""
    base = ctx.rng.randrange(60, 3000)
    posted = ctx.moment()
    return [
        _row(transaction_type, amount_type, descriptions[0], -base, posted),
        _row(transaction_type, amount_type, descriptions[1], -ratio(base, ctx.market.vat_rate_pct, 100), posted),
    ]


def _coupon_fees(ctx: _Context) -> list[SettlementRow]:
    rows = _sale(ctx)
    for _ in range(2):
        rows += _fee_with_tax(ctx, "COUPONREDEMPTIONFEE", "COUPONREDEMPTIONFEE", ("BASE_FEE", "TAX_ON_FEE"))
    return rows


def _advertising_tax(ctx: _Context) -> list[SettlementRow]:
    """Advertising invoice and the GST/HST charged on it (a real CA file)."""
    rows = _sale(ctx)
    advertising = _advertising(ctx)
    tax = ratio(-advertising.amount, ctx.market.vat_rate_pct, 100)
    return rows + [advertising, _row("SERVICEFEE", "OTHERFEES", "TAXAMOUNT", -tax, advertising.posted)]


def _commingling_vat(ctx: _Context) -> list[SettlementRow]:
    rows = _sale(ctx)
    return rows + [
        _row(
            "COMMINGLING_VAT",
            "OTHER_TRANSACTION",
            "COMMINGLING_VAT",
            -ctx.rng.randrange(20, 900),
            ctx.moment(),
            marketplace_name=ctx.market.name,
        )
    ]


def _buy_shipping(ctx: _Context) -> list[SettlementRow]:
    """Merchant-fulfilled orders whose labels were bought through Amazon (and one refunded label)."""
    rows: list[SettlementRow] = []
    for description, sign in (
        ("SHIPPING_LABEL_PURCHASE", -1),
        ("SHIPPING_LABEL_PURCHASE", -1),
        ("SHIPPING_LABEL_PURCHASE_FOR_RETURN", -1),
        ("SHIPPINGSERVICESREFUND", 1),
    ):
        rows.append(
            _row(
                "OTHER_TRANSACTION",
                "OTHER_TRANSACTION",
                description,
                sign * ctx.rng.randrange(450, 1800),
                ctx.moment(),
                order_id=ctx.order_id(),
                marketplace_name=ctx.market.name,
            )
        )
    return _sale(ctx) + rows


def _single_row(
    transaction_type: str, amount_type: str, description: str, sign: int, low: int, high: int
) -> Callable[[_Context], list[SettlementRow]]:
    def build(ctx: _Context) -> list[SettlementRow]:
        return _sale(ctx) + [
            _row(
                transaction_type,
                amount_type,
                description,
                sign * ctx.rng.randrange(low, high),
                ctx.moment(),
                marketplace_name=ctx.market.name,
            )
        ]

    return build


@dataclass(frozen=True)
class Variant:
    name: str
    market: str
    build: Callable[[_Context], list[SettlementRow]]
    what: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "liquidations",
            "US",
            _liquidations,
            "Liquidations rows with 23 fields (promotion-id omitted), brokerage fee, liquidation adjustments",
        ),
        Variant(
            "account_level_only",
            "CA",
            _account_level_only,
            "only account-level rows (subscription, inbound transport, card charge), no marketplace-name",
        ),
        Variant("jp", "JP", _jp, "Amazon.co.jp: JPY without decimals, YYYY/MM/DD ... JST dates, Points"),
        Variant("ca", "CA", _plain_market, "Amazon.ca in CAD"),
        Variant("au", "AU", _plain_market, "Amazon.com.au in AUD"),
        Variant("mcf", "US", _mcf, "Non-Amazon MCF orders (S01-... ids, #1088 shop ids, Principal 0.00, higher fee)"),
        Variant(
            "fee_layout_2024",
            "UK",
            _fee_layout_2024,
            "AMAZONFEES / FBAFEES rows: amount-type names the fee; BASE_FEE, DISCOUNT_ON_FEE, TAX_ON_FEE",
        ),
        Variant("chargeback_refund", "US", lambda ctx: _refund_like(ctx, "CHARGEBACK_REFUND"), "CHARGEBACK_REFUND"),
        Variant(
            "a_to_z_refund", "US", lambda ctx: _refund_like(ctx, "A_TO_Z_GUARANTEE_REFUND"), "A_TO_Z_GUARANTEE_REFUND"
        ),
        Variant("retrocharge", "US", _retrocharge, "ORDER_RETROCHARGE and REFUND_RETROCHARGE"),
        Variant("coupon_fees", "DE", _coupon_fees, "COUPONREDEMPTIONFEE with VAT on the fee"),
        Variant("advertising_tax", "CA", _advertising_tax, "SERVICEFEE / OTHERFEES / TAXAMOUNT: tax on advertising"),
        Variant("commingling_vat", "DE", _commingling_vat, "COMMINGLING_VAT"),
        Variant("buy_shipping", "US", _buy_shipping, "Buy Shipping labels (SHIPPING_LABEL_PURCHASE ...)"),
        Variant(
            "capital_services",
            "US",
            _single_row("OTHER_TRANSACTION", "OTHER_TRANSACTION", "AMAZON_CAPITAL_SERVICES", -1, 20000, 90000),
            "AMAZON_CAPITAL_SERVICES loan repayment",
        ),
        Variant(
            "seller_rewards",
            "US",
            _single_row("SELLER_REWARDS", "SELLER_REWARDS", "SELLER_REWARDS", 1, 500, 5000),
            "SELLER_REWARDS",
        ),
        Variant(
            "income_tax",
            "TR",
            _single_row("OTHER_TRANSACTION", "OTHER_TRANSACTION", "INCOME_TAX_CHARGED", -1, 100, 2000),
            "INCOME_TAX_CHARGED withheld by Amazon (Turkey)",
        ),
    )
}


def variant_settlement(name: str, seed: int = 0) -> SettlementDocument:
    """The small balanced settlement of one variant (``VARIANTS``) for ``seed``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown settlement variant {name!r}; known: {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    market = _market(variant.market)
    rng = random.Random(f"variant-{seed}-{name}")
    catalog = build_catalog(seed)
    listed = tuple(i for i in catalog if market.code in i.marketplaces) if market.code in MARKETPLACES else catalog
    ctx = _Context(market, tuple(listed), rng)
    rows = tuple(sorted(variant.build(ctx), key=lambda r: r.posted))
    total = sum(r.amount for r in rows)
    settlement_id = str(rng.randrange(10**10, 5 * 10**10))
    start, end = _START, _START + timedelta(days=_DAYS, seconds=1)
    deposit = end + timedelta(days=2)
    decimals = _decimals(market)
    text = render_v2(
        settlement_id,
        market,
        start,
        end,
        deposit,
        total,
        rows,
        decimals=decimals,
        short_transaction_types=frozenset({LIQUIDATIONS}),
    )
    return SettlementDocument(
        settlement_id=settlement_id,
        marketplace_id=market.marketplace_id,
        currency=market.currency,
        start=start,
        end=end,
        deposit_date=deposit,
        total=Decimal(total).scaleb(-decimals),
        text=text,
        created_time=end + timedelta(hours=3),
        rows=rows,
    )


def real_world_variants(seed: int = 0, names: tuple[str, ...] | None = None) -> list[tuple[str, bytes]]:
    """``(variant name, UTF-8 file bytes)`` for every variant (or ``names``), in ``VARIANTS`` order."""
    chosen = tuple(VARIANTS) if names is None else names
    return [(name, variant_settlement(name, seed).text.encode("utf-8")) for name in chosen]
