"""Opt-in settlement variants with the row shapes and vocabulary of real sellers' files.

Files are read back with plain ``csv`` + ``Decimal`` (never with project code); expected fees
come from the catalog inputs and the rates stated here, not from generator output.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sandbox.catalog import FBA_FEES, build_catalog
from sandbox.generator import V2_COLUMNS
from sandbox.generator.variants import VARIANTS, real_world_variants, variant_settlement

# variant -> (currency, marketplace-name on item rows or "" when none, (transaction, amount type, description) present)
EXPECTED: dict[str, tuple[str, str, set[tuple[str, str, str]]]] = {
    "liquidations": (
        "USD",
        "Amazon.com",
        {
            ("Liquidations", "ItemPrice", "Principal"),
            ("Liquidations", "ItemFees", "LiquidationsBrokerageFee"),
            ("LIQUIDATIONS_ADJUSTMENTS", "ItemPrice", "TAX"),
        },
    ),
    "account_level_only": (
        "CAD",
        "",
        {
            ("other-transaction", "other-transaction", "Subscription Fee"),
            ("other-transaction", "other-transaction", "FBAInboundTransportationFee"),
            ("other-transaction", "other-transaction", "Successful charge"),
        },
    ),
    "jp": ("JPY", "Amazon.co.jp", {("Order", "ItemPrice", "Principal"), ("Order", "Points", "PointsGranted")}),
    "ca": ("CAD", "Amazon.ca", {("Order", "ItemPrice", "Principal"), ("Order", "ItemPrice", "Tax")}),
    "au": ("AUD", "Amazon.com.au", {("Order", "ItemPrice", "Principal"), ("Order", "ItemPrice", "Tax")}),
    "mcf": (
        "USD",
        "Amazon.com",
        {("Order", "ItemPrice", "Principal"), ("Order", "ItemFees", "FBAPerUnitFulfillmentFee")},
    ),
    "fee_layout_2024": (
        "GBP",
        "Amazon.co.uk",
        {
            ("AMAZONFEES", "VINE_ENROLLMENT_FEE", "BASE_FEE"),
            ("AMAZONFEES", "VINE_ENROLLMENT_FEE", "DISCOUNT_ON_FEE"),
            ("AMAZONFEES", "VINE_ENROLLMENT_FEE", "TAX_ON_FEE"),
            ("FBAFEES", "FBA_INVENTORY_STORAGE_FEE", "TAX_ON_FEE"),
            ("FBAFEES", "AWD_STORAGE_FEE", "BASE_FEE"),
        },
    ),
    "chargeback_refund": (
        "USD",
        "Amazon.com",
        {
            ("CHARGEBACK_REFUND", "ItemPrice", "Principal"),
            ("CHARGEBACK_REFUND", "ItemFees", "RefundCommission"),
            ("CHARGEBACK_REFUND", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal"),
        },
    ),
    "a_to_z_refund": (
        "USD",
        "Amazon.com",
        {("A_TO_Z_GUARANTEE_REFUND", "ItemPrice", "Principal"), ("A_TO_Z_GUARANTEE_REFUND", "ItemFees", "Commission")},
    ),
    "retrocharge": (
        "USD",
        "Amazon.com",
        {
            ("ORDER_RETROCHARGE", "ItemPrice", "TAX"),
            ("REFUND_RETROCHARGE", "ItemPrice", "SHIPPINGTAX"),
            ("ORDER_RETROCHARGE", "ItemWithheldTax", "MARKETPLACEFACILITATORTAX_PRINCIPAL"),
        },
    ),
    "coupon_fees": (
        "EUR",
        "Amazon.de",
        {
            ("COUPONREDEMPTIONFEE", "COUPONREDEMPTIONFEE", "BASE_FEE"),
            ("COUPONREDEMPTIONFEE", "COUPONREDEMPTIONFEE", "TAX_ON_FEE"),
        },
    ),
    "advertising_tax": (
        "CAD",
        "Amazon.ca",
        {("ServiceFee", "Cost of Advertising", "TransactionTotalAmount"), ("SERVICEFEE", "OTHERFEES", "TAXAMOUNT")},
    ),
    "commingling_vat": ("EUR", "Amazon.de", {("COMMINGLING_VAT", "OTHER_TRANSACTION", "COMMINGLING_VAT")}),
    "buy_shipping": (
        "USD",
        "Amazon.com",
        {
            ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPING_LABEL_PURCHASE"),
            ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPING_LABEL_PURCHASE_FOR_RETURN"),
            ("OTHER_TRANSACTION", "OTHER_TRANSACTION", "SHIPPINGSERVICESREFUND"),
        },
    ),
    "capital_services": ("USD", "Amazon.com", {("OTHER_TRANSACTION", "OTHER_TRANSACTION", "AMAZON_CAPITAL_SERVICES")}),
    "seller_rewards": ("USD", "Amazon.com", {("SELLER_REWARDS", "SELLER_REWARDS", "SELLER_REWARDS")}),
    "income_tax": ("TRY", "Amazon.com.tr", {("OTHER_TRANSACTION", "OTHER_TRANSACTION", "INCOME_TAX_CHARGED")}),
}
DATETIME = {
    "iso": (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$"), "%Y-%m-%d %H:%M:%S UTC", 0),
    "eu": (re.compile(r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2} UTC$"), "%d.%m.%Y %H:%M:%S UTC", 0),
    "jp": (re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} JST$"), "%Y/%m/%d %H:%M:%S JST", 9),
}
STYLE = {"EUR": "eu", "GBP": "eu", "JPY": "jp"}
AMOUNT = {"JPY": re.compile(r"^-?\d+$"), "EUR": re.compile(r"^-?\d+,\d{2}$")}
DOT_AMOUNT = re.compile(r"^-?\d+\.\d{2}$")


def table(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t", quoting=csv.QUOTE_NONE))


def records(data: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(summary, rows) keyed by header name; a short row simply lacks its trailing keys."""
    header, *body = table(data)
    rows = [dict(zip(header, row)) for row in body]
    return rows[0], rows[1:]


def money(value: str) -> Decimal:
    return Decimal(value.replace(",", "."))


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return dict(real_world_variants(0))


def test_every_variant_is_produced_in_order_and_deterministically(files):
    assert list(files) == list(VARIANTS) == list(EXPECTED)
    assert dict(real_world_variants(0)) == files
    assert all(variant_settlement(name, 0).text.encode("utf-8") == data for name, data in files.items())
    other = dict(real_world_variants(1))
    assert all(other[name] != data for name, data in files.items())
    assert real_world_variants(0, ("jp",)) == [("jp", files["jp"])]
    with pytest.raises(ValueError, match="unknown settlement variant 'xx'"):
        variant_settlement("xx")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_variant_balances_and_has_its_vocabulary(files, name):
    currency, marketplace, wanted = EXPECTED[name]
    summary, rows = records(files[name])
    assert summary["currency"] == currency
    # The lines sum exactly to total-amount.
    assert sum(money(r["amount"]) for r in rows) == money(summary["total-amount"])
    amount_re = AMOUNT.get(currency, DOT_AMOUNT)
    assert amount_re.match(summary["total-amount"]) and all(amount_re.match(r["amount"]) for r in rows)
    # Dates in the marketplace's style, every posting inside the settlement window.
    pattern, fmt, offset = DATETIME[STYLE.get(currency, "iso")]
    start, end = (datetime.strptime(summary[k], fmt) for k in ("settlement-start-date", "settlement-end-date"))
    for row in rows:
        assert pattern.match(row["posted-date-time"]), row["posted-date-time"]
        assert start <= datetime.strptime(row["posted-date-time"], fmt) < end
        assert row["posted-date"] == row["posted-date-time"][:10]
    if offset:  # Japanese local time: 9 hours ahead of the UTC window the other variants use
        utc_start = datetime.strptime(summary["settlement-start-date"], fmt) - timedelta(hours=offset)
        assert utc_start.replace(tzinfo=UTC) == datetime(2024, 10, 9, 14, 28, 38, tzinfo=UTC)
    assert wanted <= {(r["transaction-type"], r["amount-type"], r["amount-description"]) for r in rows}
    names = {r["marketplace-name"] for r in rows if r["order-id"]}
    assert names <= {marketplace, "Non-Amazon US", "Non-Amazon"}
    assert {r["settlement-id"] for r in rows} == {summary["settlement-id"]}


def test_row_shapes_only_liquidations_are_short(files):
    for name, data in files.items():
        header, summary, *rows = table(data)
        assert tuple(header) == V2_COLUMNS and len(summary) == 24
        for row in rows:
            expected = 23 if row[6] == "Liquidations" else 24
            assert len(row) == expected, (name, row)
    liquidation_rows = [row for row in table(files["liquidations"])[2:] if row[6] == "Liquidations"]
    assert len(liquidation_rows) >= 2 and all(row[-1] for row in liquidation_rows)  # quantity is the last field


def test_liquidation_brokerage_fee_is_15_percent_of_proceeds(files):
    _, rows = records(files["liquidations"])
    by_order = defaultdict(dict)
    for row in rows:
        if row["transaction-type"] == "Liquidations":
            by_order[row["order-id"]][row["amount-description"]] = int(money(row["amount"]) * 100)
            assert "promotion-id" not in row and row["quantity-purchased"]
    assert len(by_order) == 2
    for parts in by_order.values():
        assert parts["LiquidationsBrokerageFee"] == -half_up(parts["Principal"] * 15, 100)


def test_account_level_only_has_no_marketplace_and_no_order(files):
    _, rows = records(files["account_level_only"])
    assert len(rows) == 5
    assert {r["marketplace-name"] for r in rows} == {""} and {r["order-id"] for r in rows} == {""}


def test_mcf_rows_have_shop_ids_no_principal_and_twice_the_fba_fee(files):
    tiers = {item.sku: item.size_tier for item in build_catalog(0)}
    _, rows = records(files["mcf"])
    mcf = [r for r in rows if r["marketplace-name"].startswith("Non-Amazon")]
    assert {r["marketplace-name"] for r in mcf} == {"Non-Amazon US", "Non-Amazon"}
    assert all(
        re.match(r"^S01-\d{7}-\d{7}$", r["order-id"]) and re.match(r"^#\d{4}$", r["merchant-order-id"]) for r in mcf
    )
    principal = [r for r in mcf if r["amount-description"] == "Principal"]
    assert len(principal) == 3 and {r["amount"] for r in principal} == {"0.00"}
    for row in (r for r in mcf if r["amount-description"] == "FBAPerUnitFulfillmentFee"):
        quantity = int(row["quantity-purchased"])
        assert -money(row["amount"]) * 100 == 2 * FBA_FEES[tiers[row["sku"]]]["USD"] * quantity
    amazon_skus = {r["sku"] for r in rows if r["marketplace-name"] == "Amazon.com"}
    assert {r["sku"] for r in principal} <= amazon_skus  # the same SKUs also sell on Amazon


def test_2024_fee_layout_tax_on_fee_is_uk_vat_of_the_discounted_fee(files):
    _, rows = records(files["fee_layout_2024"])
    fees = defaultdict(dict)
    for row in rows:
        if row["transaction-type"] in ("AMAZONFEES", "FBAFEES"):
            assert row["amount-description"] in ("BASE_FEE", "DISCOUNT_ON_FEE", "TAX_ON_FEE")
            fees[(row["amount-type"], row["posted-date-time"])][row["amount-description"]] = int(
                money(row["amount"]) * 100
            )
    assert len(fees) == 4
    for parts in fees.values():
        net = -parts["BASE_FEE"] - parts.get("DISCOUNT_ON_FEE", 0)
        assert parts["TAX_ON_FEE"] == -half_up(net * 20, 100)


def test_advertising_tax_is_13_percent_hst(files):
    _, rows = records(files["advertising_tax"])
    advertising = next(r for r in rows if r["amount-type"] == "Cost of Advertising")
    tax = next(r for r in rows if r["amount-description"] == "TAXAMOUNT")
    assert int(money(tax["amount"]) * 100) == -half_up(-int(money(advertising["amount"]) * 100) * 13, 100)
