"""The seeded marketplace generator: determinism, balance, formats, consistency, anomalies.

Settlement files are read back with plain ``csv`` + ``Decimal`` (never with project code), and
expected fees are derived from the catalog inputs, not from generator output.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from sandbox.catalog import CATEGORIES, FBA_FEES, MARKETPLACE_BY_ID, build_catalog
from sandbox.generator import V1_COLUMNS, V2_COLUMNS, build_world, write_settlement_v1
from sandbox.generator.formats import format_amount
from sandbox.generator.large import matching_invoices, write_large_settlement

V1_AMOUNT_COLUMNS = (
    "shipment-fee-amount",
    "order-fee-amount",
    "price-amount",
    "item-related-fee-amount",
    "misc-fee-amount",
    "other-fee-amount",
    "promotion-amount",
    "direct-payment-amount",
    "other-amount",
)
EU_DATETIME = re.compile(r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2} UTC$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
EU_DATE, ISO_DATE = re.compile(r"^\d{2}\.\d{2}\.\d{4}$"), re.compile(r"^\d{4}-\d{2}-\d{2}$")
COMMA_AMOUNT, DOT_AMOUNT = re.compile(r"^-?\d+,\d{2}$"), re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="module")
def world():
    return build_world(0)


@pytest.fixture(scope="module")
def anomalous_world():
    return build_world(0, anomalies=True)


def read_tsv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))


def money(value: str) -> Decimal:
    return Decimal(value.replace(",", "."))


def rows_of(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(summary, transaction rows) keyed by header name."""
    table = read_tsv(text)
    header = table[0]
    records = [dict(zip(header, row)) for row in table[1:]]
    return records[0], records[1:]


def parse_time(value: str) -> datetime:
    fmt = "%d.%m.%Y %H:%M:%S UTC" if EU_DATETIME.match(value) else "%Y-%m-%d %H:%M:%S UTC"
    return datetime.strptime(value, fmt).replace(tzinfo=UTC)


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_orders(world) -> None:
    again = build_world(0)
    assert [d.text for d in again.settlement_documents()] == [d.text for d in world.settlement_documents()]
    assert json.dumps(again.orders_v0(), sort_keys=True) == json.dumps(world.orders_v0(), sort_keys=True)
    assert again.listings() == world.listings()


def test_different_seed_gives_different_world(world) -> None:
    other = build_world(1)
    assert [d.text for d in other.settlement_documents()] != [d.text for d in world.settlement_documents()]
    assert {o["AmazonOrderId"] for o, _ in other.orders_v0()} != {o["AmazonOrderId"] for o, _ in world.orders_v0()}


# --- shape of the settlement files ----------------------------------------------------------------


def test_every_settlement_balances_exactly(world, anomalous_world) -> None:
    for doc in world.settlement_documents() + anomalous_world.settlement_documents():
        summary, rows = rows_of(doc.text)
        total = money(summary["total-amount"])
        assert sum(money(r["amount"]) for r in rows) == total, doc.settlement_id
        assert total == doc.total
        assert len(rows) > 10


def test_layout_24_columns_summary_row_and_ids(world) -> None:
    docs = world.settlement_documents()
    assert len(docs) == 16  # 4 marketplaces x 4 fortnights in 56 days
    assert len({d.settlement_id for d in docs}) == 16
    for doc in docs:
        assert doc.text.endswith("\n") and "\r" not in doc.text
        table = read_tsv(doc.text)
        assert tuple(table[0]) == V2_COLUMNS
        assert all(len(row) == 24 for row in table)
        assert all(cell == "" for cell in table[1][6:])  # summary: columns 1-6 only
        assert all(row[1:6] == [""] * 5 for row in table[2:])  # transaction rows: no header values
        assert all(row[0] == doc.settlement_id for row in table[1:])
        assert re.fullmatch(r"\d{11}", doc.settlement_id)
        assert doc.deposit_date == doc.end + timedelta(days=2)
        assert doc.end - doc.start >= timedelta(days=14)
        assert doc.end < doc.created_time < doc.end + timedelta(hours=8)
        assert table[1][5] == doc.currency == MARKETPLACE_BY_ID[doc.marketplace_id].currency


@pytest.mark.parametrize(
    "currency, datetime_re, date_re, amount_re",
    [
        ("USD", ISO_DATETIME, ISO_DATE, DOT_AMOUNT),
        ("EUR", EU_DATETIME, EU_DATE, COMMA_AMOUNT),
        ("GBP", EU_DATETIME, EU_DATE, DOT_AMOUNT),  # UK: same EU account dates, but dot decimals
    ],
)
def test_formats_per_marketplace(world, currency, datetime_re, date_re, amount_re) -> None:
    docs = [d for d in world.settlement_documents() if d.currency == currency]
    assert docs
    for doc in docs:
        summary, rows = rows_of(doc.text)
        for key in ("settlement-start-date", "settlement-end-date", "deposit-date"):
            assert datetime_re.match(summary[key]), (doc.settlement_id, key, summary[key])
        assert amount_re.match(summary["total-amount"])
        for row in rows:
            assert amount_re.match(row["amount"]), row
            assert date_re.match(row["posted-date"]) and datetime_re.match(row["posted-date-time"]), row
        assert parse_time(summary["settlement-start-date"]) == doc.start


def test_format_amount_by_hand() -> None:
    assert format_amount(-5, True) == "-0,05"
    assert format_amount(123456, False) == "1234.56"
    assert format_amount(0, True) == "0,00"


# --- consistency with the orders ----------------------------------------------------------------


def test_settled_orders_match_amazon_orders(world) -> None:
    orders = {o["AmazonOrderId"]: (o, {i["OrderItemId"]: i for i in items}) for o, items in world.orders_v0()}
    settled_ids = set()
    for doc in world.settlement_documents():
        _, rows = rows_of(doc.text)
        for row in rows:
            posted = parse_time(row["posted-date-time"])
            assert doc.start <= posted <= doc.end, (doc.settlement_id, row)
            if row["transaction-type"] not in ("Order", "Refund") or row["marketplace-name"].startswith("Non-Amazon"):
                continue
            order, items = orders[row["order-id"]]
            assert order["OrderStatus"] == "Shipped"
            assert order["MarketplaceId"] == doc.marketplace_id
            assert order["SalesChannel"] == row["marketplace-name"]
            assert parse_iso(order["PurchaseDate"]) < posted
            item = items[row["order-item-code"]]
            assert item["SellerSKU"] == row["sku"]
            if row["transaction-type"] == "Order":
                settled_ids.add(row["order-id"])
                assert row["quantity-purchased"] == str(item["QuantityOrdered"])
                assert row["fulfillment-id"] == order["FulfillmentChannel"]
                if (row["amount-type"], row["amount-description"]) == ("ItemPrice", "Principal"):
                    assert money(row["amount"]) == Decimal(item["ItemPrice"]["Amount"])
                if (row["amount-type"], row["amount-description"]) == ("ItemPrice", "Tax"):
                    assert money(row["amount"]) == Decimal(item["ItemTax"]["Amount"])
            else:
                assert row["quantity-purchased"] == ""  # refund rows have no quantity
    statuses = {o["OrderStatus"] for o, _ in orders.values()}
    assert {"Shipped", "Canceled"} <= statuses
    cancelled = {oid for oid, (o, _) in orders.items() if o["OrderStatus"] == "Canceled"}
    assert cancelled and not cancelled & settled_ids
    assert len(settled_ids) > 250  # most of the 400 orders ship inside a settlement window


def test_fees_follow_catalog_rates(world) -> None:
    catalog = {i.sku: i for i in build_catalog(0)}
    checked = 0
    for doc in world.settlement_documents():
        _, rows = rows_of(doc.text)
        blocks: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
        for row in rows:
            if row["transaction-type"] == "Order" and not row["marketplace-name"].startswith("Non-Amazon"):
                # Promotion rows reuse the descriptions Principal/Shipping: keep them apart.
                key = (
                    row["amount-description"]
                    if row["amount-type"] != "Promotion"
                    else "promo-" + row["amount-description"]
                )
                blocks[(row["order-id"], row["order-item-code"])][key] = money(row["amount"])
                blocks[(row["order-id"], row["order-item-code"])]["qty"] = Decimal(row["quantity-purchased"])
                blocks[(row["order-id"], row["order-item-code"])]["sku"] = row["sku"]  # type: ignore[assignment]
        for block in blocks.values():
            item, qty = catalog[block["sku"]], int(block["qty"])  # type: ignore[index]
            base = int((block["Principal"] + block.get("Shipping", Decimal(0))) * 100)
            assert -block["Commission"] * 100 == max(half_up(base * item.referral_bp, 10000), 30 * qty)
            if "FBAPerUnitFulfillmentFee" in block:
                assert -block["FBAPerUnitFulfillmentFee"] * 100 == FBA_FEES[item.size_tier][doc.currency] * qty
            if "MarketplaceFacilitatorTax-Principal" in block:
                assert block["MarketplaceFacilitatorTax-Principal"] == -block["Tax"]
            checked += 1
    assert checked > 250


def test_vocabulary_of_a_real_account_is_present(world) -> None:
    seen = set()
    for doc in world.settlement_documents():
        _, rows = rows_of(doc.text)
        seen |= {(r["transaction-type"], r["amount-type"], r["amount-description"]) for r in rows}
        for r in rows:
            if r["marketplace-name"].startswith("Non-Amazon"):
                assert r["order-id"].startswith("S01-") and r["merchant-order-id"].startswith("#")
                assert r["amount-description"] != "Principal" or money(r["amount"]) == 0
    for expected in [
        ("Order", "ItemPrice", "Principal"),
        ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal"),
        ("Order", "ItemFees", "FBAPerUnitFulfillmentFee"),
        ("Order", "ItemFees", "DigitalServicesFee"),
        ("Order", "Promotion", "Shipping"),
        ("Order", "Promotion", "Principal"),
        ("Refund", "ItemFees", "RefundCommission"),
        ("Refund", "ItemFees", "Commission"),
        ("other-transaction", "other-transaction", "RemovalComplete"),
        ("other-transaction", "other-transaction", "Subscription Fee"),
        ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount"),
    ]:
        assert expected in seen, expected
    assert any(
        t == ("other-transaction", "FBA Inventory Reimbursement", k)
        for t in seen
        for k in ("WAREHOUSE_DAMAGE", "REVERSAL_REIMBURSEMENT")
    )


def test_refund_commission_is_20_percent_capped(world) -> None:
    refunds = 0
    for doc in world.settlement_documents():
        _, rows = rows_of(doc.text)
        by_adjustment: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for r in rows:
            if r["transaction-type"] == "Refund" and r["amount-type"] == "ItemFees":
                by_adjustment[r["adjustment-id"]][r["amount-description"]] = money(r["amount"])
        for fees in by_adjustment.values():
            commission = int(fees["Commission"] * 100)
            assert commission > 0
            assert -fees["RefundCommission"] * 100 == min(half_up(commission * 20, 100), 500)
            refunds += 1
    assert refunds >= 5


# --- period features --------------------------------------------------------------------------


def test_month_crossing_negative_and_reserves_present(world) -> None:
    docs = world.settlement_documents()
    assert any(d.start.month != d.end.month for d in docs)
    assert any(d.total < 0 for d in docs)
    assert any("Previous Reserve Amount Balance" in d.text for d in docs)


def test_reserves_carry_exactly_between_consecutive_settlements(world) -> None:
    by_market = defaultdict(list)
    for doc in world.settlement_documents():
        by_market[doc.marketplace_id].append(doc)
    carried = 0
    for docs in by_market.values():
        docs.sort(key=lambda d: d.start)
        for previous, current in zip(docs, docs[1:]):
            assert current.start == previous.end  # back-to-back windows
            held = [
                money(r["amount"])
                for r in rows_of(previous.text)[1]
                if r["amount-description"] == "Current Reserve Amount"
            ]
            released = [
                money(r["amount"])
                for r in rows_of(current.text)[1]
                if r["amount-description"] == "Previous Reserve Amount Balance"
            ]
            assert [-x for x in held] == released
            carried += len(released)
    assert carried >= 6


# --- anomalies ----------------------------------------------------------------------------------


def test_clean_world_has_no_anomalies(world) -> None:
    assert world.anomalies == []


def test_anomalies_ground_truth(anomalous_world) -> None:
    catalog = {i.sku: i for i in build_catalog(0)}
    docs = {d.settlement_id: d for d in anomalous_world.settlement_documents()}
    kinds = {a.kind for a in anomalous_world.anomalies}
    assert kinds == {
        "fee_overcharge_fba",
        "fee_overcharge_commission",
        "duplicate_refund",
        "missing_reimbursement",
        "price_error",
    }
    for anomaly in anomalous_world.anomalies:
        doc = docs[anomaly.settlement_id]
        rows = [r for r in rows_of(doc.text)[1] if r["order-id"] == anomaly.order_id and r["sku"] == anomaly.sku]
        item = catalog[anomaly.sku]
        if anomaly.kind == "fee_overcharge_fba":
            fee = next(r for r in rows if r["amount-description"] == "FBAPerUnitFulfillmentFee")
            expected = FBA_FEES[item.size_tier][doc.currency] * int(fee["quantity-purchased"])
            assert -money(fee["amount"]) * 100 >= Decimal(expected) * Decimal("1.2")
        elif anomaly.kind == "fee_overcharge_commission":
            fee = next(r for r in rows if r["amount-description"] == "Commission" and r["transaction-type"] == "Order")
            principal = next(
                r for r in rows if r["amount-description"] == "Principal" and r["transaction-type"] == "Order"
            )
            assert -money(fee["amount"]) >= money(principal["amount"]) * item.referral_bp / 10000 * Decimal("1.2")
        elif anomaly.kind == "duplicate_refund":
            refunds = {r["adjustment-id"] for r in rows if r["transaction-type"] == "Refund"}
            assert len(refunds) == 2
        elif anomaly.kind == "price_error":
            principal = next(r for r in rows if r["amount-description"] == "Principal")
            unit = money(principal["amount"]) / int(principal["quantity-purchased"])
            listed = Decimal(item.price(doc_market(doc))) / 100
            assert unit < listed / 3 or unit > listed * 2
        else:  # missing reimbursement: nothing for that SKU in the reimbursement rows
            assert not [
                r
                for r in rows_of(doc.text)[1]
                if r["amount-type"] == "FBA Inventory Reimbursement"
                and r["sku"] == anomaly.sku
                and anomaly.detail.split("event ")[1].split(")")[0] == r["adjustment-id"]
            ]
    # The anomalous world is the clean world plus the falsifications: same orders otherwise.
    clean_ids = [o["AmazonOrderId"] for o, _ in build_world(0).orders_v0()]
    assert [o["AmazonOrderId"] for o, _ in anomalous_world.orders_v0()] == clean_ids


def doc_market(doc) -> str:
    return MARKETPLACE_BY_ID[doc.marketplace_id].code


# --- Orders API shapes, listings, M3 lines ------------------------------------------------------------


def test_orders_match_the_official_model(world, shared: Path) -> None:
    models = json.loads((shared / "spapi-models" / "ordersV0.json").read_text())
    definitions = models["definitions"]
    # Validators built once: constructing one per document dominates the run time.
    order_validator = jsonschema.Draft4Validator({"$ref": "#/definitions/Order", "definitions": definitions})
    item_validator = jsonschema.Draft4Validator({"$ref": "#/definitions/OrderItem", "definitions": definitions})
    markets = set()
    for n, (order, items) in enumerate(world.orders_v0()):
        if n < 120 or order["OrderStatus"] != "Shipped":  # a sample keeps the test fast
            order_validator.validate(order)
            for item in items:
                item_validator.validate(item)
        assert re.fullmatch(r"\d{3}-\d{7}-\d{7}", order["AmazonOrderId"])
        markets.add(order["MarketplaceId"])
        assert items
        for item in items:
            assert re.fullmatch(r"\d{14}", item["OrderItemId"])
            assert re.fullmatch(r"[A-Z0-9]{10}", item["ASIN"])
        if order["OrderStatus"] not in ("Pending",):
            total = sum(
                Decimal(i[k]["Amount"]) for i in items for k in ("ItemPrice", "ItemTax", "ShippingPrice", "ShippingTax")
            ) - sum(
                Decimal(i[k]["Amount"])
                for i in items
                for k in ("PromotionDiscount", "ShippingDiscount", "PromotionDiscountTax", "ShippingDiscountTax")
            )
            assert Decimal(order["OrderTotal"]["Amount"]) == total
    assert len(markets) == 4
    channels = {o["FulfillmentChannel"] for o, _ in world.orders_v0()}
    assert channels == {"AFN", "MFN"}
    assert any(len(items) > 1 for _, items in world.orders_v0())


def test_listings_cover_catalog(world) -> None:
    listings = world.listings()
    catalog = build_catalog(0)
    assert len(listings) == sum(len(i.marketplaces) for i in catalog)
    first = catalog[0]
    us = next(x for x in listings if x["sku"] == first.sku and x["marketplace_id"] == "ATVPDKIKX0DER")
    assert us["price"] == f"{first.prices['US'] // 100}.{first.prices['US'] % 100:02d}"
    assert us["product_type"] == CATEGORIES[first.category][0] and isinstance(us["quantity"], int)
    assert world.seller_id == "A2SANDBOXSELLER"


def test_m3_order_lines_cover_shipped_orders(world) -> None:
    lines = world.m3_order_lines()
    shipped = {o["AmazonOrderId"]: items for o, items in world.orders_v0() if o["OrderStatus"] == "Shipped"}
    assert {line.amazon_order_id for line in lines} == set(shipped)
    assert len(lines) == sum(len(items) for items in shipped.values())
    catalog = {i.sku: i for i in build_catalog(0)}
    for line in lines:
        assert line.unit_price * line.quantity == line.line_amount
        assert line.itno == catalog[line.sku].itno
        item = next(i for i in shipped[line.amazon_order_id] if i["OrderItemId"] == line.order_item_id)
        assert line.line_amount == Decimal(item["ItemPrice"]["Amount"])
        assert line.tax_collected_by_amazon == (line.marketplace_id == "ATVPDKIKX0DER")


# --- legacy V1 --------------------------------------------------------------------------------


def test_v1_writer_has_36_columns_and_balances(world) -> None:
    for doc in world.settlement_documents()[:6]:
        table = read_tsv(write_settlement_v1(doc))
        assert tuple(table[0]) == V1_COLUMNS and len(V1_COLUMNS) == 36
        assert all(len(row) == 36 for row in table)
        header = dict(zip(V1_COLUMNS, table[1]))
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00", header["settlement-start-date"])
        records = [dict(zip(V1_COLUMNS, row)) for row in table[2:]]
        total = sum(Decimal(r[c]) for r in records for c in V1_AMOUNT_COLUMNS if r[c])
        assert total == Decimal(header["total-amount"]) == doc.total
        quantity_only = [
            r
            for r in records
            if r["transaction-type"] == "Order" and r["quantity-purchased"] and not any(r[c] for c in V1_AMOUNT_COLUMNS)
        ]
        orders = {(r["order-id"], r["order-item-code"]) for r in records if r["transaction-type"] == "Order"}
        assert len(quantity_only) == len(orders) > 0


# --- large benchmark file ---------------------------------------------------------------------------


@pytest.mark.parametrize("marketplace, lines", [("US", 20_000), ("DE", 5_003)])
def test_large_settlement_has_n_lines_and_balances(tmp_path, marketplace, lines) -> None:
    path = write_large_settlement(tmp_path / "large.tsv", lines, seed=3, marketplace=marketplace)
    summary, rows = rows_of(path.read_text(encoding="utf-8"))
    assert len(rows) == lines
    assert sum(money(r["amount"]) for r in rows) == money(summary["total-amount"])
    invoices = matching_invoices(lines, seed=3, marketplace=marketplace)
    sales: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["amount-type"] in ("ItemPrice", "ItemWithheldTax"):
            sales[r["order-id"]] += money(r["amount"])
    assert len(invoices) == len(sales) == lines // 5
    by_order = dict(zip(invoices["cuor"], invoices["gross_minor"]))
    assert all(Decimal(by_order[oid]) / 100 == amount for oid, amount in sales.items())
