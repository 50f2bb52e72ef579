"""Master data the sandbox M3 starts with (docs/m3-contract.md "Seeded master data").

Seeding runs once, when the database has no ``seeded`` setting; a second app instance on the
same folder finds it and leaves everything as it is.
"""

from __future__ import annotations

import random
import secrets
from decimal import Decimal

from reconciliation.marketplaces import MARKETPLACES as AMAZON_MARKETPLACES
from sandbox.catalog import MARKETPLACES, CatalogItem, build_catalog

from .money import quantum
from .store import Store, Tx, dumps

CONO = "100"
DIVI = "AAA"
FACI = "100"
VSER = "AZ"
TEMPLATE_CUSTOMER = "AMZTMPL"
SEED_DATE = "20240101"

WAREHOUSES = {"100": "Main warehouse", "FBA": "Amazon FBA virtual warehouse"}
ORDER_TYPES = {
    "AMZ": ("100", "Amazon merchant-fulfilled"),
    "AFN": ("FBA", "Amazon fulfilled"),
    "RET": ("100", "Amazon returns"),
}
# Return order types [ours]: their lines take a negative ORQT (returned goods), delivering one puts
# the stock back, invoicing it books a credit note.
RETURN_ORDER_TYPES = frozenset({"RET"})

# Marketplace customer -> (currency, country, name).
MARKETPLACE_CUSTOMERS = {
    "AMZUS": ("USD", "US", "Amazon.com customers"),
    "AMZDE": ("EUR", "DE", "Amazon.de customers"),
    "AMZFR": ("EUR", "FR", "Amazon.fr customers"),
    "AMZUK": ("GBP", "GB", "Amazon.co.uk customers"),
}

# Sales price per currency: taken from the first marketplace listing the item in that currency.
_PRICE_MARKETPLACE = {"USD": ("US",), "EUR": ("DE", "FR"), "GBP": ("UK",)}
# Sales price lists (OIS017MI PRRF) -> their currency [ours]: one base price per item in each,
# the prices above (sandbox/m3/tx_stock.py GetBasePrice).
PRICE_LISTS = {"AMZUSD": "USD", "AMZEUR": "EUR", "AMZGBP": "GBP"}
ITEM_PRICE_CURRENCY = "EUR"  # the items' own sales price (MITMAS SAPR) is in the company's currency


FREIGHT_ITEM = "FREIGHT"

# Divisions of company 100 and their local (accounting) currency, as MNS100 connects them [ours].
# AAA is the division every marketplace shared before divisions were routed (the user's default).
DIVISION_CURRENCIES = {DIVI: "EUR", "100": "USD", "200": "GBP", "300": "EUR", "400": "SEK"}
DIVISION_NAMES = {
    DIVI: "Amazon marketplaces",
    "100": "US entity",
    "200": "UK entity",
    "300": "EU entity",
    "400": "Nordic entity",
}
# The account M3's FAM function books a voucher's currency rounding difference to [ours: the
# number]; the presets' fx_rounding category names the same account.
ROUNDING_ACCOUNT = "3740"
DEFAULT_RATE_TYPE = 1  # CRTP M3 uses when a line gives none [ours]
RATES_FROM = "20200101"
# Seeded CRS058 rates, rate type 1, valid from RATES_FROM: units of the division's local currency
# per unit of the foreign currency [ours: round figures, settable through /sandbox/rates]. AAA
# books every currency at 1, so the vouchers it has always booked keep their recorded amounts.
SEED_RATES: dict[str, dict[str, str]] = {
    # every currency an Amazon marketplace settles in (reconciliation.marketplaces), at 1
    DIVI: {cucd: "1" for cucd in sorted({m.currency for m in AMAZON_MARKETPLACES} | {"SEK"}) if cucd != "EUR"},
    "100": {"EUR": "1.085", "GBP": "1.27", "SEK": "0.095"},
    "200": {"USD": "0.7874", "EUR": "0.8543", "SEK": "0.0748"},
    "300": {"USD": "0.9217", "GBP": "1.1706", "SEK": "0.0876"},
    "400": {"USD": "10.5263", "EUR": "11.4523", "GBP": "13.369"},
}


def customer_record(cuno: str, name: str, currency: str, country: str, **extra: str) -> dict[str, str]:
    record = {
        "CONO": CONO,
        "DIVI": DIVI,
        "LNCD": "GB",
        "CUNO": cuno,
        "CUNM": name,
        "CUA1": name,
        "CUA2": "",
        "CUA3": "",
        "CUA4": "",
        "PONO": "",
        "TOWN": "",
        "CSCD": country,
        "ECAR": "",
        "PHNO": "",
        "PHN2": "",
        "TFNO": "",
        "CUTP": "0",
        "ALCU": "",
        "YREF": "",
        "MAIL": "",
        "STAT": "20",
        "CUCD": currency,
        "ORTP": "AMZ",
        "TEPY": "030",
        "MODL": "",
        "TEDL": "",
        "PYNO": "",
        "VRNO": "",
        "LMDT": SEED_DATE,
        "RGDT": SEED_DATE,
    }
    record.update(extra)
    return record


def seed_if_new(store: Store, seed: int) -> None:
    with store.transaction() as tx:
        _seed_rates(tx)  # also into folders seeded before rates existed; never over a rate set since
        _seed_order_types(tx)  # also into folders seeded before the return order type existed
        if tx.setting("seeded") is not None:
            return
        _seed_credentials(tx)
        _seed_master_data(tx, seed)
        tx.execute("INSERT INTO settings (key, value) VALUES ('seeded', ?)", (str(seed),))


def _seed_rates(tx: Tx) -> None:
    for divi, rates in SEED_RATES.items():
        for cucd, arat in rates.items():
            tx.execute(
                "INSERT OR IGNORE INTO exchange_rates (divi, cucd, crtp, fdat, arat) VALUES (?, ?, ?, ?, ?)",
                (divi, cucd, DEFAULT_RATE_TYPE, RATES_FROM, arat),
            )


def _seed_order_types(tx: Tx) -> None:
    for ortp, (whlo, name) in ORDER_TYPES.items():
        tx.execute("INSERT OR IGNORE INTO order_types (ortp, whlo, name) VALUES (?, ?, ?)", (ortp, whlo, name))


def _seed_credentials(tx: Tx) -> None:
    # Generated per sandbox folder, never hard-coded (see ionapi.py).
    values = {
        "client_id": f"SANDBOX~{secrets.token_urlsafe(12)}",
        "client_secret": secrets.token_urlsafe(32),
        "service_access_key": f"SANDBOX#{secrets.token_urlsafe(24)}",
        "service_secret_key": secrets.token_urlsafe(32),
        "basic_user": "M3SANDBOX",
        "basic_password": secrets.token_urlsafe(18),
    }
    tx.conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", list(values.items()))


def _item_sales_price(item: CatalogItem) -> dict[str, str]:
    """The item master's basic sales price (MMS200MI/GetItmPrice): per piece in the company's
    currency (EUR, division AAA), the EUR price list's; none for an item not sold in EUR."""
    listed = [m for m in _PRICE_MARKETPLACE[ITEM_PRICE_CURRENCY] if m in item.prices]
    if not listed:
        return {}
    price = Decimal(item.prices[listed[0]]) * quantum(ITEM_PRICE_CURRENCY)
    return {"SAPR": str(price), "SACD": "1", "CUCS": ITEM_PRICE_CURRENCY, "SPUN": "PCS"}


def _seed_master_data(tx: Tx, seed: int) -> None:
    for whlo, name in WAREHOUSES.items():
        tx.execute("INSERT INTO warehouses (whlo, faci, name) VALUES (?, ?, ?)", (whlo, FACI, name))
    customers = {TEMPLATE_CUSTOMER: customer_record(TEMPLATE_CUSTOMER, "Amazon customer template", "EUR", "")}
    for cuno, (currency, country, name) in MARKETPLACE_CUSTOMERS.items():
        customers[cuno] = customer_record(cuno, name, currency, country)
    for cuno, record in customers.items():
        tx.execute("INSERT INTO customers (cuno, data) VALUES (?, ?)", (cuno, dumps(record)))

    rng = random.Random(f"m3-stock-{seed}")
    for item in build_catalog(seed):
        record = {
            "CONO": CONO,
            "ITNO": item.itno,
            "ITDS": item.name,
            "FUDS": item.category,
            "STAT": "20",
            "UNMS": "PCS",
            "ITGR": item.category[:8].upper(),
            "ITCL": "",
            "ITTY": "FG",
            "LMDT": SEED_DATE,
            "RGDT": SEED_DATE,
            **_item_sales_price(item),
        }
        tx.execute("INSERT INTO items (itno, data) VALUES (?, ?)", (item.itno, dumps(record)))
        for currency, markets in _PRICE_MARKETPLACE.items():
            listed = [m for m in markets if m in item.prices]
            if listed:
                price = Decimal(item.prices[listed[0]]) * quantum(currency)
                tx.execute("INSERT INTO prices (itno, cucd, sapr) VALUES (?, ?, ?)", (item.itno, currency, str(price)))
        for whlo, high in (("100", 200), ("FBA", 120)):
            tx.execute(
                "INSERT INTO balances (whlo, itno, stqt, alqt) VALUES (?, ?, ?, 0)",
                (whlo, item.itno, rng.randint(0, high)),
            )
    # Shipping charged to the buyer is invoiced as a line on this non-stock item [ours]: the
    # sandbox has no order charges, and shipping must be invoiced for a settlement's Shipping
    # rows to reconcile against M3.
    freight = {
        "CONO": CONO,
        "ITNO": FREIGHT_ITEM,
        "ITDS": "Freight charge",
        "FUDS": "Service",
        "STAT": "20",
        "UNMS": "PCS",
        "ITGR": "SERVICE",
        "ITCL": "",
        "ITTY": "SRV",
        "LMDT": SEED_DATE,
        "RGDT": SEED_DATE,
    }
    tx.execute("INSERT INTO items (itno, data) VALUES (?, ?)", (FREIGHT_ITEM, dumps(freight)))
    assert set(_PRICE_MARKETPLACE) >= {m.currency for m in MARKETPLACES.values()}
